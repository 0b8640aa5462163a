// The room channel's client (DESIGN §5), shared by the viewer's and the host's pages.
//
// It connects to the room's channel_url, says hello with whatever token() gives (a fan token,
// a staff member's one-minute channel ticket, or nothing: anonymous, read only), and hands
// every event to its listeners in seq order. A dropped connection — a network blip, or a close
// with 4008 when the viewer fell behind — comes back with ?since=<last seq>, so the server
// sends exactly what was missed (or reset and a fresh snapshot). Ops wait for their answer;
// one sent on a connection that dropped before its answer goes again with the same id, which
// the server answers once and never repeats.
const CLOSE_HELLO = 4001;
const CLOSE_ROOM = 4004;
const CLOSE_SLOW = 4008;
const BACKOFF_MS = [250, 500, 1000, 2000, 5000, 10000];
const HELLO = "hello"; // the hello's id: its ack opens the connection

export class RoomChannel extends EventTarget {
  constructor(url, { token = async () => null } = {}) {
    super();
    this.url = url;
    this.token = token;
    this.seq = null; // the last event seen; null until the first snapshot
    this.ws = null;
    this.pending = new Map(); // op id → {op, resolve}
    this.failures = 0;
    this.stopped = false;
    this.refused = false; // the token was refused: read on as a guest
    this.anonymous = true; // this connection said hello without a token
    this.counter = 0;
  }

  start() {
    this.stopped = false;
    this._connect();
  }

  close() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000, "leaving");
  }

  // Send an op; resolves with its ack or error ({type, id, ok|code, …}).
  send(op, fields = {}) {
    this.counter += 1;
    const id = `${Date.now().toString(36)}-${this.counter}`;
    const message = { op, id, ...fields };
    return new Promise((resolve) => {
      this.pending.set(id, { message, resolve });
      if (this.ready) this.ws.send(JSON.stringify(message));
    });
  }

  _status(state, detail = {}) {
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...detail } }));
  }

  async _connect() {
    if (this.stopped) return;
    this.ready = false;
    let token = null;
    if (!this.refused) {
      try {
        token = await this.token();
      } catch (error) {
        this._status("error", { message: error.message });
      }
    }
    const url = new URL(this.url);
    if (this.seq !== null) url.searchParams.set("since", String(this.seq));
    const ws = new WebSocket(url.href);
    this.ws = ws;
    this.anonymous = !token;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify(token ? { op: "hello", id: HELLO, token } : { op: "hello", id: HELLO }));
    });
    ws.addEventListener("message", (event) => this._receive(ws, event.data));
    ws.addEventListener("close", (event) => this._closed(ws, event));
  }

  _receive(ws, raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch (_) {
      return;
    }
    if (message.type === "ack" || message.type === "error") {
      if (message.id === HELLO || (message.id === null && !this.ready)) {
        // The hello's answer: its ack opens the connection (a resume with nothing missed
        // sends nothing else); its error is followed by the close.
        if (message.type === "ack") {
          if (!this.ready) this._opened(ws);
        } else {
          this._refused = message;
        }
        return;
      }
      const waiting = this.pending.get(message.id);
      if (waiting) {
        this.pending.delete(message.id);
        waiting.resolve(message);
      }
      return;
    }
    if (!this.ready) this._opened(ws);
    if (message.type === "snapshot") {
      this.seq = message.data.seq;
    } else if (typeof message.seq === "number") {
      if (this.seq !== null && message.seq <= this.seq) return; // seen already
      this.seq = message.seq;
    }
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  _opened(ws) {
    this.ready = true;
    this.failures = 0;
    this._status("open", { anonymous: this.anonymous });
    // Ops that lost their connection before their answer: again, same ids.
    for (const { message } of this.pending.values()) ws.send(JSON.stringify(message));
  }

  _closed(ws, event) {
    if (ws !== this.ws) return;
    this.ready = false;
    if (this.stopped) {
      this._status("closed");
      return;
    }
    if (event.code === CLOSE_ROOM) {
      this._status("gone", { message: "This room is not here any more." });
      return;
    }
    if (event.code === CLOSE_HELLO) {
      const refused = this._refused || {};
      this._refused = null;
      this._status("refused", { code: refused.code || event.reason, message: refused.message });
      if (refused.code && refused.code.startsWith("token_")) this.refused = true;
    }
    const wait = event.code === CLOSE_SLOW ? 0 : BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
    this.failures += 1;
    this._status("reconnecting", { code: event.code, in_ms: wait });
    setTimeout(() => this._connect(), wait + (wait ? Math.random() * 250 : 0));
  }
}

// A fan token handed to the page in its fragment (#token=laf_…), as a brand's app opens the
// room in a web-view; kept for the tab only and taken out of the address bar at once, so it
// is never in the history, a bookmark or a shared link.
export function fanTokenFromPage(key = "lifeaccount.fan-token") {
  const hash = new URLSearchParams(window.location.hash.slice(1));
  const given = hash.get("token");
  if (given) {
    sessionStorage.setItem(key, given);
    hash.delete("token");
    const rest = hash.toString();
    const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
    history.replaceState(null, "", url);
  }
  return sessionStorage.getItem(key);
}

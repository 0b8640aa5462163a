// The SDK's shared parts: where its server is (the origin it was loaded from), the fan token,
// calls to the API, the room channel, and the element every widget extends.

export const SERVER = new URL(import.meta.url).origin;

const settings = { token: null };
const mounted = new Set(); // widgets on the page, refreshed when the token changes
const hooks = new Set(); // (type, widget, data) → void: the embed pages' bridge to their host

// One fan token for every widget of the page; a widget's own `token` attribute wins.
export function configure({ token = null } = {}) {
  settings.token = token || null;
  for (const widget of mounted) widget.refresh();
}

export function onEvent(hook) {
  hooks.add(hook);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `the server answered ${status}`);
    this.status = status;
    this.code = problem.code || String(status);
    this.field = problem.field || null;
  }
}

export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

// A call to the API: bearer token, never a cookie; a problem document becomes an ApiError.
export async function api(path, { method = "GET", body, token = null, key = null } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  let answer;
  try {
    answer = await fetch(`${SERVER}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      mode: "cors",
    });
  } catch (_) {
    throw new ApiError(0, { code: "offline", detail: "No connection to the server; try again." });
  }
  const data = answer.status === 204 ? {} : await answer.json().catch(() => ({}));
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

// The room channel (DESIGN §5), one connection per room and page, shared by its widgets:
// `events` dispatches each event by type; `send(op, fields)` answers the ack or the error.
const channels = new Map();

// A widget takes the room's channel when it mounts and lets it go when it unmounts; the
// connection closes when no widget of the page uses it.
export function roomChannel(roomId, token) {
  const name = `${roomId}|${token || ""}`;
  if (!channels.has(name)) channels.set(name, new RoomChannel(name, roomId, token));
  const channel = channels.get(name);
  channel.users += 1;
  return channel;
}

export function letGo(channel) {
  channel.users -= 1;
  if (channel.users > 0) return;
  channels.delete(channel.name);
  channel.closing = true;
  if (channel.ws) channel.ws.close(1000); // not yet opened: open() sees `closing` and stops
}

const GONE = new Set([4001, 4003, 4004]); // refused hello, origin not allowed, no such room
const OFFLINE = { type: "error", code: "offline", message: "No connection to the live right now; try again." };

class RoomChannel {
  constructor(name, roomId, token) {
    this.name = name;
    this.users = 0;
    this.closing = false;
    this.roomId = roomId;
    this.token = token;
    this.events = new EventTarget();
    this.pending = new Map();
    this.seq = null;
    this.tries = 0;
    this.ws = null;
    this.connect();
  }

  // One connection attempt; `ready` settles with it: the snapshot arrived, or it failed.
  connect() {
    this.ready = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.ready.catch(() => {}); // a widget that awaits it hears; nobody else must
    this.open().catch((error) => this.failed(error));
  }

  async open() {
    const room = await api(`/rooms/${encodeURIComponent(this.roomId)}`);
    if (this.closing) return; // let go while the room was being read
    const url = new URL(room.channel_url);
    if (this.seq !== null) url.searchParams.set("since", String(this.seq));
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("open", () => ws.send(JSON.stringify({ op: "hello", id: "hello", token: this.token || undefined })));
    ws.addEventListener("message", (message) => this.receive(JSON.parse(message.data)));
    ws.addEventListener("close", (closed) => this.closed(closed.code));
  }

  receive(message) {
    if (message.type === "ack" || message.type === "error") {
      const waiting = this.pending.get(message.id);
      if (waiting) {
        this.pending.delete(message.id);
        waiting(message);
      }
      return;
    }
    if (typeof message.seq === "number") this.seq = message.seq;
    if (message.type === "snapshot") {
      this.tries = 0;
      this.settle.resolve();
    }
    this.events.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  failed(error) {
    this.settle.reject(error);
    if (this.closing) return;
    if (error.status === 404) return this.gone(4004);
    this.retry();
  }

  closed(code) {
    for (const [id, waiting] of this.pending) waiting({ ...OFFLINE, id });
    this.pending.clear();
    this.settle.reject(new Error("the connection closed"));
    if (this.closing) return;
    if (GONE.has(code)) return this.gone(code);
    this.retry();
  }

  gone(code) {
    this.events.dispatchEvent(new CustomEvent("gone", { detail: { code } }));
  }

  retry() {
    this.tries += 1;
    setTimeout(() => {
      if (!this.closing) this.connect();
    }, Math.min(30_000, 500 * 2 ** this.tries));
  }

  async send(op, fields) {
    try {
      await this.ready;
    } catch (_) {
      return OFFLINE;
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return OFFLINE;
    const id = `${op}-${newKey()}`;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      ws.send(JSON.stringify({ op, id, ...fields }));
    });
  }
}

// An element with its properties and children; text is inserted as text, never as HTML.
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const CSS = `
:host { display: inline-block; font: var(--la-font, 14px/1.4 system-ui, sans-serif); color: var(--la-ink, #1d1d1f); }
:host([hidden]) { display: none; }
.box { background: var(--la-bg, #fff); border: 1px solid var(--la-line, #e3e3e8); border-radius: var(--la-radius, 10px); padding: .6em .8em; display: grid; gap: .4em; }
button { font: inherit; cursor: pointer; border: 0; border-radius: var(--la-radius, 10px); padding: .35em .9em; background: var(--la-accent, #c2410c); color: var(--la-accent-ink, #fff); }
button[aria-pressed="true"] { background: var(--la-muted-bg, #eee); color: var(--la-ink, #1d1d1f); }
button:disabled { cursor: not-allowed; opacity: .55; }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 2px solid var(--la-focus, #1a73e8); outline-offset: 2px; }
.muted, .note { color: var(--la-muted, #6e6e73); font-size: .9em; }
.error { color: var(--la-bad, #b3261e); font-size: .9em; }
.row { display: flex; align-items: center; gap: .5em; flex-wrap: wrap; }
.title { font-weight: 600; }
a { color: var(--la-link, var(--la-accent, #c2410c)); }
.bar { height: .45em; background: var(--la-accent, #c2410c); border-radius: 1em; }
ul, ol { margin: 0; padding-left: 1.1em; }
img { max-width: 100%; border-radius: calc(var(--la-radius, 10px) / 2); }
input { font: inherit; padding: .3em .5em; border: 1px solid var(--la-line, #e3e3e8); border-radius: 6px; min-width: 0; flex: 1; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
`;
let sheet = null;

function styles() {
  if (!sheet && "adoptedStyleSheets" in Document.prototype) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}

// What every widget is: an open shadow root styled by custom properties and parts; a state
// (`loading`, `ready`, `anonymous`, `locked`, `sold-out`, `ended`, `error`) on the host as
// `data-state`; a fan token from its attribute or `configure`; events as `la-<type>`.
export class Widget extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    const shared = styles();
    if (shared) this.root.adoptedStyleSheets = [shared];
    else this.root.append(h("style", {}, CSS));
    this.generation = 0;
  }

  static get observedAttributes() {
    return ["token", this.idAttribute];
  }

  get token() {
    return this.getAttribute("token") || settings.token;
  }

  get subject() {
    return this.getAttribute(this.constructor.idAttribute);
  }

  // The id as it goes into an API path.
  get path() {
    return encodeURIComponent(this.subject || "");
  }

  connectedCallback() {
    mounted.add(this);
    this.refresh();
  }

  disconnectedCallback() {
    mounted.delete(this);
    this.generation += 1;
    if (this.stop) this.stop();
    this.stop = null;
  }

  attributeChangedCallback(_name, before, after) {
    if (this.isConnected && before !== after) this.refresh();
  }

  setState(state) {
    this.dataset.state = state;
  }

  show(...nodes) {
    const keep = this.root.querySelector("style");
    this.root.replaceChildren(...(keep ? [keep] : []), ...nodes);
  }

  async refresh() {
    const generation = ++this.generation;
    // Let the page's own script run first (its configure({token}) follows the import that
    // mounted us): the refreshes of one moment become one load, with the token.
    await null;
    if (generation !== this.generation) return;
    if (this.stop) {
      this.stop();
      this.stop = null;
    }
    if (!this.subject) {
      this.setState("error");
      this.show(h("p", { className: "error", part: "error" }, `Set the ${this.constructor.idAttribute} attribute.`));
      return;
    }
    if (!this.dataset.state || this.dataset.state === "error") {
      this.setState("loading");
      this.show(h("p", { className: "muted", part: "note", role: "status" }, "Loading…"));
    }
    try {
      await this.load(() => generation === this.generation);
    } catch (error) {
      if (generation !== this.generation) return;
      this.setState("error");
      const message = error.status === 404 ? "Not found." : error.message;
      this.show(h("p", { className: "error", part: "error", role: "alert" }, message));
    }
  }

  // One change at a time per widget: answers never land out of order, a double click is one.
  async once(action) {
    if (this.busy) return;
    this.busy = true;
    try {
      await action();
    } finally {
      this.busy = false;
    }
  }

  emit(type, data) {
    this.dispatchEvent(new CustomEvent(`la-${type}`, { detail: data, bubbles: true, composed: true }));
    for (const hook of hooks) hook(type, this.localName.slice(3), data);
  }

  // A note under the widget (what happened, or what to do next), replaced each time.
  note(box, text, kind = "note") {
    let line = box.querySelector("[data-note]");
    if (!line) {
      line = h("p", { "data-note": "", part: "note", role: "status", "aria-live": "polite" });
      box.append(line);
    }
    line.className = kind;
    line.textContent = text || "";
    line.hidden = !text;
  }
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

export const SIGN_IN = "Open this page from the brand's app to take part: you are watching as a guest.";

// The room's chat panel: what is pinned (pins.js), chat lines (staff marked), viewers, likes,
// and the composer — all from the room channel (channel.js), live. Moderation shows at once:
// a deleted line goes, a cleared chat empties, a muted or banned fan is told why. With
// `moderate`, each fan's line carries the staff's actions (the host page).
import { el } from "/static/dom.js";
import { pinItem } from "/static/pins.js";

const KEPT_LINES = 200;
const LIKE_FLUSH_MS = 400;

const ERRORS = {
  read_only: "Watching as a guest: open this room from the brand's app to chat.",
  muted: null, // the server's message says until when
  banned: "The account's staff stopped you from chatting in its rooms.",
  followers_only: "Chat here is for followers: follow the account to join in.",
  tier_required: null,
  rate_limited: null,
  words_blocked: "That message holds a word this room does not allow.",
  room_not_live: "Chat opens when the live starts.",
};


export function mountChat(root, channel, { moderate = null, canChat = true } = {}) {
  const $ = (selector) => root.querySelector(selector);
  const lines = $(".chat-lines");
  const pins = $(".chat-pins");
  const viewers = $(".chat-viewers");
  const likes = $(".chat-likes");
  const form = $(".chat-form");
  const input = form.querySelector("input");
  const note = $(".chat-note");
  const likeButton = $(".chat-like");
  const pinned = new Map(); // pin id → pin, as pinned
  let likesTotal = 0;
  let taps = 0; // taps not yet sent
  let flushing = null;

  function say(text, kind = "muted") {
    note.textContent = text || "";
    note.className = `chat-note ${kind}`;
    note.hidden = !text;
  }

  function line(seq, data) {
    const item = el("li", { dataset: { seq: String(seq) } });
    if (data.fan_id) item.dataset.fanId = data.fan_id;
    const who = el("span", { className: "chat-name" }, data.name || "");
    if (data.staff) {
      item.classList.add("chat-staff");
      who.append(" ", el("span", { className: "staff-badge" }, data.staff));
    }
    item.append(who, " ", el("span", { className: "chat-text" }, data.text));
    if (moderate && data.fan_id) item.append(" ", moderate.controls(seq, data));
    return item;
  }

  function add(seq, data) {
    const stick = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 8;
    lines.append(line(seq, data));
    while (lines.children.length > KEPT_LINES) lines.firstElementChild.remove();
    if (stick) lines.scrollTop = lines.scrollHeight;
  }

  function showPins() {
    pins.replaceChildren(...[...pinned.values()].map((pin) => pinItem(pin, channel, { moderate, say })));
    pins.hidden = pinned.size === 0;
  }

  function showLikes() {
    likes.textContent = String(likesTotal + taps);
  }

  channel.addEventListener("snapshot", ({ detail }) => {
    const data = detail.data;
    lines.replaceChildren();
    for (const chat of data.chat) add(chat.seq, chat);
    pinned.clear();
    for (const pin of data.pins || []) pinned.set(pin.id, pin);
    showPins();
    viewers.textContent = String(data.viewers);
    likesTotal = data.likes;
    showLikes();
    root.dataset.seq = String(data.seq);
  });
  channel.addEventListener("chat", ({ detail }) => add(detail.seq, detail.data));
  channel.addEventListener("likes", ({ detail }) => {
    likesTotal = detail.data.total;
    showLikes();
  });
  channel.addEventListener("viewers", ({ detail }) => {
    viewers.textContent = String(detail.data.count);
  });
  channel.addEventListener("pin", ({ detail }) => {
    pinned.set(detail.data.id, detail.data);
    showPins();
  });
  channel.addEventListener("unpin", ({ detail }) => {
    pinned.delete(detail.data.id);
    showPins();
  });
  channel.addEventListener("moderation", ({ detail }) => {
    const data = detail.data;
    if (data.action === "delete") {
      const gone = lines.querySelector(`[data-seq="${data.seq}"]`);
      if (gone) gone.remove();
    } else if (data.action === "clear") {
      for (const item of [...lines.children]) {
        if (Number(item.dataset.seq) <= data.seq) item.remove();
      }
    }
  });
  channel.addEventListener("room", ({ detail }) => {
    root.dataset.roomState = detail.data.state;
    if (detail.data.state !== "live") say("The live has ended.");
  });
  channel.addEventListener("status", ({ detail }) => {
    root.dataset.connected = String(detail.state === "open");
    if (detail.state === "open") {
      const guest = detail.anonymous || !canChat;
      form.hidden = false;
      input.disabled = guest;
      form.querySelector("button").disabled = guest;
      likeButton.disabled = guest;
      if (guest) say(ERRORS.read_only);
      else if (note.dataset.kind !== "answer") say("");
    } else if (detail.state === "refused") {
      say(detail.message || "This page's sign-in was refused; watching as a guest.", "error");
    } else if (detail.state === "reconnecting") {
      say("Reconnecting…");
    } else if (detail.state === "gone") {
      say(detail.message, "error");
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    const answer = await channel.send("chat", { text });
    if (answer.type === "ack") {
      say("");
      return;
    }
    input.value = input.value || text; // give it back to edit or resend
    let message = ERRORS[answer.code] || answer.message;
    if (answer.code === "rate_limited") message = `Slow down: you can send again in ${Math.ceil(answer.retry_after_s)} s.`;
    note.dataset.kind = "answer";
    say(message, "error");
    root.dataset.lastError = answer.code;
  });

  async function flushLikes() {
    flushing = null;
    const count = Math.min(taps, 100);
    if (!count) return;
    const answer = await channel.send("like", { count });
    taps -= count;
    if (answer.type === "ack") likesTotal += count; // the next likes event has the true total
    showLikes();
    if (taps) flushing = setTimeout(flushLikes, LIKE_FLUSH_MS);
  }

  likeButton.addEventListener("click", () => {
    taps += 1;
    showLikes();
    if (!flushing) flushing = setTimeout(flushLikes, LIKE_FLUSH_MS);
  });
}

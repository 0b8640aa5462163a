// The host page's chat side: the room channel as staff, and the moderation controls.
//
// The channel's listener is another origin (its own port), where the console's session cookie
// is not sent; each (re)connection asks the API for a one-minute channel ticket, with the
// session and its CSRF token, and says hello with it. Each fan's line gets delete / mute /
// ban; the panel pins the announcement, sets who may chat and slow mode, clears the chat and
// shows the moderation log. Every action is an API call the server checks and audits; the
// chat changes when the channel tells every viewer, this page included.
import { RoomChannel } from "/static/channel.js";
import { mountChat } from "/static/chat.js";

const panel = document.getElementById("host-panel");
const root = document.getElementById("chat");
const roomId = panel.dataset.roomId;
const csrf = panel.dataset.csrfToken;
const canHost = panel.dataset.canHost === "true";
const note = document.getElementById("panel-note");
const logList = document.getElementById("mod-log");
const MUTE_MINUTES = 10;

function tell(text, kind = "muted") {
  note.textContent = text;
  note.className = kind;
  note.hidden = !text;
}

async function call(method, path, body) {
  const answer = await fetch(`/api/v1/rooms/${roomId}${path}`, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (answer.ok) {
    tell("");
    return answer.status === 204 ? {} : answer.json();
  }
  let problem = {};
  try {
    problem = await answer.json();
  } catch (_) {
    // not a problem document
  }
  tell(problem.detail || `The server answered ${answer.status}; try again.`, "error");
  panel.dataset.lastError = problem.code || String(answer.status);
  return null;
}

async function showLog() {
  const log = await call("GET", "/moderation");
  if (!log) return;
  logList.replaceChildren(
    ...log.items.map((record) => {
      const what = [record.action, record.fan_id, record.seq && `#${record.seq}`, record.until && `until ${record.until}`];
      const item = document.createElement("li");
      item.textContent = `${record.at.slice(11, 19)} ${what.filter(Boolean).join(" ")} · ${record.by}`;
      return item;
    }),
  );
}

async function moderate(body) {
  if (await call("POST", "/moderation", body)) await showLog();
}

function button(label, title, onClick) {
  const made = document.createElement("button");
  made.type = "button";
  made.textContent = label;
  made.title = title;
  made.addEventListener("click", onClick);
  return made;
}

const controls = {
  controls(seq, data) {
    const box = document.createElement("span");
    box.className = "chat-actions";
    box.append(
      button("delete", "Delete this message for everyone", () => moderate({ action: "delete", seq })),
      button("mute", `Mute ${data.name} here for ${MUTE_MINUTES} minutes`, () =>
        moderate({ action: "mute", fan_id: data.fan_id, minutes: MUTE_MINUTES }),
      ),
      button("ban", `Ban ${data.name} from the account's rooms`, () => moderate({ action: "ban", fan_id: data.fan_id })),
    );
    return box;
  },
  unpin(pin) {
    if (!canHost) return "";
    return button("unpin", "Take it down", () => call("DELETE", `/pins/${pin.id}`));
  },
};

async function ticket() {
  const answer = await fetch(`/api/v1/rooms/${roomId}/channel-tickets`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf },
  });
  if (!answer.ok) throw new Error(`no channel ticket (${answer.status}): log in again`);
  return (await answer.json()).ticket;
}

const channel = new RoomChannel(root.dataset.channelUrl, { token: ticket });
mountChat(root, channel, { moderate: controls });
channel.addEventListener("moderation", () => showLog());
channel.addEventListener("room", ({ detail }) => {
  const rules = document.getElementById("rules-form");
  rules.elements.mode.value = detail.data.chat.mode;
  rules.elements.min_tier.value = detail.data.chat.min_tier;
  rules.elements.slow_mode_s.value = detail.data.chat.slow_mode_s;
});
channel.start();
showLog();

document.getElementById("rules-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target.elements;
  const rules = { mode: form.mode.value, min_tier: Number(form.min_tier.value), slow_mode_s: Number(form.slow_mode_s.value) };
  if (await call("PUT", "/chat", rules)) tell("Chat rules saved.");
});

document.getElementById("clear-chat").addEventListener("click", () => moderate({ action: "clear" }));

// Pins: an announcement, or a card (a service link, a coupon, a content) — one of each kind up
// at a time. The record beside shows each card's clicks and the room's total.
const pinForm = document.getElementById("pin-form");
const PIN_RECORD_MS = 5000;

function pinBody(form) {
  const kind = form.kind.value;
  if (kind === "announcement") return { kind, text: form.text.value };
  if (kind === "coupon") return { kind, coupon_id: form.coupon_id.value };
  if (kind === "content") return { kind, content_id: form.content_id.value };
  const service = { app_id: form.app_id.value.trim(), page: form.page.value.trim(), title: form.title.value.trim() };
  const query = Object.fromEntries(new URLSearchParams(form.query.value.trim()));
  if (Object.keys(query).length) service.query = query;
  if (form.image.value.trim()) service.image = form.image.value.trim();
  if (form.url.value.trim()) service.url = form.url.value.trim();
  return { kind, service };
}

async function options(select, path, label) {
  const answer = await fetch(`/api/v1/accounts/${panel.dataset.accountId}${path}?limit=50`, { credentials: "same-origin" });
  if (!answer.ok) return;
  const { items } = await answer.json();
  select.replaceChildren(
    ...items.map((item) => {
      const option = document.createElement("option");
      option.value = item.id;
      option.textContent = label(item);
      return option;
    }),
  );
}

async function showPinRecord() {
  const [room, up] = await Promise.all([call("GET", ""), call("GET", "/pins")]);
  if (!room || !up) return;
  document.getElementById("pin-clicks").textContent = String(room.pin_clicks);
  document.getElementById("pin-list").replaceChildren(
    ...up.items
      .filter((pin) => pin.kind !== "announcement")
      .map((pin) => {
        const item = document.createElement("li");
        item.className = "pin-clicks";
        item.dataset.pinId = pin.id;
        item.textContent =
          pin.kind === "coupon"
            ? `${pin.text}: ${pin.coupon.total - pin.coupon.stock} of ${pin.coupon.total} claimed`
            : `${pin.text}: ${pin.clicks} click${pin.clicks === 1 ? "" : "s"}`;
        return item;
      }),
  );
}

if (pinForm) {
  const form = pinForm.elements;
  const showFields = () => {
    for (const box of pinForm.querySelectorAll(".pin-fields")) box.hidden = box.dataset.kind !== form.kind.value;
  };
  form.kind.addEventListener("change", showFields);
  showFields();
  options(form.coupon_id, "/coupons", (c) => `${c.title} (${c.stock} left)`);
  options(form.content_id, "/contents", (c) => `${c.title || (c.text || "").slice(0, 40) || c.caption || c.id} · ${c.kind}`);
  pinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const made = await call("POST", "/pins", pinBody(form));
    if (made) {
      tell(`Pinned: ${made.text}`);
      if (form.kind.value === "announcement") form.text.value = "";
      showPinRecord();
    }
  });
  channel.addEventListener("pin", () => showPinRecord());
  channel.addEventListener("unpin", () => showPinRecord());
  showPinRecord();
  setInterval(showPinRecord, PIN_RECORD_MS);
}

// The economy: drop a red packet or a collectible from the budget, see the supporter board.
async function showBoard() {
  const board = await call("GET", "/supporters");
  if (!board) return;
  document.getElementById("board-points").textContent = String(board.points);
  document.getElementById("board-fans").textContent = String(board.fans);
  document.getElementById("board-top").textContent = board.items
    .slice(0, 3)
    .map((s, i) => `${i + 1}. ${s.name} ${s.points}`)
    .join(" · ");
}

function numbers(form, names) {
  return Object.fromEntries(names.map((name) => [name, Number(form.elements[name].value)]));
}

const packetForm = document.getElementById("packet-form");
if (packetForm) {
  packetForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { ...numbers(packetForm, ["total", "count", "min_tier", "opens_in_s"]), mode: packetForm.elements.mode.value };
    const made = await call("POST", "/red-packets", body);
    if (made) tell(`Red packet dropped: ${made.total} points in ${made.count} shares, commitment ${made.commitment.slice(0, 12)}…`);
  });
  const dropForm = document.getElementById("drop-form");
  dropForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: dropForm.elements.name.value, ...numbers(dropForm, ["editions", "min_tier"]) };
    const made = await call("POST", "/drops", body);
    if (made) tell(`Collectible dropped: ${made.name}, ${made.editions} editions.`);
  });
  channel.addEventListener("prop", () => showBoard());
  showBoard();
  // A poll of this room: its results reach viewers (and this page) over the channel.
  const pollForm = document.getElementById("poll-form");
  pollForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = pollForm.elements;
    const body = {
      question: form.question.value.trim(),
      options: form.options.value.split("\n").map((o) => o.trim()).filter(Boolean),
      closes_in_s: Number(form.minutes.value) * 60,
      min_tier: Number(form.min_tier.value),
      room_id: roomId,
    };
    const answer = await fetch(`/api/v1/accounts/${panel.dataset.accountId}/polls`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    const made = await answer.json();
    if (answer.ok) {
      tell(`Poll asked: ${made.question} (${made.options.length} answers).`);
      pollForm.reset();
    } else {
      tell(made.detail || `The server answered ${answer.status}; try again.`, "error");
      panel.dataset.lastError = made.code || String(answer.status);
    }
  });
}

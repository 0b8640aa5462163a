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

const pinForm = document.getElementById("pin-form");
if (pinForm) {
  pinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = pinForm.elements.text;
    if (await call("POST", "/pins", { kind: "announcement", text: input.value })) input.value = "";
  });
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
}

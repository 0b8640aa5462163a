// The room's economy on the viewer page: the props bar (a lock on what the fan's tier does not
// reach; the server decides at each send), props others send (with their effect), the
// supporter board, red packets (countdown, grab, the reveal once finished) and collectible
// drops (claim, the edition and its certificate), and the room's polls (vote, then the
// results as they come). Everything rides on the room channel
// (channel.js): sends, grabs and claims are ops whose ids make retries safe.
import { el } from "/static/dom.js";


function seconds(until) {
  return Math.max(0, Math.ceil((Date.parse(until) - Date.now()) / 1000));
}

export function mountEconomy(root, channel, { accountId, fanToken = null }) {
  const $ = (selector) => root.querySelector(selector);
  const bar = $(".props-bar");
  const board = $(".supporters");
  const packets = $(".red-packets");
  const dropsBox = $(".drops");
  const pollsBox = $(".polls");
  const shownPolls = new Map(); // id → poll as last told, with the fan's own answer
  const note = $(".economy-note");
  const chatLines = document.querySelector("#chat .chat-lines");
  const shownPackets = new Map(); // id → packet as last told
  const shownDrops = new Map();

  function say(text, kind = "muted") {
    note.textContent = text;
    note.className = `economy-note ${kind}`;
    note.hidden = !text;
  }

  async function loadProps() {
    const headers = fanToken ? { Authorization: `Bearer ${fanToken}` } : {};
    const answer = await fetch(`/api/v1/accounts/${accountId}/props`, { headers, credentials: "omit" });
    if (!answer.ok) return;
    const { props } = await answer.json();
    bar.replaceChildren(
      ...props.map((prop) => {
        const label = `${prop.name} · ${prop.price}`;
        const button = el("button", { type: "button", className: "prop", dataset: { propId: prop.id } }, label);
        if (prop.locked) {
          button.classList.add("locked");
          button.title = `for members of tier ${prop.min_tier} and up`;
          button.prepend("🔒 ");
        }
        button.disabled = !fanToken || prop.locked === true;
        button.addEventListener("click", () => sendProp(prop));
        return button;
      }),
    );
    bar.hidden = props.length === 0;
  }

  async function sendProp(prop) {
    const answer = await channel.send("send_prop", { prop_id: prop.id, count: 1 });
    if (answer.type === "ack") say(`Sent ${prop.name}: ${answer.result.balance} points left.`);
    else say(answer.message, "error");
    root.dataset.lastAnswer = answer.type === "ack" ? "sent" : answer.code;
  }

  function showBoard(list) {
    board.replaceChildren(...list.slice(0, 3).map((s, i) => el("li", {}, `${i + 1}. ${s.name} · ${s.points}`)));
    board.hidden = list.length === 0;
  }

  function packetCard(packet) {
    const card = el("div", { className: "red-packet", dataset: { packetId: packet.id, state: packet.state } });
    const head = el("strong", {}, `🧧 ${packet.total} points · ${packet.count} shares`);
    const status = el("span", { className: "packet-status" });
    const grab = el("button", { type: "button", className: "grab" }, "Grab");
    if (packet.mine !== undefined) card.dataset.mine = String(packet.mine);
    grab.disabled = !fanToken || packet.mine !== undefined || packet.state !== "open" || packet.grabbed_count >= packet.count;
    if (packet.state === "pending") status.textContent = ` opens in ${seconds(packet.opens_at)} s`;
    else if (packet.state === "finished") status.textContent = " finished";
    else status.textContent = ` ${packet.count - packet.grabbed_count} left`;
    if (packet.mine !== undefined) status.textContent += ` · you got ${packet.mine}`;
    grab.addEventListener("click", async () => {
      const answer = await channel.send("grab", { red_packet_id: packet.id });
      if (answer.type === "ack") {
        shownPackets.get(packet.id).mine = answer.result.amount;
        showPackets();
        say(`You got ${answer.result.amount} points from the red packet.`);
      } else {
        say(answer.message, "error");
      }
      root.dataset.lastAnswer = answer.type === "ack" ? "grabbed" : answer.code;
    });
    card.append(head, status, " ", grab);
    if (packet.reveal) {
      const check = el("a", { href: `/red-packets/${packet.id}`, target: "_blank", rel: "noopener" }, "check the split");
      card.append(" ", check);
    }
    return card;
  }

  function showPackets() {
    packets.replaceChildren(...[...shownPackets.values()].map(packetCard));
    packets.hidden = shownPackets.size === 0;
  }

  function dropCard(drop) {
    const card = el("div", { className: "drop", dataset: { dropId: drop.id } });
    card.append(el("strong", {}, `✨ ${drop.name}`), ` ${drop.claimed} / ${drop.editions} claimed `);
    const claim = el("button", { type: "button", className: "claim" }, "Claim");
    if (drop.mine !== undefined) card.dataset.edition = String(drop.mine);
    claim.disabled = !fanToken || drop.mine !== undefined || drop.claimed >= drop.editions;
    claim.addEventListener("click", async () => {
      const answer = await channel.send("claim", { drop_id: drop.id });
      if (answer.type === "ack") {
        shownDrops.get(drop.id).mine = answer.result.edition;
        showDrops();
        say(`Yours: ${drop.name} No. ${answer.result.edition} of ${answer.result.of}.`);
      } else {
        say(answer.message, "error");
      }
      root.dataset.lastAnswer = answer.type === "ack" ? "claimed" : answer.code;
    });
    card.append(claim);
    return card;
  }

  // A poll of the room: an answer button each until the fan votes (the channel's vote op;
  // once per fan, the server says), then the results, which arrive once a round.
  function pollCard(poll) {
    const card = el("div", { className: "poll", dataset: { pollId: poll.id, state: poll.state } });
    card.append(el("strong", {}, `📊 ${poll.question}`));
    const list = el("ul", { className: "poll-options" });
    const answered = poll.mine !== undefined || poll.state !== "open" || !fanToken;
    poll.options.forEach((text, i) => {
      const share = poll.total ? Math.round((100 * poll.counts[i]) / poll.total) : 0;
      if (answered) {
        const mark = poll.mine === i ? " ✓" : "";
        list.append(el("li", {}, `${text}${mark} · ${poll.counts[i]} (${share}%)`));
        return;
      }
      const answer = el("button", { type: "button", className: "vote" }, text);
      answer.addEventListener("click", async () => {
        const told = await channel.send("vote", { poll_id: poll.id, option: i });
        if (told.type === "ack") {
          shownPolls.set(poll.id, { ...shownPolls.get(poll.id), ...told.result, mine: told.result.option });
          showPolls();
        } else {
          say(told.message, "error");
        }
        root.dataset.lastAnswer = told.type === "ack" ? "voted" : told.code;
      });
      list.append(el("li", {}, answer));
    });
    card.append(list, el("small", {}, `${poll.total} vote${poll.total === 1 ? "" : "s"}${poll.state === "open" ? "" : " · closed"}`));
    return card;
  }

  function showPolls() {
    pollsBox.replaceChildren(...[...shownPolls.values()].map(pollCard));
    pollsBox.hidden = shownPolls.size === 0;
  }

  function showDrops() {
    dropsBox.replaceChildren(...[...shownDrops.values()].map(dropCard));
    dropsBox.hidden = shownDrops.size === 0;
  }

  channel.addEventListener("snapshot", ({ detail }) => {
    const data = detail.data;
    showBoard(data.supporters || []);
    shownPackets.clear();
    for (const packet of data.red_packets || []) shownPackets.set(packet.id, packet);
    showPackets();
    shownDrops.clear();
    for (const drop of data.drops || []) shownDrops.set(drop.id, drop);
    showDrops();
    const mine = new Map([...shownPolls].map(([id, poll]) => [id, poll.mine]));
    shownPolls.clear();
    for (const poll of data.polls || []) shownPolls.set(poll.id, { ...poll, mine: mine.get(poll.id) });
    showPolls();
  });
  channel.addEventListener("poll", ({ detail }) => {
    const { action, ...poll } = detail.data;
    shownPolls.set(poll.id, { ...shownPolls.get(poll.id), ...poll });
    showPolls();
  });
  channel.addEventListener("prop", ({ detail }) => {
    const data = detail.data;
    showBoard(data.supporters);
    if (chatLines) {
      const line = el("li", { className: `chat-prop effect-${data.effect}`, dataset: { seq: String(detail.seq) } });
      line.append(el("span", { className: "chat-name" }, data.name), ` sent ${data.prop} ×${data.count}`);
      chatLines.append(line);
      chatLines.scrollTop = chatLines.scrollHeight;
    }
  });
  channel.addEventListener("red_packet", ({ detail }) => {
    const data = detail.data;
    const known = shownPackets.get(data.id) || {};
    if (data.action === "grabbed") {
      if (!shownPackets.has(data.id)) return; // finished before this page knew it
      shownPackets.set(data.id, { ...known, grabbed_count: data.grabbed_count, grabbed_total: data.grabbed_total });
    } else {
      const { action, ...packet } = data;
      shownPackets.set(data.id, { ...known, ...packet, state: action === "finished" ? "finished" : packet.state });
    }
    showPackets();
  });
  channel.addEventListener("drop", ({ detail }) => {
    const { action, ...drop } = detail.data;
    shownDrops.set(drop.id, { ...shownDrops.get(drop.id), ...drop });
    showDrops();
  });
  setInterval(() => {
    // The countdown: a pending packet's label ticks, and it opens on time by itself.
    let changed = false;
    for (const packet of shownPackets.values()) {
      if (packet.state === "pending") {
        if (seconds(packet.opens_at) === 0) packet.state = "open";
        changed = true;
      }
    }
    if (changed) showPackets();
  }, 1000);
  loadProps();
}

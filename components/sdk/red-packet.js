// <la-red-packet room="room_…">: the room's red packet — its countdown, the grab button and
// the fan's share — live over the room channel; the grab is the channel's op, so a retry never
// takes a second share.
import { SIGN_IN, Widget, h, letGo, roomChannel } from "./core.js";

const MESSAGES = {
  red_packet_empty: "Every share is taken.",
  red_packet_finished: "This red packet has ended.",
  red_packet_not_open: "Not open yet.",
  tier_required: "This red packet is for members of a higher tier.",
};

export class LaRedPacket extends Widget {
  static idAttribute = "room";

  async load(current) {
    const channel = roomChannel(this.subject, this.token);
    this.channel = channel;
    this.packets = new Map();
    this.mine = new Map();
    this.locked = new Set();
    const onSnapshot = ({ detail }) => {
      this.packets = new Map(detail.data.red_packets.map((p) => [p.id, p]));
      this.draw("");
    };
    const onPacket = ({ detail }) => {
      const told = detail.data;
      const known = this.packets.get(told.id) || {};
      if (told.action === "dropped" && told.id !== known.id) this.lastNote = null; // news
      this.packets.set(told.id, { ...known, ...told, state: told.action === "finished" ? "finished" : told.state || known.state });
      this.draw();
    };
    const onGone = () => current() && this.unavailable();
    channel.events.addEventListener("snapshot", onSnapshot);
    channel.events.addEventListener("red_packet", onPacket);
    channel.events.addEventListener("gone", onGone);
    // The countdown: redrawn each second only while a packet is waiting to open.
    const tick = setInterval(() => current() && this.counting() && this.draw(), 1000);
    this.stop = () => {
      channel.events.removeEventListener("snapshot", onSnapshot);
      channel.events.removeEventListener("red_packet", onPacket);
      channel.events.removeEventListener("gone", onGone);
      clearInterval(tick);
      letGo(channel);
    };
    this.setState("loading");
    await channel.ready;
    if (current()) this.draw("");
  }

  counting() {
    const packet = this.packet();
    return packet !== null && packet.state !== "finished" && Date.parse(packet.opens_at) > Date.now() - 1000;
  }

  unavailable() {
    this.setState("error");
    this.show(h("p", { className: "error", part: "error", role: "alert" }, "This live is not available here."));
  }

  packet() {
    const open = [...this.packets.values()].filter((p) => p.state !== "finished");
    return open[open.length - 1] || [...this.packets.values()].pop() || null;
  }

  draw(note, kind = "note") {
    // A redraw without news keeps the last note and the keyboard focus.
    if (note === undefined) ({ note, kind } = this.lastNote || { note: "", kind: "note" });
    else this.lastNote = { note, kind };
    const focused = this.root.activeElement?.getAttribute("part") === "button";
    const packet = this.packet();
    const guest = !this.token;
    if (!packet) {
      this.setState("ready");
      this.show(h("div", { className: "box", part: "box" }, h("p", { className: "muted" }, "No red packet right now.")));
      return;
    }
    const wait = Math.max(0, Math.ceil((Date.parse(packet.opens_at) - Date.now()) / 1000));
    const mine = this.mine.get(packet.id);
    const over = packet.state === "finished" || packet.grabbed_count >= packet.count;
    const locked = this.locked.has(packet.id); // the server said the fan's tier is too low
    this.setState(over ? "ended" : guest ? "anonymous" : locked ? "locked" : "ready");
    let label = "Grab";
    if (mine !== undefined) label = `Got ${mine}`;
    else if (over) label = "All taken";
    else if (locked) label = "🔒 Members only";
    else if (wait > 0) label = `Opens in ${wait}s`;
    const box = h(
      "div",
      { className: "box", part: "box" },
      h("p", { className: "title", part: "title" }, `🧧 ${packet.total} points in ${packet.count} shares`),
      h(
        "div",
        { className: "row" },
        h("span", { className: "muted", part: "count" }, `${packet.grabbed_count} / ${packet.count} grabbed`),
        h("button", { type: "button", part: "button", disabled: guest || over || locked || wait > 0 || mine !== undefined, onclick: () => this.grab(packet) }, label),
      ),
      packet.min_tier > 0 ? h("p", { className: "muted" }, `For members of tier ${packet.min_tier} and up.`) : null,
    );
    this.show(box);
    this.note(box, guest && !over ? SIGN_IN : note, guest ? "note" : kind);
    if (focused) box.querySelector("button").focus();
  }

  async grab(packet) {
    const answer = await this.channel.send("grab", { red_packet_id: packet.id });
    if (answer.type === "ack") {
      this.mine.set(packet.id, answer.result.amount);
      this.draw(`You got ${answer.result.amount} points.`);
      this.emit("grabbed", { red_packet_id: packet.id, amount: answer.result.amount, repeat: answer.result.repeat });
    } else {
      if (answer.code === "tier_required") this.locked.add(packet.id);
      this.draw(MESSAGES[answer.code] || answer.message, "error");
    }
  }
}

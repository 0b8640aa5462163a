// <la-poll poll="pol_…">: the question, an answer button each, then the results as bars. In a
// room the results come live over the room channel; elsewhere they are read again every few
// seconds while the poll is open.
import { SIGN_IN, Widget, api, h, letGo, newKey, plural, roomChannel } from "./core.js";

const REREAD_MS = 5000;
const MESSAGES = {
  tier_required: "This poll is for members of a higher tier.",
  poll_closed: "The poll has closed.",
  already_voted: "You have voted in this poll.",
};

export class LaPoll extends Widget {
  static idAttribute = "poll";

  async load(current) {
    const poll = await api(`/polls/${this.path}`, { token: this.token });
    if (!current()) return;
    this.poll = poll;
    this.draw();
    this.follow(current);
  }

  follow(current) {
    if (this.poll.room_id) {
      const channel = roomChannel(this.poll.room_id, this.token);
      this.channel = channel;
      const told = ({ detail }) => {
        if (detail.data.id === this.poll.id && current()) this.update(detail.data);
      };
      channel.events.addEventListener("poll", told);
      this.stop = () => {
        channel.events.removeEventListener("poll", told);
        letGo(channel);
      };
      return;
    }
    const timer = setInterval(async () => {
      if (!current() || this.poll.state !== "open") return clearInterval(timer);
      this.update(await api(`/polls/${this.poll.id}`, { token: this.token }).catch(() => ({})));
    }, REREAD_MS);
    this.stop = () => clearInterval(timer);
  }

  update(fresh) {
    if (!fresh.counts) return;
    this.poll = { ...this.poll, counts: fresh.counts, total: fresh.total, state: fresh.state, mine: fresh.mine ?? this.poll.mine };
    this.draw();
  }

  draw(note = "", kind = "note") {
    const { poll } = this;
    const closed = poll.state !== "open";
    const voted = poll.mine !== null && poll.mine !== undefined;
    const guest = !this.token;
    // Locked once the server said the fan's tier is below the poll's (a page never knows it).
    this.setState(closed ? "ended" : guest ? "anonymous" : this.locked ? "locked" : "ready");
    const rows = poll.options.map((text, i) => {
      const share = poll.total ? Math.round((100 * poll.counts[i]) / poll.total) : 0;
      const label = `${text}${poll.mine === i ? " ✓" : ""}`;
      if (voted || closed || guest || this.locked) {
        return h(
          "li",
          { part: "result" },
          h("div", { className: "row" }, h("span", {}, label), h("span", { className: "muted" }, `${poll.counts[i]} · ${share}%`)),
          h("div", { className: "bar", part: "bar", style: `width:${share}%`, role: "presentation" }),
        );
      }
      return h("li", {}, h("button", { type: "button", part: "option", onclick: () => this.vote(i) }, text));
    });
    const box = h(
      "div",
      { className: "box", part: "box", role: "group", "aria-label": poll.question },
      h("p", { className: "title", part: "title" }, poll.question),
      h("ul", { style: "list-style:none;padding:0;display:grid;gap:.35em" }, ...rows),
      h("p", { className: "muted", part: "count" }, `${plural(poll.total, "vote")}${closed ? " · closed" : ""}`),
    );
    this.show(box);
    this.note(box, guest && !closed ? SIGN_IN : note, guest ? "note" : kind);
  }

  vote(option) {
    return this.once(() => this.cast(option));
  }

  async cast(option) {
    const before = this.poll;
    const counts = before.counts.slice();
    counts[option] += 1;
    this.poll = { ...before, counts, total: before.total + 1, mine: option };
    this.draw();
    try {
      let done;
      if (before.room_id) {
        const answer = await this.channel.send("vote", { poll_id: before.id, option });
        if (answer.type !== "ack") throw Object.assign(new Error(answer.message), { code: answer.code });
        done = answer.result;
      } else {
        done = await api(`/polls/${before.id}/votes`, { method: "POST", body: { option }, token: this.token, key: newKey() });
      }
      this.poll = { ...this.poll, counts: done.counts, total: done.total, mine: done.option };
      this.draw();
      this.emit("voted", { poll_id: before.id, option: done.option, counts: done.counts });
    } catch (error) {
      this.poll = before;
      if (error.code === "tier_required") this.locked = true;
      if (error.code === "poll_closed") this.poll = { ...before, state: "closed" };
      if (error.code === "already_voted") {
        const fresh = await api(`/polls/${this.path}`, { token: this.token }).catch(() => null);
        if (fresh) this.poll = { ...before, ...fresh };
      }
      this.draw(MESSAGES[error.code] || error.message, "error");
    }
  }
}

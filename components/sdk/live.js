// <la-live room="room_…">: the live badge — scheduled, live now (with the viewers, live over
// the room channel) or ended — the cover, and a link to watch.
import { Widget, api, h, letGo, roomChannel } from "./core.js";

const LABEL = { scheduled: "Coming up", live: "LIVE", ended: "Ended" };

export class LaLive extends Widget {
  static idAttribute = "room";

  async load(current) {
    const room = await api(`/rooms/${this.path}`);
    if (!current()) return;
    this.room = room;
    this.viewers = null;
    this.draw();
    if (room.state === "live") {
      const channel = roomChannel(room.id, this.token);
      const onSnapshot = ({ detail }) => current() && this.tell(detail.data.viewers, detail.data.room?.state);
      const onViewers = ({ detail }) => current() && this.tell(detail.data.count);
      const onRoom = ({ detail }) => current() && this.tell(this.viewers, detail.data.state);
      const onGone = () => current() && this.tell(null); // the badge stays; the count goes
      channel.events.addEventListener("gone", onGone);
      channel.events.addEventListener("snapshot", onSnapshot);
      channel.events.addEventListener("viewers", onViewers);
      channel.events.addEventListener("room", onRoom);
      this.stop = () => {
        channel.events.removeEventListener("snapshot", onSnapshot);
        channel.events.removeEventListener("viewers", onViewers);
        channel.events.removeEventListener("room", onRoom);
        channel.events.removeEventListener("gone", onGone);
        letGo(channel);
      };
    }
  }

  tell(viewers, state) {
    this.viewers = viewers;
    if (state) this.room = { ...this.room, state };
    this.draw();
  }

  draw() {
    const { room } = this;
    this.setState(room.state === "ended" ? "ended" : "ready");
    const when = room.state === "scheduled" && room.scheduled_at ? ` · ${new Date(room.scheduled_at).toLocaleString()}` : "";
    this.show(
      h(
        "div",
        { className: "box", part: "box" },
        room.cover_url ? h("img", { src: room.cover_url, alt: "", part: "picture", loading: "lazy" }) : null,
        h(
          "div",
          { className: "row" },
          h("span", { part: `badge badge-${room.state}`, className: "title", role: "status" }, `${LABEL[room.state] || room.state}${when}`),
          this.viewers !== null ? h("span", { className: "muted", part: "count" }, `${this.viewers} watching`) : null,
        ),
        h("a", { href: room.url, target: "_blank", rel: "noopener", part: "title" }, room.state === "live" ? `Watch: ${room.title}` : room.title),
      ),
    );
  }
}

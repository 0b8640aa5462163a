// <la-like content="cnt_…">: a like button with the count; optimistic, rolled back on an error.
import { SIGN_IN, Widget, api, h } from "./core.js";

export class LaLike extends Widget {
  static idAttribute = "content";

  async load(current) {
    const content = await api(`/contents/${this.path}`, { token: this.token });
    if (!current()) return;
    this.liked = content.liked === true;
    this.likes = content.counters.likes;
    this.draw();
  }

  draw(note = "", kind = "note") {
    const guest = !this.token;
    this.setState(guest ? "anonymous" : "ready");
    const button = h(
      "button",
      {
        type: "button",
        part: "button",
        "aria-pressed": String(this.liked),
        "aria-label": this.liked ? "Unlike" : "Like",
        disabled: guest,
        onclick: () => this.toggle(),
      },
      `♥ ${this.likes}`,
    );
    const box = h("div", { className: "row", part: "box" }, button);
    this.show(box);
    this.note(box, guest ? SIGN_IN : note, guest ? "note" : kind);
  }

  toggle() {
    return this.once(() => this.change());
  }

  async change() {
    const before = { liked: this.liked, likes: this.likes };
    this.liked = !before.liked;
    this.likes = before.likes + (this.liked ? 1 : -1);
    this.draw();
    try {
      const done = await api(`/contents/${this.path}/likes`, { method: this.liked ? "POST" : "DELETE", token: this.token });
      this.liked = done.liked;
      this.likes = done.likes;
      this.draw();
      this.emit("liked", { content_id: this.subject, liked: done.liked, likes: done.likes });
    } catch (error) {
      Object.assign(this, before);
      this.draw(error.message, "error");
    }
  }
}

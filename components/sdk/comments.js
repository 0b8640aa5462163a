// <la-comments content="cnt_…">: the newest comments (staff replies marked) and, for a fan,
// a box to write one — shown at once, taken back if the server refuses it.
import { SIGN_IN, Widget, api, h, newKey } from "./core.js";

const PAGE = 20;

export class LaComments extends Widget {
  static idAttribute = "content";

  async load(current) {
    const page = await api(`/contents/${this.path}/comments?limit=${PAGE}`, { token: this.token });
    if (!current()) return;
    this.items = page.items;
    this.draw();
  }

  line(comment) {
    return h(
      "li",
      { part: "comment", "data-pending": comment.pending ? "" : null },
      h("span", { className: "title" }, comment.author_name),
      comment.by_staff ? h("span", { className: "muted", part: "staff" }, " · staff") : null,
      " ",
      h("span", {}, comment.text),
    );
  }

  draw(note = "", kind = "note") {
    const guest = !this.token;
    this.setState(guest ? "anonymous" : "ready");
    const input = h("input", { name: "text", maxlength: "500", placeholder: "Add a comment…", "aria-label": "Your comment", disabled: guest, part: "input" });
    const form = h(
      "form",
      { className: "row", onsubmit: (event) => this.post(event, input) },
      input,
      h("button", { type: "submit", part: "button", disabled: guest }, "Post"),
    );
    const list = this.items.length
      ? h("ol", { part: "list", "aria-label": "Comments" }, ...this.items.map((c) => this.line(c)))
      : h("p", { className: "muted" }, "No comments yet.");
    const box = h("div", { className: "box", part: "box" }, list, form);
    this.show(box);
    this.note(box, guest ? SIGN_IN : note, guest ? "note" : kind);
  }

  async post(event, input) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const before = this.items;
    this.items = [{ id: "pending", author_name: "You", text, by_staff: false, pending: true }, ...before];
    this.draw("Posting…");
    try {
      const made = await api(`/contents/${this.path}/comments`, { method: "POST", body: { text }, token: this.token, key: newKey() });
      this.items = [made, ...before];
      this.draw(made.hidden ? "Your comment waits for the brand's review." : "");
      this.emit("commented", { content_id: this.subject, comment_id: made.id });
    } catch (error) {
      this.items = before;
      this.draw(error.message, "error");
      this.root.querySelector("input").value = text;
    }
  }
}

// <la-follow account="acc_…">: the account's name and followers, and a follow button that
// answers at once (and goes back if the server says no).
import { SIGN_IN, Widget, api, h, plural } from "./core.js";

export class LaFollow extends Widget {
  static idAttribute = "account";

  async load(current) {
    const account = await api(`/accounts/${this.path}`, { token: this.token });
    if (!current()) return;
    this.account = account;
    this.draw();
  }

  draw(note = "", kind = "note") {
    const { account } = this;
    const following = account.following === true;
    const guest = !this.token;
    this.setState(guest ? "anonymous" : "ready");
    const button = h(
      "button",
      {
        type: "button",
        part: "button",
        "aria-pressed": String(following),
        disabled: guest,
        onclick: () => this.toggle(),
      },
      following ? "Following" : "Follow",
    );
    const box = h(
      "div",
      { className: "box", part: "box" },
      h(
        "div",
        { className: "row" },
        account.avatar_url ? h("img", { src: account.avatar_url, alt: "", width: "32", height: "32", part: "avatar" }) : null,
        h("a", { href: account.url, target: "_blank", rel: "noopener", className: "title", part: "title" }, account.name),
        h("span", { className: "muted", part: "count" }, plural(account.follower_count, "follower")),
        button,
      ),
    );
    this.show(box);
    this.note(box, guest ? SIGN_IN : note, guest ? "note" : kind);
  }

  toggle() {
    return this.once(() => this.change());
  }

  async change() {
    const before = { ...this.account };
    const follow = before.following !== true;
    // Optimistic: the button and count change now; the server's answer corrects them.
    this.account = { ...before, following: follow, follower_count: before.follower_count + (follow ? 1 : -1) };
    this.draw();
    try {
      const done = await api(`/accounts/${before.id}/follow`, { method: follow ? "POST" : "DELETE", token: this.token });
      this.account = { ...this.account, following: done.following, follower_count: done.follower_count };
      this.draw();
      this.emit(done.following ? "followed" : "unfollowed", { account_id: before.id, follower_count: done.follower_count });
    } catch (error) {
      this.account = before;
      this.draw(error.message, "error");
    }
  }
}

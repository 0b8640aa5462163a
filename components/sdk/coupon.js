// <la-coupon coupon="cpn_…">: the coupon, what is left, and a claim button; the server keeps
// the stock and each fan's limit, and the widget shows what it answered.
import { SIGN_IN, Widget, api, h, newKey } from "./core.js";

const MESSAGES = {
  coupon_out_of_stock: "Every coupon of this one is claimed.",
  coupon_limit_reached: "You hold as many of this coupon as one fan may.",
  coupon_not_started: "Claims have not opened yet.",
  coupon_expired: "This coupon has expired.",
};

export class LaCoupon extends Widget {
  static idAttribute = "coupon";

  async load(current) {
    const coupon = await api(`/coupons/${this.path}`, { token: this.token });
    if (!current()) return;
    this.coupon = coupon;
    this.draw();
  }

  draw(note = "", kind = "note") {
    const { coupon } = this;
    const now = Date.now();
    const ended = Date.parse(coupon.valid_until) <= now;
    const soldOut = coupon.stock < 1;
    const full = coupon.claimed !== null && coupon.claimed !== undefined && coupon.claimed >= coupon.per_fan_limit;
    const guest = !this.token;
    this.setState(ended ? "ended" : soldOut ? "sold-out" : guest ? "anonymous" : "ready");
    const label = soldOut ? "Sold out" : ended ? "Expired" : full ? "Claimed" : "Claim";
    const box = h(
      "div",
      { className: "box", part: "box" },
      h("p", { className: "title", part: "title" }, `🎟 ${coupon.title}`),
      coupon.description ? h("p", { className: "muted" }, coupon.description) : null,
      h(
        "div",
        { className: "row" },
        h("span", { className: "muted", part: "count" }, `${coupon.stock} of ${coupon.total} left`),
        h("button", { type: "button", part: "button", disabled: guest || soldOut || ended || full, onclick: () => this.claim() }, label),
      ),
    );
    this.show(box);
    this.note(box, guest && !soldOut && !ended ? SIGN_IN : note, guest ? "note" : kind);
  }

  claim() {
    return this.once(() => this.take());
  }

  async take() {
    const before = this.coupon;
    this.coupon = { ...before, stock: before.stock - 1, claimed: (before.claimed || 0) + 1 };
    this.draw("Claiming…");
    try {
      const done = await api(`/coupons/${before.id}/claims`, { method: "POST", token: this.token, key: newKey() });
      this.coupon = { ...this.coupon, stock: done.stock };
      this.draw(`Claimed: №${done.number}. It is in your coupons in the brand's app.`);
      this.emit("claimed", { coupon_id: before.id, claim_id: done.id, number: done.number, stock: done.stock });
    } catch (error) {
      this.coupon = before;
      if (error.code === "coupon_out_of_stock") this.coupon = { ...before, stock: 0 };
      if (error.code === "coupon_limit_reached") this.coupon = { ...before, claimed: before.per_fan_limit };
      this.draw(MESSAGES[error.code] || error.message, "error");
    }
  }
}

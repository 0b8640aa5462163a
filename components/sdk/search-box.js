// <la-search-box q="keyword">: the brand card a search for the keyword shows — the account,
// its services, coupons claimable now, its newest contents and its live, if any.
import { SERVER, Widget, api, h } from "./core.js";

export class LaSearchBox extends Widget {
  static idAttribute = "q";

  async load(current) {
    const found = await api(`/search/box?q=${encodeURIComponent(this.subject)}`);
    if (!current()) return;
    const { box } = found;
    if (!box) {
      this.setState("ready");
      this.show(h("div", { className: "box", part: "box" }, h("p", { className: "muted" }, `No brand answers “${this.subject}”.`)));
      return;
    }
    this.setState("ready");
    const link = (href, text, part) => h("a", { href, target: "_blank", rel: "noopener", part }, text);
    this.show(
      h(
        "section",
        { className: "box", part: "box", "aria-label": box.account.name },
        h(
          "div",
          { className: "row" },
          box.account.avatar_url ? h("img", { src: box.account.avatar_url, alt: "", width: "40", height: "40" }) : null,
          h("span", { className: "title", part: "title" }, box.account.name),
          h("span", { className: "muted" }, `@${box.account.handle} · ${box.account.follower_count} followers`),
          box.live ? h("a", { href: `${SERVER}/r/${box.live.room_id}`, target: "_blank", rel: "noopener", part: "live" }, "LIVE now") : null,
        ),
        box.services.length ? h("ul", { part: "services" }, ...box.services.map((s) => h("li", {}, link(s.click_url, s.title, "service")))) : null,
        box.coupons.length ? h("ul", { part: "coupons" }, ...box.coupons.map((c) => h("li", {}, `🎟 ${c.title} · ${c.stock} left`))) : null,
        box.contents.length ? h("ul", { part: "contents" }, ...box.contents.map((c) => h("li", {}, link(c.url, c.title || c.text.slice(0, 40), "content")))) : null,
      ),
    );
  }
}

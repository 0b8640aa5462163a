// <la-content-card content="cnt_…">: a published content as a card — its picture, title,
// counts and its service links. A service link goes through the content's click URL (counted
// once); inside a mini-program the host is told to `navigate` instead.
import { Widget, api, h } from "./core.js";

export class LaContentCard extends Widget {
  static idAttribute = "content";

  async load(current) {
    const content = await api(`/contents/${this.path}`, { token: this.token });
    if (!current()) return;
    this.setState("ready");
    const title = content.title || content.text.slice(0, 60) || content.caption.slice(0, 60);
    const picture = content.media?.poster_url || content.images.find((i) => i.thumb_url)?.thumb_url;
    const links = content.service_links.map((link) =>
      h(
        "li",
        {},
        h(
          "a",
          {
            href: link.click_url,
            target: "_blank",
            rel: "noopener",
            part: "service",
            onclick: (event) => this.navigate(event, link),
          },
          link.title,
        ),
      ),
    );
    this.show(
      h(
        "article",
        { className: "box", part: "box" },
        picture ? h("img", { src: picture, alt: "", part: "picture", loading: "lazy" }) : null,
        h("a", { href: content.url, target: "_blank", rel: "noopener", className: "title", part: "title" }, title),
        h("p", { className: "muted", part: "count" }, `♥ ${content.counters.likes} · 💬 ${content.counters.comments}`),
        links.length ? h("ul", { part: "services" }, ...links) : null,
      ),
    );
  }

  navigate(event, link) {
    // A host that opens mini-program pages itself (a web-view) listens for `navigate`; the
    // link still counts, through its click URL, when the host lets the page follow it.
    this.emit("navigate", { app_id: link.app_id, page: link.page, query: link.query, title: link.title, click_url: link.click_url });
    if (window.__lifeaccountBridge) {
      event.preventDefault();
      window.__lifeaccountBridge(link);
    }
  }
}

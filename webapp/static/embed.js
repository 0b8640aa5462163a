// An embed page's side of DESIGN §7: the fan token from the URL's fragment (then dropped from
// the address) or from the host's postMessage {source: "lifeaccount", type: "token", token};
// and what happens, told to the host — postMessage({source: "lifeaccount", type, widget,
// data}) with types ready, resize, followed/unfollowed, liked, voted, grabbed, claimed,
// navigate — only when the host's origin is one the account lists; inside a mini-program
// also through its bridge, which opens a service link itself.
import { configure, onEvent } from "/sdk/lifeaccount.js";

const body = document.body;
const widget = body.dataset.widget;
const origins = JSON.parse(body.dataset.origins || "[]");
const anywhere = body.dataset.anywhere === "true";

// The host's origin: the frame's parent (ancestorOrigins where the browser has it, else the
// referrer's), or none at the top (a web-view).
function hostOrigin() {
  if (window.parent === window) return null;
  if (location.ancestorOrigins && location.ancestorOrigins.length) return location.ancestorOrigins[0];
  try {
    return document.referrer ? new URL(document.referrer).origin : null;
  } catch (_) {
    return null;
  }
}

const host = hostOrigin();
const trusted = host !== null && (origins.includes(host) || (anywhere && host !== "null"));
const miniProgram = window.wx && window.wx.miniProgram ? window.wx.miniProgram : null;

function tell(type, data = {}) {
  const message = { source: "lifeaccount", type, widget, data };
  if (trusted) window.parent.postMessage(message, host);
  if (miniProgram && typeof miniProgram.postMessage === "function") miniProgram.postMessage({ data: message });
}

const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  configure({ token: fragment.get("token") });
  history.replaceState(null, "", location.pathname + location.search);
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || event.origin !== host || !origins.includes(event.origin)) return;
  const message = event.data;
  if (message && message.source === "lifeaccount" && message.type === "token" && typeof message.token === "string") {
    configure({ token: message.token });
  }
});

onEvent((type, _widget, data) => tell(type, data));

if (miniProgram && typeof miniProgram.navigateTo === "function") {
  // A service link opens the mini-program page itself, with the click id in its query; the
  // click is recorded as /go would (a request it answers with its redirect, not followed),
  // so the brand's report of the order finds it.
  window.__lifeaccountBridge = (link) => {
    const query = new URLSearchParams(link.query || {});
    if (link.click_url) {
      query.set("la_click", link.click_url.split("/").pop());
      fetch(link.click_url, { redirect: "manual", credentials: "omit", keepalive: true }).catch(() => {});
    }
    miniProgram.navigateTo({ url: `/${link.page.replace(/^\//, "")}?${query}` });
  };
}

let height = 0;
new ResizeObserver(() => {
  const now = Math.ceil(document.documentElement.getBoundingClientRect().height);
  if (now !== height) {
    height = now;
    tell("resize", { height });
  }
}).observe(document.documentElement);

customElements.whenDefined(document.querySelector("main > *").localName).then(() => tell("ready", {}));

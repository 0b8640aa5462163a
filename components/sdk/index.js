// The lifeaccount widget SDK (DESIGN §7): one ES module defining every widget as a custom
// element. <script type="module" src="https://<server>/sdk/lifeaccount.js"></script>, then
// e.g. <la-follow account="acc_…"></la-follow>; LifeAccount.configure({token}) hands the fan
// token to every widget of the page.
import { LaComments } from "./comments.js";
import { LaContentCard } from "./content-card.js";
import { SERVER, configure, onEvent } from "./core.js";
import { LaCoupon } from "./coupon.js";
import { LaFollow } from "./follow.js";
import { LaLike } from "./like.js";
import { LaLive } from "./live.js";
import { LaPoll } from "./poll.js";
import { LaRedPacket } from "./red-packet.js";
import { LaSearchBox } from "./search-box.js";

export const WIDGETS = {
  "la-follow": LaFollow,
  "la-like": LaLike,
  "la-comments": LaComments,
  "la-poll": LaPoll,
  "la-content-card": LaContentCard,
  "la-live": LaLive,
  "la-red-packet": LaRedPacket,
  "la-coupon": LaCoupon,
  "la-search-box": LaSearchBox,
};

for (const [name, element] of Object.entries(WIDGETS)) {
  if (!customElements.get(name)) customElements.define(name, element);
}

export const LifeAccount = { configure, onEvent, server: SERVER, version: "1" };
window.LifeAccount = window.LifeAccount || LifeAccount;
export { configure, onEvent };

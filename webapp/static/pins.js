// What the room pins above its chat, as cards: the announcement, a service link into the
// brand's mini-program, a coupon, a content. A card never says where it leads: a tap asks the
// room channel for a click id of this viewer's own (the click op) and follows /go/{click_id},
// where the server counts it once and redirects. A coupon card is claimed in place (the claim
// op): the server keeps its stock and each fan's limit, the card shows what it answered.
import { el } from "/static/dom.js";

const CLAIM_ERRORS = {
  read_only: "Coupons are for fans: open this room from the brand's app to claim one.",
  coupon_out_of_stock: "Every coupon of this one is claimed.",
  coupon_limit_reached: "You hold as many of this coupon as one fan may.",
};

function picture(url) {
  return url && /^https?:\/\//.test(url) ? el("img", { src: url, alt: "", className: "pin-image", loading: "lazy" }) : "";
}

// Follow a card: the new tab opens within the tap (a popup blocker lets it), then goes where
// the click id leads; without tabs (a mini-program web-view) this page goes.
async function follow(pin, channel, say, button) {
  const tab = window.open("", "_blank");
  button.disabled = true;
  const answer = await channel.send("click", { pin_id: pin.id });
  button.disabled = false;
  if (answer.type !== "ack") {
    if (tab) tab.close();
    say(answer.message || "That card cannot be opened now; try again.", "error");
    return;
  }
  if (tab) {
    tab.opener = null;
    tab.location.href = answer.result.go;
  } else {
    window.location.assign(answer.result.go);
  }
}

async function claim(pin, channel, say, stock) {
  const answer = await channel.send("claim", { coupon_id: pin.coupon.id });
  if (answer.type === "ack") {
    stock.textContent = `${answer.result.stock} left`;
    say(`Coupon claimed: №${answer.result.number}. Find it under your coupons in the brand's app.`);
  } else {
    if (answer.code === "coupon_out_of_stock") stock.textContent = "0 left";
    say(CLAIM_ERRORS[answer.code] || answer.message, "error");
  }
  return answer;
}

export function pinItem(pin, channel, { moderate = null, say }) {
  const item = el("div", { className: `chat-pin pin-${pin.kind}`, dataset: { pinId: pin.id, kind: pin.kind } });
  item.append(el("span", { className: "pin-mark", "aria-label": "pinned" }, "📌"), " ");
  if (pin.kind === "service" || pin.kind === "content") {
    const go = el("button", { type: "button", className: "pin-go" }, pin.kind === "service" ? "Open" : "Read");
    go.addEventListener("click", () => follow(pin, channel, say, go));
    item.append(picture(pin.service && pin.service.image), el("span", { className: "pin-title" }, pin.text), " ", go);
  } else if (pin.kind === "coupon") {
    const stock = el("span", { className: "pin-stock" }, `${pin.coupon.stock} left`);
    const take = el("button", { type: "button", className: "pin-claim" }, "Claim");
    take.addEventListener("click", async () => {
      take.disabled = true;
      const answer = await claim(pin, channel, say, stock);
      take.disabled = answer.type === "ack" ? false : ["coupon_out_of_stock", "coupon_limit_reached"].includes(answer.code);
      item.dataset.lastAnswer = answer.type === "ack" ? "claimed" : answer.code;
    });
    const limit = pin.coupon.per_fan_limit > 1 ? ` · up to ${pin.coupon.per_fan_limit} each` : "";
    item.append(
      el("span", { className: "pin-title" }, `🎟 ${pin.text}`),
      " ",
      el("small", { className: "muted" }, `${pin.coupon.description || ""} `.trimStart()),
      stock,
      el("small", { className: "muted" }, limit),
      " ",
      take,
    );
  } else {
    item.append(pin.text);
  }
  if (moderate) item.append(" ", moderate.unpin(pin));
  return item;
}

// A red packet's check, done in the browser: from the reveal (the seed and the shares) it
// recomputes the split with the documented generator (docs/red-packets.md: double-mean-v1 or
// equal-v1, HMAC-SHA256 draws), the commitment (SHA-256), and checks that each grab received
// the share of its index. The verdict is left in data-verdict ("valid" | "invalid" | "pending").
const root = document.getElementById("packet-check");
const verdict = document.getElementById("verdict");
const list = document.getElementById("checks");
const encoder = new TextEncoder();
const SPACE = 2n ** 256n;

function hexBytes(hex) {
  return new Uint8Array(hex.match(/../g).map((pair) => parseInt(pair, 16)));
}

function toHex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function draw(key, i, hi) {
  const limit = SPACE - (SPACE % BigInt(hi));
  for (let c = 0; ; c += 1) {
    const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`double-mean-v1:${i}:${c}`));
    const x = BigInt(`0x${toHex(mac)}`);
    if (x < limit) return 1 + Number(x % BigInt(hi));
  }
}

async function split(seedHex, total, count, mode) {
  if (mode === "equal") {
    const base = Math.floor(total / count);
    const extra = total % count;
    return Array.from({ length: count }, (_, i) => (i < extra ? base + 1 : base));
  }
  const key = await crypto.subtle.importKey("raw", hexBytes(seedHex), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const shares = [];
  let left = total;
  for (let i = 0; i < count - 1; i += 1) {
    const rest = count - i;
    const hi = Math.min(Math.floor((2 * left) / rest), left - (rest - 1));
    const share = await draw(key, i, hi);
    shares.push(share);
    left -= share;
  }
  shares.push(left);
  return shares;
}

function check(ok, text) {
  const item = document.createElement("li");
  item.textContent = `${ok ? "✓" : "✗"} ${text}`;
  item.className = ok ? "notice" : "error";
  list.append(item);
  return ok;
}

async function run() {
  const answer = await fetch(`/api/v1/red-packets/${root.dataset.packetId}`, { credentials: "omit" });
  const packet = await answer.json();
  if (!packet.reveal) {
    root.dataset.verdict = "pending";
    verdict.textContent = "The seed is revealed when the packet finishes (every share grabbed, or expired); come back then.";
    return;
  }
  const { seed, shares } = packet.reveal;
  const mine = await split(seed, packet.total, packet.count, packet.mode);
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(`${seed}:${shares.join(",")}`));
  const results = [
    check(mine.length === shares.length && mine.every((s, i) => s === shares[i]), "the seed splits the total into exactly the revealed shares"),
    check(toHex(digest) === packet.commitment, "the seed and the shares hash to the commitment published at the drop"),
    check(shares.every((s) => s >= 1) && shares.reduce((a, b) => a + b, 0) === packet.total, "every share is at least 1 point and they add up to the total"),
    check((packet.grabs || []).every((g) => g.amount === shares[g.n]), `each of the ${(packet.grabs || []).length} grabs received the share of its turn`),
  ];
  const ok = results.every(Boolean);
  root.dataset.verdict = ok ? "valid" : "invalid";
  verdict.textContent = ok ? "This red packet was split fairly, as committed at the drop." : "This red packet does NOT match what was committed.";
}

run();

// The room page's countdown to a scheduled live (webapp/templates/room.html): the time element
// carries the start in its datetime attribute; this turns it into what is left, once a second.
// The server renders the start as text, so without this script the page still says when.
const clock = document.getElementById("countdown");

function left(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const pad = (n) => String(n).padStart(2, "0");
  const hms = `${pad(Math.floor((total % 86400) / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  return days ? `${days} d ${hms}` : hms;
}

function tick() {
  const ms = Date.parse(clock.getAttribute("datetime")) - Date.now();
  if (Number.isNaN(ms)) return;
  clock.textContent = ms > 0 ? `in ${left(ms)}` : "any moment now";
  clock.dataset.left = String(Math.max(0, Math.round(ms / 1000)));
}

if (clock) {
  tick();
  setInterval(tick, 1000);
}

// The content page's script. The player: HLS through hls.js wherever Media Source Extensions work, the
// browser's own HLS where they do not (iOS Safari before 17.1), else the MP4 file.
//
// hls.js comes first, not native HLS: recent Chromium has an HLS player of its own
// (canPlayType("application/vnd.apple.mpegurl") answers "maybe" in Debian's chromium 156), so
// that answer no longer singles out Safari, and hls.js gives every MSE browser the same rendition switching and the
// same recovery (a fatal error falls back to the MP4 file below). The choice is left in
// video.dataset.player ("hls.js" | "native" | "mp4") for the tests and for support.
const video = document.getElementById("player");

function playMp4(reason) {
  const mp4 = video.dataset.mp4;
  if (!mp4) return;
  video.dataset.player = "mp4";
  if (reason) video.dataset.fallbackReason = reason;
  video.src = mp4;
}

function start() {
  const hls = video.dataset.hls;
  const Hls = window.Hls;
  if (hls && Hls && Hls.isSupported()) {
    const player = new Hls({ capLevelToPlayerSize: true });
    let recovered = false;
    player.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      // One recovery attempt for a media (decode) error, as the hls.js docs advise; any
      // other fatal error, or a second one, hands over to the MP4 file.
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
        recovered = true;
        player.recoverMediaError();
        return;
      }
      player.destroy();
      playMp4(`hls.js: ${data.details}`);
    });
    player.loadSource(hls);
    player.attachMedia(video);
    video.dataset.player = "hls.js";
    window.laPlayer = player; // for the console, and the tests' checks
  } else if (hls && video.canPlayType("application/vnd.apple.mpegurl")) {
    video.dataset.player = "native";
    video.src = hls;
  } else {
    playMp4(Hls ? "" : "hls.js did not load");
  }
}

// What the page reports (DESIGN §4): a view of any content, and for a video each play and how
// far it got, so the brand sees plays and the completion rate. The calls go without cookies:
// they are the anonymous viewer's, counted once per viewer id (kept in localStorage) per
// window by the server, which also caps each address. A failed report never disturbs the page.
const article = document.querySelector("article.content[data-content-id]");
const api = article ? `/api/v1/contents/${article.dataset.contentId}` : "";

function viewerId() {
  try {
    let id = localStorage.getItem("la_viewer");
    if (!id) {
      id = `v-${crypto.randomUUID()}`;
      localStorage.setItem("la_viewer", id);
    }
    return id;
  } catch {
    return undefined; // storage refused (private mode): the server counts by address alone
  }
}

async function report(method, path, body) {
  try {
    const answer = await fetch(`${api}${path}`, {
      method,
      credentials: "omit",
      keepalive: true,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return answer.ok ? await answer.json() : null;
  } catch {
    return null;
  }
}

function trackPlays() {
  let play = null; // the current play's id, once the server has counted its start
  let starting = false;
  let completed = false;
  let watched = 0;
  let last = null;
  video.addEventListener("timeupdate", () => {
    // Seconds actually played: jumps by seeking do not count.
    const now = video.currentTime;
    if (last !== null && now > last && now - last < 2) watched += now - last;
    last = now;
    if (play && !completed && video.duration && watched >= 0.9 * video.duration) {
      completed = true;
      report("PATCH", `/plays/${play}`, { watched_s: watched });
    }
  });
  video.addEventListener("seeking", () => {
    last = null;
  });
  video.addEventListener("playing", async () => {
    if (play || starting) return;
    starting = true;
    const viewer = viewerId();
    const started = await report("POST", "/plays", viewer ? { viewer } : {});
    play = started ? started.play_id : null;
    video.dataset.playId = play || "";
  });
  video.addEventListener("ended", async () => {
    if (!play) return;
    await report("PATCH", `/plays/${play}`, { watched_s: watched, completed: true });
    video.dataset.reported = "ended";
    // Watching again is a new play.
    play = null;
    starting = false;
    completed = false;
    watched = 0;
  });
}

if (video) {
  start();
  trackPlays();
}
if (api) {
  const viewer = viewerId();
  report("POST", "/views", viewer ? { viewer } : {});
}

// The content page's player: HLS through hls.js wherever Media Source Extensions work, the
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

if (video) start();

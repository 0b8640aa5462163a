// The room page's player: WebRTC through WHEP while a seat is free (under a second behind the
// host), HLS through hls.js otherwise (a few seconds behind, for any number of viewers). The
// room's state is polled, so the page moves from the countdown to the live to the replay link
// (once the replay is published) by itself. The path taken is left in video.dataset.player
// ("whep" | "hls" | "native") for support and for the tests.
const video = document.getElementById("live-player");
const page = document.querySelector("[data-room-id]");
const roomId = page ? page.dataset.roomId : null;
const POLL_MS = 5000;
const GATHER_MS = 2000;

let playing = false;
let peer = null;
let seat = null; // the WHEP session's URL

function gathered(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    connection.addEventListener("icegatheringstatechange", () => {
      if (connection.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, GATHER_MS);
  });
}

async function playWhep(url) {
  const connection = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  connection.addTransceiver("video", { direction: "recvonly" });
  connection.addTransceiver("audio", { direction: "recvonly" });
  const media = new MediaStream();
  connection.addEventListener("track", (event) => {
    media.addTrack(event.track);
    video.srcObject = media;
  });
  await connection.setLocalDescription(await connection.createOffer());
  await gathered(connection);
  const answer = await fetch(url, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/sdp" },
    body: connection.localDescription.sdp,
  });
  if (answer.status !== 201) {
    connection.close();
    // 503: every WebRTC seat is taken; HLS has room for everyone.
    throw new Error(`WHEP answered ${answer.status}`);
  }
  seat = new URL(answer.headers.get("Location"), url).href;
  await connection.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  connection.addEventListener("connectionstatechange", () => {
    if (connection.connectionState === "failed" && connection === peer) {
      peer = null;
      connection.close();
      playHls(video.dataset.hls);
    }
  });
  peer = connection;
  video.dataset.player = "whep";
}

function playHls(url) {
  const Hls = window.Hls;
  video.srcObject = null;
  if (Hls && Hls.isSupported()) {
    const player = new Hls({ lowLatencyMode: true, liveSyncDurationCount: 2 });
    player.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      // A viewer who arrives in the first seconds of a live finds no playlist yet (404), and
      // a network blip stops the loader: keep asking, the live is there in a moment.
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
        setTimeout(() => player.loadSource(url), 1000);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        player.recoverMediaError();
      }
    });
    player.loadSource(url);
    player.attachMedia(video);
    window.laPlayer = player;
    video.dataset.player = "hls";
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    video.dataset.player = "native";
  }
}

async function start() {
  if (playing || !video) return;
  playing = true;
  // ?player=hls skips WebRTC (a viewer on a network that blocks UDP, or a test of HLS).
  const forced = new URLSearchParams(window.location.search).get("player");
  try {
    if (forced === "hls") throw new Error("HLS asked for");
    await playWhep(video.dataset.whep);
  } catch (error) {
    video.dataset.whepError = error.message;
    playHls(video.dataset.hls);
  }
  video.muted = true; // autoplay is allowed muted; the controls unmute
  video.play().catch(() => {});
}

function leave() {
  if (seat) {
    fetch(seat, { method: "DELETE", credentials: "omit", keepalive: true }).catch(() => {});
    seat = null;
  }
}

async function replayPublished(contentId) {
  const answer = await fetch(`/api/v1/contents/${contentId}`, { credentials: "omit" });
  return answer.ok; // a content answers anonymous readers once it is published
}

async function poll() {
  try {
    const answer = await fetch(`/api/v1/rooms/${roomId}`, { credentials: "omit" });
    if (!answer.ok) return;
    const room = await answer.json();
    if (page.dataset.state !== room.state) {
      window.location.reload();
    } else if (page.dataset.replay === "pending" && room.replay_content_id) {
      if (await replayPublished(room.replay_content_id)) window.location.reload();
    }
  } catch (_) {
    // offline for a moment: try again next time
  }
}

if (page && page.dataset.state === "live") start();
if (roomId && (page.dataset.state !== "ended" || page.dataset.replay === "pending")) {
  setInterval(poll, POLL_MS);
}
window.addEventListener("pagehide", leave);

// The host page: go live from the camera and microphone over WHIP (RFC 9725).
//
// The browser offers its tracks in one SDP with every ICE candidate already gathered (no
// trickle, as OBS does too), POSTs it to the room's WHIP URL and sets the answer; the answer's
// Location names the session, which a DELETE ends. The call rides on the staff session and
// its CSRF token (a host never needs to paste the room's stream key into a page). Devices can
// be switched while live: the new track replaces the old one on the same connection. A
// dropped connection is retried a few times, within the room's grace period, so the live goes
// on (viewers see a short gap, the recording keeps both parts). While live, the page shows
// what the browser sends and what the server receives and serves (GET …/health).
const root = document.getElementById("host");
const roomId = root.dataset.roomId;
const whipUrl = root.dataset.whipUrl;
const csrfToken = root.dataset.csrfToken;
const $ = (id) => document.getElementById(id);
const preview = $("preview");
const cameraSelect = $("camera");
const micSelect = $("microphone");
const goButton = $("go-live");
const endButton = $("end-live");
const statusBox = $("live-status");
const errorBox = $("live-error");
const timerBox = $("live-timer");
const healthBox = $("live-health");
const RETRIES = 5;
const GATHER_MS = 3000;
const HEALTH_MS = 2000;

let stream = null;
let pc = null;
let resource = null; // the WHIP session's URL, from Location
let startedAt = null;
let ticking = null;
let looking = null; // the health poll
let ending = false;
let retries = 0;
let lastSent = null; // {bytes, at} of the previous look at the video sender

function say(text) {
  statusBox.textContent = text;
  root.dataset.state = text;
}

function fail(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function clearFailure() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

async function problemText(answer) {
  try {
    const body = await answer.json();
    if (body && body.detail) return body.detail;
  } catch (_) {
    // not JSON
  }
  return `the server answered ${answer.status}`;
}

async function openDevices() {
  const constraints = {
    video: {
      deviceId: cameraSelect.value ? { exact: cameraSelect.value } : undefined,
      width: { ideal: 1280 },
      height: { ideal: 720 },
      frameRate: { ideal: 30 },
    },
    audio: { deviceId: micSelect.value ? { exact: micSelect.value } : undefined },
  };
  const opened = await navigator.mediaDevices.getUserMedia(constraints);
  const previous = stream;
  stream = opened;
  preview.srcObject = opened;
  if (pc) {
    // Live already: swap the tracks on the same connection, no renegotiation.
    for (const sender of pc.getSenders()) {
      const kind = sender.track ? sender.track.kind : null;
      const track = opened.getTracks().find((t) => t.kind === kind);
      if (track) await sender.replaceTrack(track);
    }
  }
  if (previous) previous.getTracks().forEach((t) => t.stop());
  await listDevices();
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [select, kind] of [
    [cameraSelect, "videoinput"],
    [micSelect, "audioinput"],
  ]) {
    const current = stream && stream.getTracks().find((t) => `${t.kind}input` === kind);
    const currentId = current ? current.getSettings().deviceId : select.value;
    select.replaceChildren(
      ...devices
        .filter((d) => d.kind === kind)
        .map((d, i) => {
          const option = new Option(d.label || `${kind} ${i + 1}`, d.deviceId);
          option.selected = d.deviceId === currentId;
          return option;
        }),
    );
  }
}

function preferH264(transceiver) {
  // H.264 first: the server then packages it for HLS without re-encoding it.
  if (!RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const codecs = RTCRtpSender.getCapabilities("video").codecs;
  const rank = (c) => (c.mimeType === "video/H264" ? 0 : c.mimeType === "video/VP8" ? 1 : 2);
  transceiver.setCodecPreferences([...codecs].sort((a, b) => rank(a) - rank(b)));
}

function gathered(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (connection.iceGatheringState === "complete") resolve();
    };
    connection.addEventListener("icegatheringstatechange", done);
    // Enough candidates are there after a moment even if gathering never says complete.
    setTimeout(resolve, GATHER_MS);
  });
}

async function publish() {
  const connection = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  for (const track of stream.getTracks()) {
    const transceiver = connection.addTransceiver(track, {
      direction: "sendonly",
      streams: [stream],
    });
    if (track.kind === "video") preferH264(transceiver);
  }
  await connection.setLocalDescription(await connection.createOffer());
  await gathered(connection);
  const answer = await fetch(whipUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/sdp", "X-CSRF-Token": csrfToken },
    body: connection.localDescription.sdp,
  });
  if (answer.status !== 201) {
    connection.close();
    throw new Error(await problemText(answer));
  }
  resource = new URL(answer.headers.get("Location"), whipUrl).href;
  await connection.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  connection.addEventListener("connectionstatechange", () => watch(connection));
  pc = connection;
}

function watch(connection) {
  if (connection !== pc || ending) return;
  const state = connection.connectionState;
  if (state === "connected") {
    retries = 0;
    say("live");
    clearFailure();
  } else if (state === "failed" || state === "disconnected") {
    say("reconnecting");
    reconnect();
  }
}

async function reconnect() {
  if (retries >= RETRIES) {
    fail("The connection to the server was lost and could not be restored. Check your network, then press Go live again: the room stays live for a short while.");
    goButton.disabled = false;
    say("disconnected");
    return;
  }
  retries += 1;
  const old = pc;
  pc = null;
  if (old) old.close();
  await forget();
  try {
    await publish();
  } catch (error) {
    setTimeout(reconnect, 1000 * retries);
  }
}

async function forget() {
  // End the old WHIP session if the server still has it; a lost one answers 404, which is fine.
  if (!resource) return;
  const gone = resource;
  resource = null;
  try {
    await fetch(gone, {
      method: "DELETE",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken },
    });
  } catch (_) {
    // the network is down: the server ends the session on its own
  }
}

async function sending() {
  // Resolution, frame rate and bitrate of the video as the browser sends it.
  if (!pc) return null;
  const report = await pc.getStats();
  for (const stat of report.values()) {
    if (stat.type !== "outbound-rtp" || stat.kind !== "video") continue;
    const now = stat.timestamp;
    const rate = lastSent ? ((stat.bytesSent - lastSent.bytes) * 8) / (now - lastSent.at) : null;
    lastSent = { bytes: stat.bytesSent, at: now };
    const size = stat.frameHeight ? `${stat.frameWidth}×${stat.frameHeight}` : "no video yet";
    const fps = stat.framesPerSecond ? ` · ${Math.round(stat.framesPerSecond)} fps` : "";
    const kbps = rate !== null ? ` · ${(rate / 1000).toFixed(1)} Mb/s` : "";
    return `sending ${size}${fps}${kbps}`;
  }
  return null;
}

function serving(health) {
  healthBox.dataset.publishing = String(health.publishing);
  healthBox.dataset.seats = String(health.seats);
  if (!health.publishing) return ["the server waits for your video"];
  const codec = health.video_codec === "H264" ? "H.264" : health.video_codec || "?";
  const how = health.transcoding ? "encoded again for HLS" : "copied to HLS";
  const parts = [`server receives ${codec} (${how})`];
  parts.push(`WebRTC viewers ${health.seats}/${health.max_seats}`);
  const age = health.hls_updated_s_ago;
  if (age === null || health.hls_segments === 0) parts.push("HLS starting");
  else if (age > 3 * health.hls_target_s) parts.push(`HLS stalled: last segment ${Math.round(age)} s ago`);
  else {
    const n = health.hls_segments;
    parts.push(`HLS on air (${n} segment${n === 1 ? "" : "s"} listed)`);
  }
  return parts;
}

async function showHealth() {
  if (!pc || ending) return;
  const parts = [];
  try {
    const sent = await sending();
    if (sent) parts.push(sent);
    const answer = await fetch(`/api/v1/rooms/${roomId}/health`, { credentials: "same-origin" });
    if (answer.ok) parts.push(...serving(await answer.json()));
  } catch (_) {
    // a missed look: the next one comes in a moment
  }
  healthBox.textContent = parts.join(" · ");
  healthBox.hidden = parts.length === 0;
}

function tick() {
  const seconds = Math.floor((Date.now() - startedAt) / 1000);
  const hh = Math.floor(seconds / 3600);
  const mm = String(Math.floor(seconds / 60) % 60).padStart(2, "0");
  const ss = String(seconds % 60).padStart(2, "0");
  timerBox.textContent = hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

goButton.addEventListener("click", async () => {
  clearFailure();
  goButton.disabled = true;
  say("connecting");
  try {
    if (!stream) await openDevices();
    await publish();
    startedAt = startedAt || Date.now();
    ticking = ticking || setInterval(tick, 1000);
    tick();
    looking = looking || setInterval(showHealth, HEALTH_MS);
    endButton.disabled = false;
  } catch (error) {
    goButton.disabled = false;
    say("offline");
    fail(`Could not go live: ${error.message}.`);
  }
});

endButton.addEventListener("click", async () => {
  ending = true;
  endButton.disabled = true;
  const connection = pc;
  pc = null;
  await forget();
  if (connection) connection.close();
  const ended = await fetch(`/api/v1/rooms/${roomId}/end`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrfToken },
  });
  clearInterval(ticking);
  clearInterval(looking);
  healthBox.hidden = true;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (ended.ok) {
    say("ended");
  } else {
    fail(`The video stopped, but ending the room failed: ${await problemText(ended)}`);
  }
});

for (const select of [cameraSelect, micSelect]) {
  select.addEventListener("change", () =>
    openDevices().catch((error) => fail(`Could not open that device: ${error.message}.`)),
  );
}

openDevices().then(
  () => say("ready"),
  (error) => fail(`The camera or microphone could not be opened (${error.message}). Allow them for this site, then reload.`),
);

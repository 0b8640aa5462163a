// The console's video upload: the file goes to /api/v1/uploads with tus-js-client (tus 1.0,
// 5 MB chunks), then becomes a video content whose transcode progress is polled until it is
// ready, and a button publishes it. Every call rides on the staff session cookie and sends the
// session's CSRF token, as the API asks of every unsafe call made with that cookie.
//
// Resuming: tus-js-client keeps each unfinished upload's URL in localStorage under the file's
// fingerprint (account, name, type, size, modification time); choosing the same file again,
// even after a reload, asks the server for the offset (HEAD) and sends only the rest.
const form = document.getElementById("upload");
const accountId = form.dataset.accountId;
const csrfToken = form.dataset.csrfToken;
const CHUNK_SIZE = 5 * 1024 * 1024;
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const fileInput = $("file");
const startButton = $("start");
const pauseButton = $("pause");
const errorBox = $("upload-error");

let upload = null; // the running tus upload
let uploaded = null; // {file, uploadId} once the bytes are all on the server
let contentId = null;

function megabytes(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

function setProgress(name, fraction) {
  const percent = Math.floor(fraction * 100);
  $(`${name}-progress`).value = percent;
  $(`${name}-percent`).textContent = `${percent}%`;
}

// The problem+json detail of a failed answer, or a plain description of the failure.
function problemDetail(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.detail) return body.detail;
  } catch (_) {
    // not JSON: fall through
  }
  return `the server answered ${status}`;
}

function explainUploadError(error) {
  const response = error.originalResponse;
  if (!response) {
    return "The connection to the server was lost. Check your network, then choose the same file and press Upload again: it carries on where it stopped.";
  }
  const status = response.getStatus();
  const detail = problemDetail(status, response.getBody());
  if (status === 401 || status === 403) {
    return `Upload refused: ${detail}. Log in again (in another tab), then choose the same file and press Upload: it carries on where it stopped.`;
  }
  if (status === 413) {
    return `The file is too large: ${detail}. Trim or compress the video and upload it again.`;
  }
  return `The upload failed: ${detail}. Press Upload to try again; it carries on where it stopped.`;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: {
      "X-CSRF-Token": csrfToken,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    const error = new Error(problemDetail(response.status, text));
    error.status = response.status;
    throw error;
  }
  return text ? JSON.parse(text) : null;
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  const title = $("title");
  if (file && !title.value) {
    title.value = file.name.replace(/\.[^.]*$/, "").slice(0, 60);
  }
});

pauseButton.addEventListener("click", () => {
  if (!upload) return;
  if (pauseButton.dataset.paused) {
    delete pauseButton.dataset.paused;
    pauseButton.textContent = "Pause";
    $("upload-status").textContent = "Uploading…";
    upload.start();
  } else {
    pauseButton.dataset.paused = "1";
    pauseButton.textContent = "Resume";
    $("upload-status").textContent = "Paused. Resume here, or later by choosing the same file.";
    upload.abort();
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  const file = fileInput.files[0];
  if (!file) {
    showError("Choose a video file first.");
    return;
  }
  if (!$("title").value.trim()) {
    showError("Give the video a title.");
    return;
  }
  $("steps").hidden = false;
  startButton.disabled = true;
  if (uploaded && uploaded.file === file) {
    // The bytes are already there (an earlier try failed at creating the content).
    await createContent(uploaded.uploadId);
    return;
  }
  if (!window.tus || !window.tus.isSupported) {
    showError(
      "The upload library did not load, or this browser cannot upload files. Reload the page; if it keeps happening, the server's operator needs to run scripts/run (it installs the page libraries).",
    );
    startButton.disabled = false;
    return;
  }
  await startUpload(file);
});

async function startUpload(file) {
  const status = $("upload-status");
  upload = new window.tus.Upload(file, {
    endpoint: "/api/v1/uploads",
    chunkSize: CHUNK_SIZE,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    headers: { "X-CSRF-Token": csrfToken },
    metadata: { account_id: accountId, filename: file.name, filetype: file.type },
    // The same file for another account is another upload.
    fingerprint: (f) =>
      Promise.resolve(
        ["lifeaccount", accountId, f.name, f.type, f.size, f.lastModified].join(":"),
      ),
    removeFingerprintOnSuccess: true,
    onProgress(sent, total) {
      setProgress("upload", total ? sent / total : 0);
      $("upload-bytes").textContent = `${megabytes(sent)} of ${megabytes(total)}`;
    },
    onError(error) {
      pauseButton.hidden = true;
      startButton.disabled = false;
      status.textContent = "Stopped.";
      showError(explainUploadError(error));
    },
    onSuccess() {
      pauseButton.hidden = true;
      setProgress("upload", 1);
      status.textContent = "Uploaded.";
      const uploadId = upload.url.replace(/\/+$/, "").split("/").pop();
      uploaded = { file, uploadId };
      createContent(uploadId);
    },
  });
  const previous = await upload.findPreviousUploads();
  if (previous.length) {
    upload.resumeFromPreviousUpload(previous[0]);
    status.textContent = "Resuming the earlier upload of this file…";
    form.dataset.resumed = "1";
  } else {
    status.textContent = "Uploading…";
  }
  pauseButton.hidden = false;
  upload.start();
}

async function createContent(uploadId) {
  const mediaStatus = $("media-status");
  try {
    const made = await api("POST", `/api/v1/accounts/${encodeURIComponent(accountId)}/contents`, {
      kind: "video",
      title: $("title").value.trim(),
      caption: $("caption").value.trim(),
      upload_id: uploadId,
    });
    contentId = made.id;
  } catch (error) {
    startButton.disabled = false;
    showError(
      `The video was uploaded but could not be saved: ${error.message}. Fix it and press Upload again; the file is not sent twice.`,
    );
    return;
  }
  form.dataset.contentId = contentId;
  mediaStatus.textContent = "Processing: making the streaming versions, the MP4 and the poster…";
  $("publish").disabled = false;
  poll();
}

async function poll() {
  const mediaStatus = $("media-status");
  let content;
  try {
    content = await api("GET", `/api/v1/contents/${encodeURIComponent(contentId)}`);
  } catch (error) {
    mediaStatus.textContent = `Could not check the processing (${error.message}); trying again…`;
    setTimeout(poll, POLL_MS * 3);
    return;
  }
  const media = content.media || { state: "processing", progress: 0 };
  setProgress("media", media.progress);
  if (media.state === "failed") {
    mediaStatus.textContent = "Processing failed.";
    $("publish").disabled = true;
    showError(`${media.error || "The video could not be processed."} Upload another file.`);
    startButton.disabled = false;
    uploaded = null;
    return;
  }
  if (media.state === "ready") {
    mediaStatus.textContent = `Ready: ${media.renditions.map((r) => `${r.height}p`).join(", ")}.`;
    showPublished(content.status);
    return;
  }
  setTimeout(poll, POLL_MS);
}

function showPublished(status) {
  const out = $("publish-status");
  if (status === "published") {
    $("publish").disabled = true;
    out.replaceChildren("Published: ");
    const link = document.createElement("a");
    link.id = "view-link";
    link.href = `/c/${encodeURIComponent(contentId)}`;
    link.textContent = "watch it on its page";
    out.append(link);
  } else if (status === "pending_media") {
    $("publish").disabled = true;
    out.textContent = "It goes out as soon as processing ends.";
  } else if (status === "in_review") {
    $("publish").disabled = true;
    out.textContent = "Some words need a moderator's approval before it goes out.";
  }
}

$("publish").addEventListener("click", async () => {
  clearError();
  try {
    const done = await api("POST", `/api/v1/contents/${encodeURIComponent(contentId)}/publish`, {});
    // While processing, the poll loop still runs and shows the outcome once it is ready.
    showPublished(done.status);
  } catch (error) {
    showError(`Could not publish: ${error.message}.`);
  }
});

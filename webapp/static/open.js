// Inside a mini-program's web-view the page navigates there itself; anywhere else the visitor
// copies the target. WeChat exposes `wx.miniProgram` once its JS-SDK is on the page, and marks
// its web-view in the user agent ("miniProgram"), so the SDK is fetched only there.
const target = JSON.parse(document.getElementById("open-target").textContent);
const status = document.getElementById("open-status");
const field = document.getElementById("open-path");
const SDK = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js";

function navigate() {
  window.wx.miniProgram.navigateTo({
    url: target.path,
    fail: () => { status.textContent = "Open the mini-program and paste this page."; },
  });
  status.textContent = "Opening the mini-program…";
}

if (window.wx && window.wx.miniProgram) {
  navigate();
} else if (/miniProgram/i.test(navigator.userAgent)) {
  const script = document.createElement("script");
  script.src = SDK;
  script.onload = () => { if (window.wx && window.wx.miniProgram) navigate(); };
  document.head.append(script);
}

document.getElementById("open-copy").addEventListener("click", async () => {
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = "Copied.";
  } catch {
    status.textContent = "Select the text above and copy it.";
  }
});

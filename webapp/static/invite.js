// The invitation token travels in the URL fragment, which browsers never send to a server.
const form = document.getElementById("accept");
const result = document.getElementById("result");
const token = new URLSearchParams(location.hash.slice(1)).get("token");
if (!token) {
  result.textContent = "This link has no invitation token; ask the account owner for a new link.";
  form.querySelector("button").disabled = true;
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = new FormData(form).get("password");
  const response = await fetch("/api/v1/invitations/accept", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, password }),
  });
  const body = await response.json();
  if (response.ok) {
    location.assign(`/console?account=${encodeURIComponent(body.account_id)}`);
  } else {
    result.textContent = body.detail || "The invitation could not be accepted.";
  }
});

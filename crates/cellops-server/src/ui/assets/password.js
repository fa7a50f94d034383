// Changes the password through the JSON API (allowed before the first change), then
// continues to the home page.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("password-form");
  const result = document.getElementById("password-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const current = document.getElementById("current_password").value;
    const next = document.getElementById("new_password").value;
    if (next !== document.getElementById("new_password2").value) {
      result.textContent = form.dataset.msgMismatch;
      return;
    }
    const response = await fetch("/api/auth/password", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ current_password: current, new_password: next }),
    });
    if (response.ok) {
      window.location.assign("/ui/home");
      return;
    }
    let message = "";
    try {
      message = (await response.json()).error.message;
    } catch (_) {
      message = String(response.status);
    }
    result.textContent = form.dataset.msgFailed + " " + message;
  });
});

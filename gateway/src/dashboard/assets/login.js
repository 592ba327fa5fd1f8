// The log-in page: API key → POST /api/session → the integrations page.
"use strict";
(() => {
  const form = document.getElementById("login-form");
  const input = document.getElementById("api-key");
  const error = document.getElementById("login-error");
  input.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter your API key.";
      input.focus();
      return;
    }
    try {
      await SB.api("POST", "/api/session", { api_key: key });
      location.assign("/dashboard/integrations");
    } catch (e) {
      error.textContent = e.status === 401
        ? "This API key is not valid. Check that you copied all of it (it starts with sbk_)."
        : "Could not log in: " + e.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
})();

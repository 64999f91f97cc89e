// authd console: progressive enhancement only; every page works without it.
// Served from the console's own origin (CSP: default-src 'self'; no inline script).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Confirm destructive forms (the server still requires a fresh TOTP code).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // The one-time API key: a copy button (the key stays in the page only).
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    });
  }
});

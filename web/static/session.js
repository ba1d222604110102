// Every state-changing request of a page carries the session's CSRF token
// (SPEC §11), which the server put in <meta name="csrf-token">.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function signOut() {
  const res = await fetch("/logout", {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
  });
  window.location.assign(res.url || "/login");
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("logout");
  if (button) button.addEventListener("click", signOut);
});

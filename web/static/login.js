// The sign-in page after a refusal that has an end (a locked name, too many
// attempts from this address, a database away): the server put the seconds
// of its Retry-After in data-retry-after. Count them down, and keep the form
// from being sent before then (it would only be refused again).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const clock = document.getElementById("retry-clock");
  const seconds = Number(clock && clock.dataset.retryAfter);
  if (!seconds || seconds <= 0) return;
  const button = document.querySelector('form button[type="submit"]');
  const until = Date.now() + seconds * 1000;
  const left = () => Math.max(0, Math.ceil((until - Date.now()) / 1000));
  const show = (s) => (s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`);

  button.disabled = true;
  clock.hidden = false;
  const tick = () => {
    const s = left();
    if (s > 0) {
      clock.textContent = `You can sign in again in ${show(s)}.`;
      return;
    }
    // Announced once, at the end, rather than every second.
    clock.setAttribute("role", "status");
    clock.textContent = "You can sign in again now.";
    button.disabled = false;
    clearInterval(timer);
  };
  const timer = setInterval(tick, 1000);
  tick();
});

// What every signed-in page shares: the session's CSRF token on each
// state-changing request (SPEC §11; the server put it in
// <meta name="csrf-token">), the JSON API, sign-out, number and date
// formatting, and small DOM helpers. Classic script (no modules, no
// framework): the page scripts after it use these globals.
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

// An answer of the API that is not a success, as the error body of SPEC §5.3
// ({"error": {"code", "message"}}) says.
class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || `the server answered ${status}`);
    this.status = status;
    this.code = code || "http_" + status;
    this.retryAfter = retryAfter;
  }
}

// fetch() for the JSON API: the CSRF token on anything but GET/HEAD, the JSON
// body parsed, errors thrown as ApiError. A session that ended sends the
// browser to the sign-in page.
async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: options.body, signal: options.signal });
  if (res.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, "unauthorized", "You are signed out.");
  }
  const type = res.headers.get("Content-Type") || "";
  const body = type.startsWith("application/json") ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const err = body && body.error ? body.error : {};
    throw new ApiError(res.status, err.code, err.message, Number(res.headers.get("Retry-After")) || 0);
  }
  return body;
}

// --- formatting --------------------------------------------------------------

const BYTE_UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB"];

function formatBytes(n) {
  if (n === null || n === undefined || !isFinite(n)) return "–";
  if (n < 1024) return `${n} ${n === 1 ? "byte" : "bytes"}`;
  let unit = 0;
  let value = n;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

function formatRate(bytesPerSecond) {
  return `${formatBytes(Math.round(bytesPerSecond || 0))}/s`;
}

function formatCount(n) {
  return Number(n || 0).toLocaleString("en");
}

// 75 -> "1 min 15 s"; 4000 -> "1 h 7 min".
function formatDuration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// An RFC 3339 time as local date and time, e.g. "2026-11-22 10:00".
function formatDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const pad = (v) => String(v).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function formatTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return iso || "–";
  return d.toLocaleTimeString("en-GB");
}

// --- DOM ----------------------------------------------------------------------

// el("td", {class: "num", "data-label": "Size"}, "12 KiB"): children are
// nodes or text (never parsed as HTML).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A button that copies `text`, saying so for a moment (and to screen readers).
function copyButton(text, what) {
  const button = el("button", { type: "button", class: "secondary small", "aria-label": `Copy ${what}` }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1500);
  });
  return button;
}

// Shows a <dialog> (modal, keyboard operable, Escape cancels) and resolves
// to true when its "confirm" button closed it.
function confirmWith(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

// A notice line (role=status) with a kind: "", "ok", "bad" or "warn".
function notify(node, text, kind = "") {
  node.textContent = text;
  node.className = "notice" + (kind ? " " + kind : "");
  node.hidden = !text;
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("logout");
  if (button) button.addEventListener("click", signOut);
  for (const link of document.querySelectorAll(".topbar nav a")) {
    if (link.getAttribute("href") === window.location.pathname) link.setAttribute("aria-current", "page");
  }
});

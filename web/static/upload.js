// The upload page (/): archives go to the server over tus (SPEC §5.2) with
// the official tus-js-client (tus.min.js, embedded by the build), so a lost
// connection or a reload costs no more than the bytes the server had not yet
// made durable.
//
// - Files with a name the server would refuse (SPEC §5.3), over the size
//   limit, over the quota left or empty are refused here, before a byte is
//   sent. The limit and the quota come from GET /api/v1/me.
// - Each file shows percent, bytes, rate and ETA, and can be paused, resumed
//   and cancelled. At most PARALLEL files upload at once; the rest wait.
// - tus-js-client keeps each unfinished upload's URL in localStorage under a
//   fingerprint of (user, name, size, mtime). After a reload the page lists
//   them; choosing the same file again continues from the server's offset.
// - The result is the upload object (sha256, entries, unpacked size), or the
//   server's refusal in plain words.
"use strict";

const TUS_ENDPOINT = "/api/v1/tus/";
const PARALLEL = 3;
// Retries after a network error or a 409/423/429/5xx, then the upload stops
// with a Resume button (and resumes by itself when the browser is back online).
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000];
// SPEC §5.3: a plain name of [A-Za-z0-9._-], at most 255, no leading dot,
// ending in .tar.gz, .tgz or .tar.zst.
const NAME_CHARS = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$/;
const NAME_SUFFIX = /\.(tar\.gz|tgz|tar\.zst)$/i;

let me = null; // GET /api/v1/me
const meLoaded = loadMe();
const transfers = [];

function $(id) {
  return document.getElementById(id);
}

function announce(text) {
  $("announce").textContent = text;
}

// --- the account: quota and limit ------------------------------------------------

async function loadMe() {
  try {
    me = await api("/api/v1/me");
  } catch (err) {
    $("quota-text").textContent = "Your storage could not be loaded: " + err.message;
    throw err;
  }
  showQuota();
  return me;
}

function showQuota() {
  const bar = $("quota-bar");
  $("limit-text").textContent = `Up to ${formatBytes(me.max_upload_bytes)} per file`;
  if (me.quota_bytes === null) {
    $("quota-text").textContent = `You store ${formatBytes(me.used_bytes)}; no quota applies.`;
    bar.hidden = true;
    return;
  }
  const left = Math.max(0, me.quota_bytes - me.used_bytes);
  $("quota-text").textContent =
    `${formatBytes(me.used_bytes)} of ${formatBytes(me.quota_bytes)} used · ${formatBytes(left)} left`;
  bar.hidden = false;
  bar.max = me.quota_bytes || 1;
  bar.value = Math.min(me.used_bytes, me.quota_bytes);
  bar.classList.toggle("full", me.used_bytes >= me.quota_bytes * 0.9);
}

// Bytes the quota still has room for, less what is on its way; null: no quota.
function quotaLeft(except) {
  if (me.quota_bytes === null) return null;
  let pending = 0;
  for (const t of transfers) if (t !== except && t.holdsQuota()) pending += t.file.size;
  return me.quota_bytes - me.used_bytes - pending;
}

// Why a file must not be sent, in plain words; null if it may.
function refusal(file, transfer) {
  if (!NAME_CHARS.test(file.name) || !NAME_SUFFIX.test(file.name))
    return "Not sent: the name must end in .tar.gz, .tgz or .tar.zst, use only letters, digits, " +
      "'.', '_' and '-', not start with a dot, and be at most 255 characters long.";
  if (file.size === 0) return "Not sent: the file is empty.";
  if (file.size > me.max_upload_bytes)
    return `Not sent: the file is ${formatBytes(file.size)}, over the limit of ${formatBytes(me.max_upload_bytes)} per file.`;
  const left = quotaLeft(transfer);
  if (left !== null && file.size > left)
    return `Not sent: the file is ${formatBytes(file.size)}, but your storage has only ${formatBytes(Math.max(0, left))} left.`;
  return null;
}

// --- the server's refusals in plain words (SPEC §5.3 codes) ------------------------

// `unsafe entry "NAME": WHY` (storage/archive_check.cpp) as a sentence.
function unsafeEntry(message) {
  const m = /^unsafe entry "((?:[^"\\]|\\.)*)": (.*)$/.exec(message || "");
  if (!m) return `The archive holds an unsafe entry: ${message}.`;
  const name = m[1];
  const why = m[2];
  const escapes = (path) => {
    let depth = 0;
    for (const part of path.split("/")) {
      if (part === "..") depth -= 1;
      else if (part && part !== ".") depth += 1;
      if (depth < 0) return true;
    }
    return false;
  };
  let sentence;
  if (why === "absolute path") sentence = `entry ${name} has an absolute path, so it would land outside the folder it is unpacked into`;
  else if (why === '".." path component')
    sentence = escapes(name) ? `entry ${name} escapes the archive` : `entry ${name} has a ".." in its path`;
  else if (/points outside the archive|has a ".." component/.test(why)) sentence = `entry ${name} links outside the archive`;
  else if (/^absolute (sym|hard)link target/.test(why)) sentence = `entry ${name} links to an absolute path`;
  else if (/^control character/.test(why)) sentence = `entry ${name} has a control character in its name`;
  else if (/device|FIFO|socket/.test(why)) sentence = `entry ${name} is a ${why}, which archives here may not contain`;
  else sentence = `entry ${name} is unsafe (${why})`;
  return `The archive was refused: ${sentence}.`;
}

function plainWords(status, code, message) {
  const limit = me ? formatBytes(me.max_upload_bytes) : "the limit";
  switch (code) {
    case "invalid_filename":
      return "The server refused the name: it must end in .tar.gz, .tgz or .tar.zst and use only letters, digits, '.', '_' and '-'.";
    case "payload_too_large":
      return `The file is over the server's limit of ${limit} per file.`;
    case "quota_exceeded":
      return "This upload would go over your storage quota. Delete older uploads to make room.";
    case "unsupported_media_type":
      return "The file's content does not match its name: a .tar.gz or .tgz must be gzip-compressed, a .tar.zst zstd-compressed.";
    case "invalid_archive":
      return `The archive is damaged or is not a tar archive (${message}).`;
    case "unsafe_entry":
      return unsafeEntry(message);
    case "archive_bomb":
      return `The archive unpacks to too much: ${message}.`;
    case "too_many_uploads":
      return "You have too many uploads running at once. Try this one again when others have finished.";
    case "insufficient_storage":
      return "The server is out of disk space. Try again later, or tell an administrator.";
    case "unavailable":
    case "storage_unavailable":
      return "The server is unavailable for a moment. Try again shortly.";
    case "request_timeout":
      return "The connection stalled for too long.";
    case "gone":
      return "The unfinished upload expired on the server. Start it again.";
    case "csrf_token_missing":
      return "Your session changed. Reload the page and try again.";
    case "unauthorized":
      return "You are signed out. Sign in again, then choose the file again to continue.";
    default:
      if (status === 404 || status === 405)
        return `The server does not take resumable uploads here (${status} from ${TUS_ENDPOINT}).`;
      return message ? `The server refused the upload (${status}): ${message}` : `The server refused the upload (${status}).`;
  }
}

// tus-js-client's error as {status, sentence}; status 0: no answer (network).
function explain(err) {
  const res = err && err.originalResponse;
  if (!res) return { status: 0, sentence: "The connection to the server was lost." };
  const status = res.getStatus();
  let code = null;
  let message = null;
  try {
    const body = JSON.parse(res.getBody() || "null");
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // not JSON: the status alone says it
  }
  return { status, sentence: plainWords(status, code, message) };
}

// --- one file --------------------------------------------------------------------

class Transfer {
  constructor(file) {
    this.file = file;
    this.state = "waiting";
    this.upload = null;
    this.samples = []; // [ms, bytes] of the last seconds, for the rate
    this.build();
  }

  holdsQuota() {
    return ["waiting", "uploading", "paused", "retrying", "offline"].includes(this.state);
  }

  build() {
    const f = this.file;
    this.stateNode = el("span", { class: "item-state" });
    this.bar = el("progress", { max: 100, value: 0, "aria-label": `Upload of ${f.name}` });
    this.stats = el("div", { class: "item-stats", "aria-hidden": "true" });
    this.message = el("p", { class: "item-message" });
    this.result = el("div", { class: "item-result" });
    this.pauseButton = el("button", { type: "button", class: "secondary small", onclick: () => this.togglePause() }, "Pause");
    this.cancelButton = el("button", { type: "button", class: "secondary small", onclick: () => this.cancel() }, "Cancel");
    this.node = el(
      "li",
      { class: "card item" },
      el("div", { class: "item-head" },
        el("span", { class: "item-name" }, f.name),
        el("span", { class: "muted" }, formatBytes(f.size)),
        this.stateNode),
      this.bar,
      this.stats,
      this.message,
      this.result,
      el("div", { class: "item-actions" }, this.pauseButton, this.cancelButton),
    );
  }

  setState(state, label) {
    this.state = state;
    this.node.dataset.state = state;
    this.stateNode.textContent = label;
    const active = ["uploading", "retrying", "paused", "offline", "waiting"].includes(state);
    this.pauseButton.hidden = !["uploading", "retrying", "paused", "offline"].includes(state);
    this.pauseButton.textContent = state === "paused" || state === "offline" ? "Resume" : "Pause";
    this.cancelButton.textContent = active ? "Cancel" : "Dismiss";
    this.bar.classList.toggle("ok", state === "done");
    this.bar.classList.toggle("bad", state === "failed" || state === "refused");
    this.bar.hidden = state === "refused";
    this.stats.hidden = state === "refused";
  }

  refuse(sentence) {
    this.setState("refused", "Not sent");
    this.message.textContent = sentence;
    this.message.className = "item-message error";
    announce(`${this.file.name}: ${sentence}`);
  }

  async start() {
    this.setState("uploading", "Starting");
    this.message.textContent = "";
    this.samples = [];
    const options = {
      endpoint: TUS_ENDPOINT,
      metadata: { filename: this.file.name },
      headers: { "X-CSRF-Token": csrfToken() },
      retryDelays: RETRY_DELAYS,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      fingerprint: (file) => Promise.resolve(fingerprint(file)),
      onShouldRetry: (err) => {
        const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
        const retry = status === 0 || status === 409 || status === 423 || status === 429 || status >= 500;
        if (retry && navigator.onLine !== false) this.setState("retrying", "Reconnecting");
        return retry && navigator.onLine !== false;
      },
      onProgress: (sent, total) => this.progress(sent, total),
      onSuccess: () => this.succeeded(),
      onError: (err) => this.failed(err),
    };
    this.upload = new tus.Upload(this.file, options);
    const previous = await this.upload.findPreviousUploads().catch(() => []);
    if (previous.length) {
      this.upload.resumeFromPreviousUpload(previous[0]);
      this.message.textContent = "Continuing the unfinished upload of this file.";
      forgetListed(fingerprint(this.file));
    }
    this.upload.start();
  }

  progress(sent, total) {
    // All sent: the server checks the archive's end before it answers.
    const label = sent === total ? "Checking the archive" : "Uploading";
    if (this.state !== "uploading" || this.stateNode.textContent !== label) this.setState("uploading", label);
    const now = performance.now();
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    const rate = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
    const percent = total ? Math.floor((sent * 100) / total) : 0;
    this.bar.value = percent;
    this.bar.setAttribute("aria-valuetext", `${percent} percent`);
    const eta = rate > 0 ? formatDuration((total - sent) / rate) + " left" : "";
    this.stats.textContent = [
      `${percent} %`,
      `${formatBytes(sent)} of ${formatBytes(total)}`,
      rate > 0 ? formatRate(rate) : null,
      eta || null,
    ].filter(Boolean).join(" · ");
  }

  async succeeded() {
    this.setState("done", "Checking");
    this.message.textContent = "";
    this.bar.value = 100;
    this.stats.textContent = `100 % · ${formatBytes(this.file.size)}`;
    const id = decodeURIComponent(this.upload.url.split("/").pop());
    try {
      const obj = await api(`/api/v1/uploads/${encodeURIComponent(id)}`);
      this.setState("done", "Uploaded");
      this.showResult(obj);
      announce(`${this.file.name} uploaded.`);
    } catch (err) {
      this.setState("done", "Uploaded");
      this.message.textContent = `Uploaded, but its details could not be loaded: ${err.message}`;
    }
    refreshQuota();
    pump();
  }

  showResult(obj) {
    const content = `/api/v1/uploads/${encodeURIComponent(obj.id)}/content`;
    this.result.replaceChildren(
      el("dl", { class: "facts" },
        el("dt", {}, "SHA-256"),
        el("dd", { class: "hash" }, el("code", { class: "sha256" }, obj.sha256), copyButton(obj.sha256, "SHA-256")),
        el("dt", {}, "Entries"),
        el("dd", { class: "entry-count" }, formatCount(obj.entries)),
        el("dt", {}, "Unpacked size"),
        el("dd", { class: "uncompressed" }, formatBytes(obj.uncompressed_size)),
        el("dt", {}, "Stored"),
        el("dd", {}, el("a", { href: content, download: obj.filename }, "Download"), " · ", el("a", { href: "/uploads" }, "My uploads"))),
    );
  }

  failed(err) {
    const { status, sentence } = explain(err);
    if (status === 0 && navigator.onLine === false) {
      this.setState("offline", "Offline");
      this.message.textContent = "The browser is offline. The upload continues when the connection is back.";
      return pump();
    }
    if (status === 0) {
      this.setState("offline", "Stopped");
      this.message.textContent = `${sentence} Press Resume to continue where it stopped.`;
      return pump();
    }
    this.setState("failed", "Refused");
    this.stats.textContent = "";
    this.message.textContent = sentence;
    this.message.className = "item-message error";
    announce(`${this.file.name}: ${sentence}`);
    this.forgetStoredUrl();
    refreshQuota();
    pump();
  }

  // A refused upload is gone on the server (SPEC §5.2): its stored URL
  // would only answer 404 after the next reload.
  async forgetStoredUrl() {
    const storage = tus.defaultOptions.urlStorage;
    if (!this.upload || !this.upload.url || !storage.findUploadsByFingerprint) return;
    const stored = await storage.findUploadsByFingerprint(fingerprint(this.file)).catch(() => []);
    for (const entry of stored)
      if (entry.uploadUrl === this.upload.url) await storage.removeUpload(entry.urlStorageKey).catch(() => {});
  }

  async togglePause() {
    if (this.state === "paused" || this.state === "offline") {
      this.setState("uploading", "Resuming");
      this.samples = [];
      this.message.textContent = "";
      this.upload.start();
      return;
    }
    await this.upload.abort(false);
    this.setState("paused", "Paused");
    pump();
  }

  async cancel() {
    const running = this.upload && ["uploading", "retrying", "paused", "offline"].includes(this.state);
    const index = transfers.indexOf(this);
    if (index >= 0) transfers.splice(index, 1);
    this.node.remove();
    // A cancelled upload is removed on the server too (tus termination).
    if (running) await this.upload.abort(true).catch(() => {});
    pump();
  }
}

function fingerprint(file) {
  return ["upload-portal", me.username, file.name, file.size, file.lastModified].join(":");
}

// Starts waiting files while fewer than PARALLEL upload.
function pump() {
  const running = transfers.filter((t) => t.state === "uploading" || t.state === "retrying").length;
  let free = PARALLEL - running;
  for (const t of transfers) {
    if (free <= 0) break;
    if (t.state === "waiting") {
      t.start();
      free -= 1;
    }
  }
}

async function addFiles(files) {
  try {
    await meLoaded;
  } catch {
    // Without the limit and quota no file can be checked: none is sent.
    announce("Your account could not be loaded; reload the page to upload.");
    return;
  }
  for (const file of files) {
    const t = new Transfer(file);
    $("queue").prepend(t.node);
    const why = refusal(file, t);
    if (why) {
      t.refuse(why);
      continue;
    }
    transfers.push(t);
    t.setState("waiting", "Waiting");
  }
  pump();
}

async function refreshQuota() {
  try {
    me = await api("/api/v1/me");
    showQuota();
  } catch {
    // the next upload tries again
  }
}

// --- unfinished uploads from an earlier visit ----------------------------------------

async function listUnfinished() {
  const storage = tus.defaultOptions.urlStorage;
  if (!storage || !storage.findAllUploads) return;
  const prefix = `tus::upload-portal:${me.username}:`;
  const all = (await storage.findAllUploads()).filter((u) => u.urlStorageKey.startsWith(prefix));
  for (const entry of all) {
    const head = await fetch(entry.uploadUrl, {
      method: "HEAD",
      headers: { "Tus-Resumable": "1.0.0" },
      credentials: "same-origin",
    }).catch(() => null);
    if (head && (head.status === 404 || head.status === 410 || head.status === 403)) {
      await storage.removeUpload(entry.urlStorageKey);
      continue;
    }
    const offset = head && head.ok ? Number(head.headers.get("Upload-Offset")) : null;
    showUnfinished(entry, offset);
  }
}

function showUnfinished(entry, offset) {
  const name = (entry.metadata && entry.metadata.filename) || "an archive";
  const key = entry.urlStorageKey;
  const sent = offset === null ? "" : `${formatBytes(offset)} of ${formatBytes(entry.size)} sent · `;
  const forget = el("button", { type: "button", class: "secondary small", "aria-label": `Forget ${name}` }, "Forget");
  const item = el("li", { class: "item", "data-key": key },
    el("div", { class: "item-head" }, el("span", { class: "item-name" }, name),
      el("span", { class: "muted" }, `${sent}started ${formatDate(entry.creationTime)}`), forget));
  forget.addEventListener("click", async () => {
    // tus termination: the server drops the partial file.
    await fetch(entry.uploadUrl, {
      method: "DELETE",
      headers: { "Tus-Resumable": "1.0.0", "X-CSRF-Token": csrfToken() },
      credentials: "same-origin",
    }).catch(() => null);
    await tus.defaultOptions.urlStorage.removeUpload(key);
    item.remove();
    $("unfinished").hidden = !$("unfinished-list").children.length;
  });
  $("unfinished-list").append(item);
  $("unfinished").hidden = false;
}

// A file chosen again continues its upload: it leaves the list.
function forgetListed(fp) {
  for (const item of [...$("unfinished-list").children])
    if (item.dataset.key.startsWith(`tus::${fp}::`)) item.remove();
  $("unfinished").hidden = !$("unfinished-list").children.length;
}

// --- picking and dropping ------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const input = $("files");
  const zone = $("dropzone");
  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  // The whole page takes drops (a file dropped beside the zone must not make
  // the browser navigate away to it); the zone shows where.
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  window.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) zone.classList.remove("over");
  });
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles([...e.dataTransfer.files]);
  });
  // Back online: what stopped for the network goes on.
  window.addEventListener("online", () => {
    for (const t of transfers) if (t.state === "offline") t.togglePause();
  });
  meLoaded.then(listUnfinished).catch(() => {});
});

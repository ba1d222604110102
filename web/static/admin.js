// The admin dashboard (/admin, SPEC §7): polls the admin JSON endpoints and
// redraws.
//   every second   GET /admin/actors (supervision tree, live uploads) and
//                  GET /admin/metrics (the two counters the charts need:
//                  portal_upload_bytes_total, portal_uploads_total{result})
//   every 5 s      GET /admin/audit?limit=25
//   every 30 s     GET /admin/users, GET /admin/tokens
// The charts start when the page opens: throughput is the difference of the
// byte counter between polls, uploads per minute that of the uploads counter.
// A hidden tab does not poll.
"use strict";

const POLL_MS = 1000;
// A poll that gets no answer in this time is given up (the next one retries),
// so one hung request cannot freeze the dashboard.
const POLL_TIMEOUT_MS = 8000;
const AUDIT_EVERY = 5;
const ACCOUNTS_EVERY = 30;
const THROUGHPUT_WINDOW_MS = 2 * 60 * 1000;
const MINUTES_SHOWN = 15;
const PER_UPLOAD_KINDS = new Set(["upload_session", "archive_validator"]);

let tick = 0;
let previous = null; // {t, bytes, ok, bad}: the counters at the last poll
const throughput = []; // [ms, bytes per second]
const perMinute = new Map(); // minute number -> {ok, bad}
let watch = null; // a killed actor whose restart we wait for
let polling = false;

function $(id) {
  return document.getElementById(id);
}

// --- metrics -----------------------------------------------------------------------

// The value of one sample of the Prometheus text format, e.g.
// sample(text, 'portal_uploads_total{result="completed"}').
function sample(text, series) {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return 0;
}

function recordCounters(text) {
  const now = Date.now();
  const bytes = sample(text, "portal_upload_bytes_total");
  const ok = sample(text, 'portal_uploads_total{result="completed"}');
  const bad = ["rejected", "failed", "aborted"].reduce((n, r) => n + sample(text, `portal_uploads_total{result="${r}"}`), 0);
  if (previous && now > previous.t) {
    throughput.push([now, Math.max(0, ((bytes - previous.bytes) * 1000) / (now - previous.t))]);
    while (throughput.length && now - throughput[0][0] > THROUGHPUT_WINDOW_MS) throughput.shift();
    const minute = Math.floor(now / 60000);
    const bucket = perMinute.get(minute) || { ok: 0, bad: 0 };
    bucket.ok += Math.max(0, ok - previous.ok);
    bucket.bad += Math.max(0, bad - previous.bad);
    perMinute.set(minute, bucket);
  }
  previous = { t: now, bytes, ok, bad };
}

function drawCharts() {
  const now = Date.now();
  const latest = throughput.length ? throughput[throughput.length - 1][1] : 0;
  $("throughput-now").textContent = formatRate(latest);
  // Axis labels without "/s" (the caption says it); at least 1 KiB/s tall.
  drawLineChart($("throughput-chart"), throughput, { windowMs: THROUGHPUT_WINDOW_MS, format: formatBytes, floor: 1024, now });
  const current = Math.floor(now / 60000);
  const bars = [];
  for (let m = current - MINUTES_SHOWN + 1; m <= current; m++) {
    const b = perMinute.get(m) || { ok: 0, bad: 0 };
    const d = new Date(m * 60000);
    const label = (current - m) % 5 === 0 ? `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}` : "";
    bars.push({ label, ok: b.ok, bad: b.bad });
  }
  for (const m of perMinute.keys()) if (m <= current - MINUTES_SHOWN) perMinute.delete(m);
  const now1 = perMinute.get(current) || { ok: 0, bad: 0 };
  $("upm-now").textContent = `${now1.ok} completed, ${now1.bad} unsuccessful, this minute`;
  drawBarChart($("upm-chart"), bars);
}

// --- the supervision tree ------------------------------------------------------------

// Rows in tree order: each actor under its supervisor, drawn with branch
// glyphs; per-upload actors (never restarted) after the tree, each under its
// upload session.
function treeRows(actors) {
  const byName = new Map(actors.map((a) => [a.name, a]));
  const children = new Map();
  const roots = [];
  const uploads = [];
  for (const a of actors) {
    if (a.supervisor && byName.has(a.supervisor)) {
      if (!children.has(a.supervisor)) children.set(a.supervisor, []);
      children.get(a.supervisor).push(a);
    } else if (PER_UPLOAD_KINDS.has(a.kind)) {
      uploads.push(a);
    } else {
      roots.push(a);
    }
  }
  for (const list of children.values()) list.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  const out = [];
  const walk = (actor, prefix, last, depth) => {
    const branch = depth === 0 ? "" : prefix + (last ? "└─ " : "├─ ");
    out.push({ actor, branch, depth });
    const kids = children.get(actor.name) || [];
    kids.forEach((kid, i) => walk(kid, depth === 0 ? "" : prefix + (last ? "   " : "│  "), i === kids.length - 1, depth + 1));
  };
  roots.forEach((r) => walk(r, "", true, 0));
  if (uploads.length) {
    out.push({ group: `Upload actors (${uploads.length}): not restarted, an upload's crash fails that upload` });
    uploads.forEach((u) => walk(u, "", true, 0));
  }
  return out;
}

function actorRow({ actor, branch, depth }) {
  const a = actor;
  const restartable = depth > 0 && !PER_UPLOAD_KINDS.has(a.kind);
  const kill = depth > 0 || PER_UPLOAD_KINDS.has(a.kind)
    ? el("button", {
        type: "button",
        class: "secondary small",
        "data-key": `kill:${a.name}`,
        "aria-label": `Kill ${a.name}`,
        onclick: () => killActor(a, restartable),
      }, "Kill")
    : null;
  const row = el("tr", { "data-name": a.name, "data-id": a.id },
    el("td", { class: "actor" },
      el("span", { class: "branch", "aria-hidden": "true" }, branch),
      el("span", { class: "actor-name" }, a.name),
      el("span", { class: "kind" }, a.kind),
      a.supervisor ? el("span", { class: "visually-hidden" }, `, supervised by ${a.supervisor}`) : null),
    el("td", {}, el("span", { class: "state", "data-state": a.state }, a.state)),
    el("td", { class: "num" }, formatCount(a.mailbox)),
    el("td", { class: "num" }, formatCount(a.messages)),
    el("td", { class: "num restarts" }, formatCount(a.restarts)),
    el("td", {}, kill),
  );
  if (watch && watch.done && watch.name === a.name && Date.now() - watch.done < 4000) row.classList.add("flash");
  return row;
}

// Redraws a table body, keeping the keyboard focus on the control it was on.
function redraw(tbody, rows) {
  const focused = document.activeElement && tbody.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  tbody.replaceChildren(...rows);
  if (focused) {
    const again = tbody.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

function drawActors(actors) {
  const rows = treeRows(actors).map((r) =>
    r.group ? el("tr", { class: "group" }, el("td", { colspan: 6 }, r.group)) : actorRow(r));
  redraw(document.querySelector("#actors tbody"), rows);
}

function drawUploads(uploads) {
  $("no-uploads").hidden = uploads.length > 0;
  const rows = uploads.map((u) => {
    const expected = u.bytes_expected;
    const percent = expected ? Math.min(100, Math.floor((u.bytes_received * 100) / expected)) : null;
    return el("tr", { "data-upload": u.id },
      el("td", {}, u.filename),
      el("td", {}, u.owner),
      el("td", {}, expected
        ? el("span", { class: "progress-cell" }, el("progress", { max: 100, value: percent, "aria-label": `${u.filename}: ${percent} percent` }), `${percent} %`)
        : el("span", { class: "muted" }, "size not declared")),
      el("td", { class: "num received" }, expected ? `${formatBytes(u.bytes_received)} of ${formatBytes(expected)}` : formatBytes(u.bytes_received)),
      el("td", { class: "num" }, formatRate(u.bytes_per_second)),
      el("td", { class: "num" }, formatDuration(u.seconds)));
  });
  redraw(document.querySelector("#live-uploads tbody"), rows);
}

// --- killing an actor -------------------------------------------------------------------

async function killActor(actor, restartable) {
  $("confirm-kill-name").textContent = actor.name;
  $("confirm-kill-text").textContent = restartable
    ? `It stops abnormally, as Erlang's observer kills a process, and its supervisor ${actor.supervisor} restarts it under the same name. Work it was doing fails.`
    : "Its upload fails: actors of an upload are not restarted.";
  if (!(await confirmWith($("confirm-kill")))) return;
  try {
    await api(`/admin/actors/${encodeURIComponent(actor.id)}/kill`, { method: "POST" });
  } catch (err) {
    notify($("notice"), `${actor.name} could not be killed: ${err.message}`, "bad");
    return;
  }
  if (!restartable) {
    notify($("notice"), `Killed ${actor.name}.`, "ok");
    return;
  }
  watch = { name: actor.name, id: actor.id, restarts: actor.restarts, since: Date.now(), done: 0 };
  notify($("notice"), `Killed ${actor.name} (id ${actor.id}). Waiting for ${actor.supervisor} to restart it…`, "warn");
  poll();
}

function checkRestart(actors) {
  if (!watch || watch.done) return;
  const now = actors.find((a) => a.name === watch.name);
  if (now && (now.restarts > watch.restarts || String(now.id) !== String(watch.id))) {
    watch.done = Date.now();
    notify($("notice"),
      `${watch.name} was restarted by its supervisor: restarts ${watch.restarts} → ${now.restarts}, new id ${now.id}.`, "ok");
  } else if (Date.now() - watch.since > 10000) {
    notify($("notice"), `${watch.name} has not come back after 10 s.`, "bad");
    watch = null;
  }
}

// --- audit, users, tokens ------------------------------------------------------------------

function detailText(detail) {
  return Object.entries(detail || {})
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" ");
}

function eventKind(event) {
  if (/failed|locked|rejected|kill|revoke|disable|expired/.test(event)) return "bad";
  if (/delete/.test(event)) return "warn";
  return "ok";
}

async function loadAudit() {
  const { events } = await api("/admin/audit?limit=25", { signal: AbortSignal.timeout(POLL_TIMEOUT_MS) });
  redraw(document.querySelector("#audit tbody"), events.map((e) =>
    el("tr", {},
      el("td", {}, el("time", { datetime: e.time, title: e.time }, formatTime(e.time))),
      el("td", {}, el("span", { class: `pill ${eventKind(e.event)}` }, e.event)),
      el("td", {}, e.user || "–"),
      el("td", {}, e.ip || "–"),
      el("td", { class: "detail" }, detailText(e.detail)))));
}

async function loadAccounts() {
  const signal = AbortSignal.timeout(POLL_TIMEOUT_MS);
  const [{ users }, { tokens }] = await Promise.all([api("/admin/users", { signal }), api("/admin/tokens", { signal })]);
  redraw(document.querySelector("#users tbody"), users.map((u) =>
    el("tr", {},
      el("td", {}, u.username, u.disabled ? el("span", { class: "pill bad" }, " disabled") : null),
      el("td", {}, u.role),
      el("td", { class: "num" }, formatCount(u.uploads)),
      el("td", { class: "num" }, formatBytes(u.stored_bytes) + (u.quota_bytes ? ` of ${formatBytes(u.quota_bytes)}` : "")),
      el("td", { class: "num" }, formatCount(u.active_tokens)),
      el("td", {}, u.last_login ? formatDate(u.last_login) : "never"))));
  redraw(document.querySelector("#tokens tbody"), tokens.map((t) =>
    el("tr", {},
      el("td", {}, el("code", {}, t.id)),
      el("td", {}, t.user),
      el("td", {}, t.name || "–"),
      el("td", {}, el("span", { class: `pill ${t.state === "active" ? "ok" : "bad"}` }, t.state)),
      el("td", {}, t.last_used_at ? formatDate(t.last_used_at) : "never"))));
}

// --- the loop -----------------------------------------------------------------------------------

async function poll() {
  if (polling) return;
  polling = true;
  const live = $("live");
  try {
    const signal = AbortSignal.timeout(POLL_TIMEOUT_MS);
    const [state, metrics] = await Promise.all([
      api("/admin/actors", { signal }),
      fetch("/admin/metrics", { credentials: "same-origin", signal })
        .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`metrics: ${r.status}`)))),
    ]);
    recordCounters(metrics);
    checkRestart(state.actors);
    drawActors(state.actors);
    drawUploads(state.uploads);
    drawCharts();
    if (tick % AUDIT_EVERY === 0) await loadAudit();
    if (tick % ACCOUNTS_EVERY === 0) await loadAccounts();
    tick += 1;
    live.textContent = `Live · updated ${new Date().toLocaleTimeString("en-GB")}`;
    live.classList.remove("stale");
  } catch (err) {
    live.textContent = `Connection lost (${err.message}); retrying`;
    live.classList.add("stale");
  } finally {
    polling = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  window.addEventListener("resize", drawCharts);
  poll();
  setInterval(() => {
    if (!document.hidden) poll();
  }, POLL_MS);
});

#!/usr/bin/env node
// Drives Debian's Chromium (never a downloaded browser) through upload-portal's
// pages: sign-in refusals, the upload page's checks before sending, My
// uploads (pages, contents, download, delete), the 403 and redirects of
// /admin, the admin dashboard while an upload runs (kill and restart), then
// uploads over tus from the upload page (32 MiB, a hostile archive, two at
// once, a reload mid-upload under Chromium's upload throttle).
// Takes a screenshot of every page (desktop light and dark, 360 px) and
// measures horizontal overflow at 360 px. Prints what it saw as one JSON
// object on stdout; it asserts nothing itself: tests/e2e/test_browser_pages.py
// does.
//
//   node pages_flow.js CONFIG_JSON
//
// CONFIG_JSON: {base, screenshots (a folder), max_upload_bytes,
//   uploader: {username, password}, admin: {username, password, token},
//   locked: {username, password}, per_page, delete_filename, entries_filename,
//   download_filename, files: {wrong_name, oversize, empty, control, quick,
//   big, hostile, two_a, two_b, resume} (paths), live_upload_filename,
//   kill_actor, throttle_bytes_per_second, upload_timeout_ms}
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const CHROMIUM = process.env.PORTAL_CHROMIUM || "/usr/bin/chromium";
const TIMEOUT_MS = 15000;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 360, height: 780 };

const config = JSON.parse(process.argv[2] || "{}");
const base = config.base;
const result = { steps: [], console_errors: [], page_errors: [], csp_violations: [], pages: {} };
let currentStep = "start";

function step(name) {
  currentStep = name;
  result.steps.push(name);
  process.stderr.write(`pages_flow: ${name}\n`);
}

function pathOf(u) {
  try {
    const parsed = new URL(u);
    return parsed.origin === base ? parsed.pathname + parsed.search : u;
  } catch {
    return u;
  }
}

function chain(response) {
  const reqs = [];
  let req = response ? response.request() : null;
  while (req) {
    reqs.unshift(req);
    req = req.redirectedFrom();
  }
  return reqs.map((r) => pathOf(r.url()));
}

// Every page of every context reports its console errors, uncaught errors
// and CSP violations here, tagged with the step it happened in.
async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true, ...options });
  context.setDefaultTimeout(TIMEOUT_MS);
  await context.exposeBinding("__portalCspViolation", (source, v) => {
    result.csp_violations.push({ step: currentStep, page: pathOf(v.document), ...v });
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__portalCspViolation({ document: e.documentURI, directive: e.violatedDirective, blocked: e.blockedURI });
    });
  });
  context.on("page", (page) => watch(page));
  return context;
}

function watch(page) {
  page.on("console", (msg) => {
    if (msg.type() === "error") result.console_errors.push({ step: currentStep, page: pathOf(page.url()), text: msg.text() });
  });
  page.on("pageerror", (err) => result.page_errors.push({ step: currentStep, page: pathOf(page.url()), text: String(err) }));
}

// Controls without an accessible name (a label, aria-label(ledby) or text).
function unlabeled(page) {
  return page.evaluate(() => {
    const out = [];
    for (const c of document.querySelectorAll("button, input, select, textarea, a[href]")) {
      const name =
        c.getAttribute("aria-label") ||
        (c.getAttribute("aria-labelledby") || "").split(/\s+/).map((id) => document.getElementById(id)?.textContent || "").join("") ||
        (c.labels && [...c.labels].map((l) => l.textContent).join("")) ||
        c.textContent;
      if (!name || !name.trim()) out.push(c.outerHTML.slice(0, 120));
    }
    return out;
  });
}

// Screenshots of the page as it is (desktop, light and dark, then 360 px
// wide, where the document must not be wider than the screen). Transitions
// are finished first (a progress bar mid-way to 100 % would misrepresent it).
async function shoot(page, name) {
  const dir = config.screenshots;
  const record = { path: pathOf(page.url()) };
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: path.join(dir, `${name}-desktop.png`), fullPage: true, animations: "disabled" });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.screenshot({ path: path.join(dir, `${name}-desktop-dark.png`), fullPage: true, animations: "disabled" });
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize(PHONE);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  record.phone_scroll_width = await page.evaluate(() => document.documentElement.scrollWidth);
  record.phone_wide_elements = await page.evaluate(() =>
    [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !e.closest(".table-wrap, .skip"))
      .slice(0, 5)
      .map((e) => e.tagName + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className : "")));
  await page.screenshot({ path: path.join(dir, `${name}-phone.png`), fullPage: true, animations: "disabled" });
  await page.setViewportSize(DESKTOP);
  record.unlabeled = await unlabeled(page);
  result.pages[name] = record;
}

async function signIn(context, who) {
  const page = await context.newPage();
  await page.goto(base + "/login");
  await page.fill('input[name="username"]', who.username);
  await page.fill('input[name="password"]', who.password);
  await Promise.all([page.waitForURL(base + "/"), page.click('button[type="submit"]')]);
  await page.waitForLoadState("load");
  return page;
}

function sha256File(file) {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

// --- the parts ----------------------------------------------------------------

async function anonymous(browser) {
  step("anonymous");
  const context = await newContext(browser);
  const page = await context.newPage();
  result.anonymous = {};
  for (const p of ["/", "/uploads", "/admin"]) {
    const response = await page.goto(base + p);
    result.anonymous[p] = { chain: chain(response), final_status: response.status() };
  }
  await shoot(page, "login");
  await context.close();
}

async function lockout(browser) {
  step("lockout");
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto(base + "/login");
  const statuses = [];
  let response;
  for (let i = 0; i < 6; i++) {
    await page.fill('input[name="username"]', config.locked.username);
    await page.fill('input[name="password"]', config.locked.password + "-wrong");
    [response] = await Promise.all([
      page.waitForResponse((r) => pathOf(r.url()) === "/login" && r.request().method() === "POST"),
      page.click('button[type="submit"]'),
    ]);
    statuses.push(response.status());
    await page.waitForLoadState("load");
    if (response.status() === 429) break;
  }
  result.lockout = {
    statuses,
    retry_after: await response.headerValue("retry-after"),
    error_text: (await page.locator("#login-error").textContent()).trim(),
    clock_text: (await page.locator("#retry-clock").textContent()).trim(),
    clock_visible: await page.locator("#retry-clock").isVisible(),
    submit_disabled: await page.locator('button[type="submit"]').isDisabled(),
  };
  await shoot(page, "login-locked");
  await context.close();
}

async function uploadPage(context) {
  step("upload page");
  const page = await signIn(context, config.uploader);
  const sent = [];
  page.on("request", (r) => {
    const p = pathOf(r.url());
    if (p.startsWith("/api/v1/tus") || (r.method() === "PUT" && p.startsWith("/api/v1/uploads")))
      sent.push({ method: r.method(), path: p, at: Date.now() });
  });
  await page.waitForFunction(() => !document.getElementById("quota-text").textContent.startsWith("Loading"));
  result.upload_page = {
    shown_username: (await page.locator("#username").textContent()).trim(),
    quota_text: (await page.locator("#quota-text").textContent()).trim(),
    limit_text: (await page.locator("#limit-text").textContent()).trim(),
    admin_link_visible: await page.locator('nav a[href="/admin"]').isVisible(),
    current_nav: await page.locator('nav a[aria-current="page"]').textContent(),
    text: await page.evaluate(() => document.body.innerText),
  };
  await shoot(page, "upload");

  step("refused before sending");
  const f = config.files;
  await page.setInputFiles("#files", [f.wrong_name, f.oversize, f.empty]);
  await page.waitForFunction(() => document.querySelectorAll('#queue .item[data-state="refused"]').length === 3);
  result.refused = await page.$$eval("#queue .item", (items) =>
    items.map((i) => ({
      name: i.querySelector(".item-name").textContent,
      state: i.dataset.state,
      message: i.querySelector(".item-message").textContent,
    })));
  result.refused_requests = sent.slice();

  // Control: an acceptable file is sent at once, so the silence above is the
  // page's doing, not an idle page.
  step("control");
  result.control_started_ms = Date.now();
  const posted = page.waitForRequest((r) => pathOf(r.url()).startsWith("/api/v1/tus"));
  await page.setInputFiles("#files", [f.control]);
  await posted;
  await page.waitForFunction(
    () => ["done", "failed", "offline"].includes(document.querySelector("#queue .item").dataset.state),
    null, { timeout: 30000 });
  result.control = {
    requests: sent.slice(result.refused_requests.length),
    state: await page.locator("#queue .item").first().getAttribute("data-state"),
    message: (await page.locator("#queue .item .item-message").first().textContent()).trim(),
  };
  step("upload page with files");
  await shoot(page, "upload-files");
  return page;
}

async function myUploads(context, page) {
  step("my uploads");
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await page.goto(`${base}/uploads?per_page=${config.per_page}`);
  await page.waitForSelector("#rows tr.upload");
  const names = () => page.$$eval("#rows tr.upload td.file", (cells) => cells.map((c) => c.textContent));
  const r = (result.my_uploads = {});
  r.first_page = await names();
  r.more_visible_first = await page.locator("#more").isVisible();
  await page.click("#more");
  await page.waitForFunction((n) => document.querySelectorAll("#rows tr.upload").length > n, r.first_page.length);
  r.after_more = await names();
  r.more_visible_after = await page.locator("#more").isVisible();
  r.current_nav = await page.locator('nav a[aria-current="page"]').textContent();

  step("entries viewer");
  const row = (name) => page.locator("#rows tr.upload", { has: page.locator("td.file", { hasText: name }) });
  await row(config.entries_filename).locator("button", { hasText: "Contents" }).click();
  await page.waitForSelector(".entries .tree");
  // Open every folder. A folder draws its children on its toggle event,
  // which comes in a later task than the click (or the page's own open):
  // wait until every open folder has drawn them before looking for the
  // folders they hold, or a slow machine sees none and stops early.
  const drawn = () => page.waitForFunction(() =>
    [...document.querySelectorAll(".entries details[open]")].every((d) => d.children.length > 1));
  await drawn();
  for (let round = 0; round < 10; round++) {
    const closed = page.locator(".entries details:not([open]) > summary");
    if ((await closed.count()) === 0) break;
    for (const s of await closed.all()) await s.click();
    await drawn();
  }
  r.entries_head = (await page.locator(".entries-head").textContent()).trim();
  r.tree = await page.$$eval(".entries .node", (nodes) =>
    nodes.map((n) => {
      let depth = 0;
      for (let p = n.parentElement; p && !p.classList.contains("tree"); p = p.parentElement) if (p.tagName === "UL") depth++;
      return {
        name: n.querySelector(".node-name").textContent,
        type: n.dataset.type,
        meta: n.querySelector(".node-meta").textContent,
        depth,
      };
    }));
  r.contents_expanded = await row(config.entries_filename).locator("button", { hasText: "Contents" }).getAttribute("aria-expanded");
  await shoot(page, "uploads");

  step("copy and download");
  await row(config.download_filename).locator("button", { hasText: "Copy" }).click();
  r.clipboard = await page.evaluate(() => navigator.clipboard.readText());
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    row(config.download_filename).locator("a", { hasText: "Download" }).click(),
  ]);
  const saved = path.join(config.screenshots, "..", "download-" + process.pid);
  await download.saveAs(saved);
  r.download = { suggested: download.suggestedFilename(), sha256: sha256File(saved), size: fs.statSync(saved).size };
  fs.unlinkSync(saved);

  step("delete");
  const deleteButton = row(config.delete_filename).locator("button", { hasText: "Delete" });
  // By keyboard: Enter opens the confirmation, Escape keeps the upload.
  await deleteButton.focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector("#confirm-delete[open]");
  r.dialog_text = (await page.locator("#confirm-delete").textContent()).replace(/\s+/g, " ").trim();
  await page.keyboard.press("Escape");
  await page.waitForSelector("#confirm-delete", { state: "hidden" });
  r.kept_after_escape = (await row(config.delete_filename).count()) === 1;
  const deletes = [];
  page.on("request", (q) => {
    if (q.method() === "DELETE") deletes.push(q);
  });
  await deleteButton.click();
  await page.click('#confirm-delete button[value="confirm"]');
  await page.waitForFunction((name) =>
    ![...document.querySelectorAll("#rows td.file")].some((c) => c.textContent === name), config.delete_filename);
  r.notice = (await page.locator("#notice").textContent()).trim();
  r.after_delete = await names();
  r.delete_requests = await Promise.all(deletes.map(async (q) => ({
    path: pathOf(q.url()),
    csrf_header: (await q.allHeaders())["x-csrf-token"] || null,
    status: (await q.response())?.status() ?? null,
  })));
  r.csrf_meta = await page.getAttribute('meta[name="csrf-token"]', "content");
}

async function uploaderOnAdmin(page) {
  step("uploader on /admin");
  const response = await page.goto(base + "/admin");
  result.uploader_admin = {
    status: response.status(),
    final_path: pathOf(page.url()),
    heading: (await page.locator("h1").textContent()).trim(),
    message: (await page.locator(".error").textContent()).trim(),
  };
  await shoot(page, "forbidden");
}

async function signOut(page) {
  step("sign out");
  await page.goto(base + "/uploads");
  await Promise.all([page.waitForURL(base + "/login"), page.click("#logout")]);
  const response = await page.goto(base + "/uploads");
  result.sign_out = { chain: chain(response), final_path: pathOf(page.url()) };
}

async function dashboard(browser) {
  step("dashboard");
  const context = await newContext(browser);
  const page = await signIn(context, config.admin);
  const kills = [];
  page.on("request", (q) => {
    if (q.method() === "POST" && pathOf(q.url()).startsWith("/admin/actors/")) kills.push(pathOf(q.url()));
  });
  await page.goto(base + "/admin");
  await page.waitForSelector("#actors tbody tr[data-name]");
  const r = (result.dashboard = {});
  r.tree = await page.$$eval("#actors tbody tr", (rows) =>
    rows.map((tr) => (tr.classList.contains("group")
      ? { group: tr.textContent }
      : {
          name: tr.dataset.name,
          branch: tr.querySelector(".branch").textContent,
          kind: tr.querySelector(".kind").textContent,
          restarts: tr.querySelector(".restarts").textContent,
          has_kill: !!tr.querySelector("button"),
        })));

  step("dashboard: live upload");
  const liveRow = page.locator("#live-uploads tbody tr", { hasText: config.live_upload_filename });
  try {
    await liveRow.waitFor();
  } catch (err) {
    r.actors_at_failure = await page.evaluate(() => fetch("/admin/actors").then((q) => q.text()));
    throw err;
  }
  const received = () => liveRow.locator("td.received").textContent();
  r.live_first = await received();
  await page.waitForFunction(
    ([name, first]) => {
      const tr = [...document.querySelectorAll("#live-uploads tbody tr")].find((t) => t.textContent.includes(name));
      return tr && tr.querySelector("td.received").textContent !== first;
    },
    [config.live_upload_filename, r.live_first]);
  r.live_second = await received();
  r.live_row = (await liveRow.textContent()).replace(/\s+/g, " ");
  r.session_rows = await page.$$eval("#actors tbody tr[data-name]", (rows) =>
    rows.filter((tr) => tr.querySelector(".kind").textContent === "upload_session").map((tr) => tr.dataset.name));
  await page.waitForFunction(() => document.querySelector("#throughput-chart path.line") &&
    !/^0 bytes/.test(document.getElementById("throughput-now").textContent));
  r.throughput_now = await page.locator("#throughput-now").textContent();

  step("dashboard: uploads per minute");
  const put = await context.request.put(`${base}/api/v1/uploads/${path.basename(config.files.quick)}`, {
    headers: { Authorization: `Bearer ${config.admin.token}` },
    data: fs.readFileSync(config.files.quick),
  });
  r.quick_put_status = put.status();
  await page.waitForSelector("#upm-chart rect.bar-ok");
  r.upm_now = await page.locator("#upm-now").textContent();

  step("dashboard: kill");
  const target = page.locator(`#actors tbody tr[data-name="${config.kill_actor}"]`);
  r.kill_restarts_before = await target.locator(".restarts").textContent();
  r.kill_id_before = await target.getAttribute("data-id");
  await target.locator("button").click();
  await page.waitForSelector("#confirm-kill[open]");
  r.kill_dialog = (await page.locator("#confirm-kill").textContent()).replace(/\s+/g, " ").trim();
  await page.click('#confirm-kill button[value="cancel"]');
  await page.waitForSelector("#confirm-kill", { state: "hidden" });
  r.kill_requests_after_cancel = kills.length;
  await target.locator("button").click();
  await page.click('#confirm-kill button[value="confirm"]');
  await page.waitForFunction(() => /restarted/.test(document.getElementById("notice").textContent));
  r.kill_notice = (await page.locator("#notice").textContent()).trim();
  r.kill_requests = kills.slice();
  await page.waitForFunction(
    ([name, before]) => {
      const tr = document.querySelector(`#actors tbody tr[data-name="${name}"]`);
      return tr && tr.querySelector(".restarts").textContent !== before;
    },
    [config.kill_actor, r.kill_restarts_before]);
  r.kill_restarts_after = await target.locator(".restarts").textContent();
  r.kill_id_after = await target.getAttribute("data-id");

  step("dashboard: audit, users, tokens");
  await page.waitForFunction(() => [...document.querySelectorAll("#audit tbody tr")].some((tr) => tr.textContent.includes("actor.kill")),
    null, { timeout: 20000 });
  r.audit_events = await page.$$eval("#audit tbody tr td:nth-child(2)", (cells) => cells.map((c) => c.textContent));
  r.users = await page.$$eval("#users tbody tr", (rows) => rows.map((tr) => [...tr.cells].map((c) => c.textContent)));
  r.tokens = await page.$$eval("#tokens tbody tr", (rows) => rows.map((tr) => [...tr.cells].map((c) => c.textContent)));
  r.body_text = await page.evaluate(() => document.body.innerText);
  r.live_text = await page.locator("#live").textContent();
  await shoot(page, "admin");
  await context.close();
}

// --- uploads over tus (/api/v1/tus/, SPEC §5.2) --------------------------------

// Every tus request of the page, with what the test asserts on: the CSRF
// header, Upload-Offset sent and answered, the status.
function recordTus(page, into) {
  page.on("requestfinished", async (q) => {
    const p = pathOf(q.url());
    if (!p.startsWith("/api/v1/tus")) return;
    const entry = { method: q.method(), path: p };
    into.push(entry);
    const headers = await q.allHeaders().catch(() => ({}));
    entry.csrf_header = headers["x-csrf-token"] || null;
    entry.upload_offset = headers["upload-offset"] ?? null;
    const response = await q.response().catch(() => null);
    entry.status = response ? response.status() : null;
    entry.answered_offset = response ? (await response.headerValue("upload-offset").catch(() => null)) : null;
  });
  page.on("requestfailed", async (q) => {
    const p = pathOf(q.url());
    if (!p.startsWith("/api/v1/tus")) return;
    const entry = { method: q.method(), path: p, failed: q.failure()?.errorText || "failed" };
    into.push(entry);
    const headers = await q.allHeaders().catch(() => ({}));
    entry.csrf_header = headers["x-csrf-token"] || null;
    entry.upload_offset = headers["upload-offset"] ?? null;
  });
}

// Percents the page showed for each file, in order (the stats line is
// rewritten on every progress event).
async function watchPercents(page) {
  await page.evaluate(() => {
    window.__percents = {};
    new MutationObserver(() => {
      for (const item of document.querySelectorAll("#queue .item")) {
        const name = item.querySelector(".item-name").textContent;
        const m = /^(\d+) %/.exec(item.querySelector(".item-stats").textContent);
        if (!m) continue;
        const seen = (window.__percents[name] ||= []);
        if (seen[seen.length - 1] !== Number(m[1])) seen.push(Number(m[1]));
      }
    }).observe(document.getElementById("queue"), { childList: true, subtree: true, characterData: true });
  });
}

function itemOf(page, name) {
  return page.locator("#queue .item", { has: page.locator(".item-name", { hasText: name }) });
}

// What the page shows for one file once it has finished.
async function finished(page, name, timeout) {
  const item = itemOf(page, name);
  await page.waitForFunction((n) => {
    const it = [...document.querySelectorAll("#queue .item")].find((i) => i.querySelector(".item-name").textContent === n);
    return it && (it.dataset.state === "failed" || it.dataset.state === "refused" ||
      (it.dataset.state === "done" && it.querySelector(".item-state").textContent === "Uploaded"));
  }, name, { timeout });
  const text = async (sel) => ((await item.locator(sel).count()) ? (await item.locator(sel).first().textContent()).trim() : null);
  return {
    state: await item.getAttribute("data-state"),
    label: await text(".item-state"),
    stats: await text(".item-stats"),
    message: await text(".item-message"),
    sha256: await text(".sha256"),
    entries: await text(".entry-count"),
    uncompressed: await text(".uncompressed"),
    percents: await page.evaluate((n) => (window.__percents || {})[n] || [], name),
  };
}

async function tusUploads(browser) {
  step("tus: sign in");
  const context = await newContext(browser);
  const page = await signIn(context, config.uploader);
  const r = (result.tus = { requests: [] });
  recordTus(page, r.requests);
  const quotaText = () => page.locator("#quota-text").textContent();
  await page.waitForFunction(() => !document.getElementById("quota-text").textContent.startsWith("Loading"));
  r.quota_before = await quotaText();
  r.csrf_meta = await page.getAttribute('meta[name="csrf-token"]', "content");
  const f = config.files;
  const slow = config.upload_timeout_ms;

  // Chromium's own network throttling (DevTools protocol) slows an upload
  // where a check must see it in flight; the server is not slowed.
  const cdp = await context.newCDPSession(page);
  const throttle = (bytesPerSecond) => cdp.send("Network.emulateNetworkConditions",
    { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
  await cdp.send("Network.enable");

  step("tus: 32 MiB");
  await watchPercents(page);
  // On an idle machine 32 MiB can cross loopback between two of Chromium's
  // progress events; at 64 MiB/s it takes half a second, so the bar's path
  // is there to see however fast the machine.
  await throttle(64 * 1024 * 1024);
  await page.setInputFiles("#files", [f.big]);
  r.big = await finished(page, path.basename(f.big), slow);
  await throttle(-1);
  await page.waitForFunction((before) => document.getElementById("quota-text").textContent !== before, r.quota_before);
  r.quota_after_big = await quotaText();
  await shoot(page, "upload-done");

  step("tus: hostile archive");
  await page.setInputFiles("#files", [f.hostile]);
  r.hostile = await finished(page, path.basename(f.hostile), slow);

  step("tus: two files at once");
  await page.setInputFiles("#files", [f.two_a, f.two_b]);
  r.two = [await finished(page, path.basename(f.two_a), slow), await finished(page, path.basename(f.two_b), slow)];

  // Throttled, so that the reload lands mid-file.
  step("tus: reload mid-upload");
  await throttle(config.throttle_bytes_per_second);
  const resumeName = path.basename(f.resume);
  await page.setInputFiles("#files", [f.resume]);
  await page.waitForFunction((n) => {
    const it = [...document.querySelectorAll("#queue .item")].find((i) => i.querySelector(".item-name").textContent === n);
    const m = it && /^(\d+) %/.exec(it.querySelector(".item-stats").textContent);
    return m && Number(m[1]) >= 30;
  }, resumeName, { timeout: slow });
  r.percent_at_reload = await itemOf(page, resumeName).locator(".item-stats").textContent();
  await page.reload();
  await page.waitForSelector("#unfinished-list li");
  r.stored_keys = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("tus::")));
  r.unfinished_text = (await page.locator("#unfinished-list li").first().textContent()).replace(/\s+/g, " ").trim();
  await shoot(page, "upload-unfinished");
  await watchPercents(page);
  await page.setInputFiles("#files", [f.resume]);
  await page.waitForFunction((n) => {
    const it = [...document.querySelectorAll("#queue .item")].find((i) => i.querySelector(".item-name").textContent === n);
    return it && /^\d+ %/.test(it.querySelector(".item-stats").textContent);
  }, resumeName, { timeout: slow });
  r.continuing_message = (await itemOf(page, resumeName).locator(".item-message").textContent()).trim();
  r.unfinished_hidden_after_pick = await page.locator("#unfinished").isHidden();

  step("tus: pause and resume");
  const item = itemOf(page, resumeName);
  await item.locator("button", { hasText: "Pause" }).click();
  await page.waitForFunction((n) => [...document.querySelectorAll("#queue .item")]
    .some((i) => i.querySelector(".item-name").textContent === n && i.dataset.state === "paused"), resumeName);
  r.paused = { label: (await item.locator(".item-state").textContent()).trim(), button: (await item.locator(".item-actions button").first().textContent()).trim() };
  const patched = page.waitForRequest((q) => q.method() === "PATCH" && pathOf(q.url()).startsWith("/api/v1/tus/"));
  await item.locator("button", { hasText: "Resume" }).click();
  await patched;
  await shoot(page, "upload-progress");
  // The quota already counts the declared length (SPEC §5.2); the page
  // reads it again once the upload is done.
  const meAgain = page.waitForResponse((q) => pathOf(q.url()) === "/api/v1/me", { timeout: slow });
  await throttle(-1);
  r.resume = await finished(page, resumeName, slow);
  const me = await (await meAgain).json();
  await page.waitForFunction((used) => document.getElementById("quota-text").textContent.startsWith(`${formatBytes(used)} of`),
    me.used_bytes);
  r.stored_keys_after = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("tus::")));
  r.quota_after = await quotaText();
  await context.close();
}

async function main() {
  let browser;
  result.errors = {};
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    result.browser_version = browser.version();
    const parts = [
      ["anonymous", () => anonymous(browser)],
      ["lockout", () => lockout(browser)],
      ["uploader", async () => {
        const context = await newContext(browser);
        try {
          const page = await uploadPage(context);
          await myUploads(context, page);
          await uploaderOnAdmin(page);
          await signOut(page);
        } finally {
          await context.close();
        }
      }],
      ["dashboard", () => dashboard(browser)],
      ["tus", () => tusUploads(browser)],
    ];
    // Independent parts: one failing still lets the others report.
    for (const [name, part] of parts) {
      try {
        await part();
      } catch (err) {
        result.errors[name] = `${currentStep}: ${err && err.stack ? err.stack : err}`;
      }
    }
  } catch (err) {
    result.errors.browser = String(err && err.stack ? err.stack : err);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  result.ok = Object.keys(result.errors).length === 0;
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

main();

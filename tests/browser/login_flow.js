#!/usr/bin/env node
// Drives Debian's Chromium (never a downloaded browser) through upload-portal's
// login/logout cycle and a set of cross-origin attacks, and prints what it saw
// as one JSON object on stdout. It asserts nothing itself: the Python test
// (tests/e2e/test_browser_login.py) does, so every expectation is in one place.
//
//   node login_flow.js CONFIG_JSON
//
// CONFIG_JSON: {"base": "http://127.0.0.1:PORT", "username", "password",
//               "wrong_password", "attacker_username", "attacker_password"}
//
// Attacker pages are served by this script on another loopback port, reached
// both as http://127.0.0.1:EVIL (same site as the portal: another origin,
// another port, so a SameSite cookie still goes along) and as
// http://localhost:EVIL (another site: a SameSite=Strict cookie stays home).
"use strict";

const http = require("http");
const { chromium } = require("playwright-core");

const CHROMIUM = process.env.PORTAL_CHROMIUM || "/usr/bin/chromium";
const COOKIE = "portal_session";
const TIMEOUT_MS = 10000;

const config = JSON.parse(process.argv[2] || "{}");
const base = config.base;
const result = { steps: [] };

function step(name) {
  result.steps.push(name);
  process.stderr.write(`login_flow: ${name}\n`);
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// --- the attacker's web server --------------------------------------------

function attackerPage(url) {
  const q = url.searchParams;
  const target = q.get("target");
  const kind = q.get("kind");
  if (kind === "login") {
    // Login CSRF: signs the victim's browser in as the attacker.
    return `<!doctype html><title>win a prize</title>
<form method="post" action="${esc(target)}/login">
<input name="username" value="${esc(q.get("u"))}"><input name="password" value="${esc(q.get("p"))}">
</form><script>document.forms[0].submit()</script>`;
  }
  if (kind === "opaque-login") {
    // The same from a document with an opaque origin (a sandboxed frame, as a
    // data: document has): the browser sends "Origin: null".
    const inner = `<form method="post" action="${esc(target)}/login" target="_top">
<input name="username" value="${esc(q.get("u"))}"><input name="password" value="${esc(q.get("p"))}">
</form><script>document.forms[0].submit()</script>`;
    return `<!doctype html><title>win a prize</title>
<iframe sandbox="allow-forms allow-scripts allow-top-navigation" srcdoc="${esc(inner)}"></iframe>`;
  }
  if (kind === "logout") {
    return `<!doctype html><title>win a prize</title>
<form method="post" action="${esc(target)}/logout"></form>
<script>document.forms[0].submit()</script>`;
  }
  if (kind === "fetch") {
    // A credentialed cross-origin fetch; the answer is opaque, the request is sent.
    return `<!doctype html><title>loading</title><script>
fetch(${JSON.stringify(target + "/logout")}, {method: "POST", credentials: "include", mode: "no-cors"})
  .then(() => { document.title = "sent"; }, (e) => { document.title = "error: " + e; });
</script>`;
  }
  if (kind === "link") {
    return `<!doctype html><title>a link</title><a id="go" href="${esc(target)}/">the portal</a>`;
  }
  return null;
}

function startAttacker() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://attacker");
    const page = url.pathname === "/attack" ? attackerPage(url) : null;
    if (page === null) {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("not found");
      return;
    }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(page);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// --- helpers ---------------------------------------------------------------

function pathOf(u) {
  try {
    const parsed = new URL(u);
    return parsed.origin === base ? parsed.pathname : u;
  } catch {
    return u;
  }
}

// The statuses of a navigation's redirect chain, first to last.
function chain(response) {
  const out = [];
  let req = response ? response.request() : null;
  const reqs = [];
  while (req) {
    reqs.unshift(req);
    req = req.redirectedFrom();
  }
  return reqs.map((r) => r.url());
}

async function sessionCookie(context) {
  const all = await context.cookies(base);
  return all.find((c) => c.name === COOKIE) || null;
}

// Watches one page: console errors, page errors and CSP violations, each with
// the page (path) it happened on.
function watch(page, sink) {
  page.on("console", (msg) => {
    if (msg.type() === "error") sink.console_errors.push({ page: pathOf(page.url()), text: msg.text() });
  });
  page.on("pageerror", (err) => sink.page_errors.push({ page: pathOf(page.url()), text: String(err) }));
}

// Resolves at the next CSP violation reported in sink; rejects after the timeout.
function nextViolation(sink) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no CSP violation reported")), TIMEOUT_MS);
    sink.waiters.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function newContext(browser, sink) {
  Object.defineProperty(sink, "waiters", { value: [], enumerable: false });
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT_MS);
  context.setDefaultNavigationTimeout(TIMEOUT_MS);
  await context.exposeBinding("__portalCspViolation", (source, v) => {
    sink.csp_violations.push({ page: pathOf(source.page ? source.page.url() : v.document), ...v });
    for (const wake of sink.waiters.splice(0)) wake();
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__portalCspViolation({
        document: e.documentURI,
        directive: e.violatedDirective,
        blocked: e.blockedURI,
        sample: e.sample,
      });
    });
  });
  return context;
}

// Opens an attacker page in a new tab and waits for the request it makes to
// the portal (matching predicate) to be answered; returns what was sent and
// what came back, and closes the tab.
async function attack(context, attackerUrl, predicate, action) {
  const page = await context.newPage();
  try {
    const waiting = page.waitForResponse((r) => r.url().startsWith(base) && predicate(r.request()));
    // "commit": the page navigates on by itself (auto-submit) while loading.
    await page.goto(attackerUrl, { waitUntil: "commit" });
    if (action) await action(page);
    const response = await waiting;
    const request = response.request();
    const headers = await request.allHeaders();
    const cookieHeader = headers["cookie"] || "";
    return {
      url: pathOf(request.url()),
      method: request.method(),
      status: response.status(),
      origin_header: headers["origin"] || null,
      sec_fetch_site: headers["sec-fetch-site"] || null,
      cookie_sent: cookieHeader.split(/;\s*/).some((c) => c.startsWith(COOKIE + "=")),
      set_cookie: (await response.headerValue("set-cookie")) || null,
    };
  } finally {
    await page.close();
  }
}

// --- the flow --------------------------------------------------------------

// The victim's browser: wrong password, sign in, attacks, sign out.
async function victimFlow(browser, sameSite, crossSite, q) {
  const victim = { console_errors: [], page_errors: [], csp_violations: [] };
  result.victim = victim;
  const context = await newContext(browser, victim);
  const page = await context.newPage();
  watch(page, victim);
  const scriptResponses = [];
  page.on("response", (r) => {
    if (pathOf(r.url()).startsWith("/static/")) scriptResponses.push({ url: pathOf(r.url()), status: r.status() });
  });
  result.static_responses = scriptResponses;

  step("anonymous GET /");
  let response = await page.goto(base + "/");
  result.anonymous_home = {
    chain: chain(response).map(pathOf),
    first_status: (await response.request().redirectedFrom()?.response())?.status() ?? null,
    final_status: response.status(),
    final_path: pathOf(page.url()),
    has_form: (await page.locator('form[action="/login"]').count()) === 1,
  };

  step("wrong password");
  await page.fill('input[name="username"]', config.username);
  await page.fill('input[name="password"]', config.wrong_password);
  [response] = await Promise.all([
    page.waitForResponse((r) => pathOf(r.url()) === "/login" && r.request().method() === "POST"),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForLoadState("load");
  result.wrong_password = {
    status: response.status(),
    final_path: pathOf(page.url()),
    has_form: (await page.locator('form[action="/login"] input[name="password"]').count()) === 1,
    error_text: ((await page.locator(".error").textContent()) || "").trim(),
    cookie: (await sessionCookie(context)) !== null,
  };

  step("sign in");
  const loginPageErrorsBefore = victim.console_errors.length;
  await page.goto(base + "/login");
  result.login_page_error_text = ((await page.locator(".error").textContent()) || "").trim();
  await page.fill('input[name="username"]', config.username);
  await page.fill('input[name="password"]', config.password);
  [response] = await Promise.all([
    page.waitForResponse((r) => pathOf(r.url()) === "/login" && r.request().method() === "POST"),
    page.click('button[type="submit"]'),
  ]);
  result.sign_in = { post_status: response.status(), post_location: await response.headerValue("location") };
  await page.waitForURL(base + "/");
  await page.waitForLoadState("load");
  const cookie = await sessionCookie(context);
  Object.assign(result.sign_in, {
    final_path: pathOf(page.url()),
    shown_username: ((await page.locator("#username").textContent()) || "").trim(),
    cookie: cookie && {
      http_only: cookie.httpOnly,
      same_site: cookie.sameSite,
      secure: cookie.secure,
      path: cookie.path,
    },
    // document.cookie reads every cookie that is not HttpOnly: a probe cookie
    // set here must show, the session cookie must not.
    document_cookie: await page.evaluate(() => {
      document.cookie = "probe=visible; path=/; SameSite=Strict";
      const seen = document.cookie;
      document.cookie = "probe=; path=/; max-age=0";
      return seen;
    }),
    csrf_meta: await page.getAttribute('meta[name="csrf-token"]', "content"),
    // session.js is an external script: it must have run under the CSP.
    session_js_ran: await page.evaluate(() => typeof signOut === "function" && typeof csrfToken === "function"),
  });
  result.cookie_value = cookie ? cookie.value : null;
  result.console_errors_on_login_and_home = victim.console_errors.slice(loginPageErrorsBefore);

  // Control: the CSP listener does hear a violation (an inline script the
  // policy must block), so "no violations" above means something.
  step("CSP control");
  const before = victim.csp_violations.length;
  const violationHeard = nextViolation(victim);
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inlineRan = true;";
    document.head.appendChild(s);
  });
  await violationHeard;
  result.csp_control = {
    violations: victim.csp_violations.slice(before),
    inline_ran: await page.evaluate(() => window.__inlineRan === true),
  };
  victim.csp_violations.splice(before); // the control's own violation is not a finding

  step("attacks while signed in");
  const isLogout = (r) => pathOf(r.url()) === "/logout" && r.method() === "POST";
  const isHome = (r) => pathOf(r.url()) === "/" && r.method() === "GET";
  result.attacks_signed_in = {
    form_logout_same_site: await attack(context, sameSite + q({ kind: "logout" }), isLogout),
    form_logout_cross_site: await attack(context, crossSite + q({ kind: "logout" }), isLogout),
    fetch_logout_same_site: await attack(context, sameSite + q({ kind: "fetch" }), isLogout),
    fetch_logout_cross_site: await attack(context, crossSite + q({ kind: "fetch" }), isLogout),
    link_cross_site: await attack(context, crossSite + q({ kind: "link" }), isHome, (p) => p.click("#go")),
  };

  step("session after the attacks");
  const after = await sessionCookie(context);
  response = await page.goto(base + "/");
  const me = await context.request.get(base + "/api/v1/me");
  result.after_attacks = {
    cookie_unchanged: after !== null && cookie !== null && after.value === cookie.value,
    home_status: response.status(),
    final_path: pathOf(page.url()),
    shown_username: page.url() === base + "/" ? ((await page.locator("#username").textContent()) || "").trim() : null,
    me_status: me.status(),
    me_username: me.ok() ? (await me.json()).username : null,
  };

  step("sign out");
  const errorsBeforeLogout = victim.console_errors.length;
  const csrf = await page.getAttribute('meta[name="csrf-token"]', "content");
  const [logoutRequest] = await Promise.all([
    page.waitForRequest((r) => isLogout(r)),
    page.click("#logout"),
  ]);
  const logoutResponse = await logoutRequest.response();
  await page.waitForURL(base + "/login");
  await page.waitForLoadState("load");
  result.sign_out = {
    csrf_meta: csrf,
    request_csrf_header: (await logoutRequest.allHeaders())["x-csrf-token"] || null,
    status: logoutResponse ? logoutResponse.status() : null,
    final_path: pathOf(page.url()),
    cookie_left: (await sessionCookie(context)) !== null,
  };
  response = await page.goto(base + "/");
  result.after_sign_out = {
    chain: chain(response).map(pathOf),
    final_path: pathOf(page.url()),
    has_form: (await page.locator('form[action="/login"]').count()) === 1,
  };
  result.console_errors_on_logout = victim.console_errors.slice(errorsBeforeLogout);
  await context.close();
}

// A fresh browser (no session): pages on other origins try to sign it in.
async function loginCsrf(browser, sameSite, crossSite, q) {
  step("login CSRF");
  const fresh = { console_errors: [], page_errors: [], csp_violations: [] };
  result.fresh = fresh;
  const freshContext = await newContext(browser, fresh);
  const isLogin = (r) => pathOf(r.url()) === "/login" && r.method() === "POST";
  const creds = { u: config.attacker_username, p: config.attacker_password };
  result.login_csrf = {
    same_site: await attack(freshContext, sameSite + q({ kind: "login", ...creds }), isLogin),
    cross_site: await attack(freshContext, crossSite + q({ kind: "login", ...creds }), isLogin),
  };
  result.login_csrf.opaque_origin = await attack(
    freshContext, sameSite + q({ kind: "opaque-login", ...creds }), isLogin);
  result.login_csrf.cookie_after = (await sessionCookie(freshContext)) !== null;
  const check = await freshContext.newPage();
  const response = await check.goto(base + "/");
  result.login_csrf.home_after = { chain: chain(response).map(pathOf), final_path: pathOf(check.url()) };
  await freshContext.close();
}

async function main() {
  const attacker = await startAttacker();
  let browser;
  try {
    // launch() runs Chromium with a new, empty --user-data-dir of its own
    // (removed at close); headless; the flags of the machine notes.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    result.browser_version = browser.version();
    const port = attacker.address().port;
    const sameSite = `http://127.0.0.1:${port}/attack`;
    const crossSite = `http://localhost:${port}/attack`;
    const q = (params) => "?" + new URLSearchParams({ target: base, ...params }).toString();
    // Two independent parts: one failing still lets the other report.
    result.errors = {};
    for (const [name, part] of [["victim", victimFlow], ["login_csrf", loginCsrf]]) {
      try {
        await part(browser, sameSite, crossSite, q);
      } catch (err) {
        result.errors[name] = String(err && err.stack ? err.stack : err);
      }
    }
    result.ok = Object.keys(result.errors).length === 0;
  } catch (err) {
    result.ok = false;
    result.errors = { browser: String(err && err.stack ? err.stack : err) };
  } finally {
    if (browser) await browser.close().catch(() => {});
    attacker.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.ok ? 0 : 1);
}

main();

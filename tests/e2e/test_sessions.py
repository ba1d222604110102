"""End-to-end tests of browser sessions (SPEC §4, §11): the login form,
session cookies, CSRF, logout, expiry, lockout and the login rate limit,
against the real binary and a real PostgreSQL.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_sessions        (from tests/e2e)
"""

import io
import json
import re
import tarfile
import urllib.parse
import uuid
import gzip

from portal_harness import PortalTestCase, wait_until
from test_skeleton import Checks

COOKIE = "portal_session"


def form(**fields):
    return urllib.parse.urlencode(fields).encode()


def small_archive():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


class SessionChecks(Checks):
    """Logging in through the form, as a browser would."""

    def add_user(self, role="uploader", password=None, portal=None):
        portal = portal or self.portal
        name = "u" + uuid.uuid4().hex[:10]
        password = password or "pw-" + uuid.uuid4().hex
        portal.run_ok("user", "add", name, "--role", role, "--password-stdin", input=password + "\n")
        return name, password

    def post_login(self, username, password, headers=None, portal=None):
        portal = portal or self.portal
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        hdrs.update(headers or {})
        return portal.request("POST", "/login", headers=hdrs, body=form(username=username, password=password))

    def login(self, username, password, portal=None):
        """Logs in; returns the session cookie's value."""
        status, headers, body = self.post_login(username, password, portal=portal)
        self.assertEqual(status, 303, body[:300])
        self.assertEqual(headers["Location"], "/")
        return self.session_cookie(headers)

    def session_cookie(self, headers, name=COOKIE):
        cookies = headers.get_all("Set-Cookie") or []
        self.assertEqual(len(cookies), 1, cookies)
        match = re.match(rf"{re.escape(name)}=([A-Za-z0-9_-]+);", cookies[0])
        self.assertIsNotNone(match, cookies[0])
        return match.group(1)

    def with_cookie(self, cookie, name=COOKIE, **extra):
        headers = {"Cookie": f"{name}={cookie}"}
        headers.update(extra)
        return headers

    def me(self, cookie, portal=None):
        portal = portal or self.portal
        status, _, body = portal.request("GET", "/api/v1/me", headers=self.with_cookie(cookie))
        return status, (json.loads(body) if body else None)

    def audit_events(self, admin_token, limit=200):
        status, _, doc = self.portal.get_json(f"/admin/audit?limit={limit}", token=admin_token)
        self.assertEqual(status, 200, doc)
        return doc["events"]


class SessionTest(PortalTestCase, SessionChecks):
    # Lockout tests try many logins from one address.
    PORTAL_ENV = {"PORTAL_LOGINS_PER_MINUTE": "10000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_token = cls.portal.create_user_and_token("audit-admin", "admin")

    # -- the way in

    def test_login_page_is_html_with_security_headers(self):
        status, headers, body = self.portal.request("GET", "/login")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"), headers)
        self.assertIn(b'action="/login"', body)
        self.assert_security_headers(headers, "GET /login")
        self.assertNotIn(b"<script>", body)  # CSP: no inline script anywhere

    def test_anonymous_pages_redirect_and_api_answers_401(self):
        status, headers, _ = self.portal.request("GET", "/")
        self.assertEqual((status, headers["Location"]), (303, "/login"))
        self.assert_security_headers(headers, "303 to /login")
        status, headers, body = self.portal.request("GET", "/api/v1/me")
        self.assertEqual(status, 401)
        self.assertEqual(headers["WWW-Authenticate"], "Bearer")
        self.assert_json_error(headers, body)

    def test_login_logout_cycle(self):
        name, password = self.add_user()
        status, headers, body = self.post_login(name, password)
        self.assertEqual(status, 303, body[:300])
        self.assertEqual(headers["Location"], "/")
        set_cookie = headers["Set-Cookie"]
        attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
        self.assertTrue({"httponly", "path", "max-age", "samesite"} <= attributes, set_cookie)
        self.assertIn("SameSite=Strict", set_cookie)
        self.assertNotIn("secure", attributes)  # development: plain http
        cookie = self.session_cookie(headers)

        # The table holds a keyed hash of the id, never the id itself.
        stored = self.pg.psql("select id_hash from sessions").split()
        self.assertTrue(stored)
        self.assertNotIn(cookie, stored)

        status, doc = self.me(cookie)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["username"], name)
        csrf = doc["csrf_token"]
        self.assertRegex(csrf, r"^[A-Za-z0-9_-]{32,}$")

        # The home page carries the same token in its meta tag.
        status, headers, page = self.portal.request("GET", "/", headers=self.with_cookie(cookie))
        self.assertEqual(status, 200)
        self.assertIn(f'<meta name="csrf-token" content="{csrf}">'.encode(), page)
        self.assert_security_headers(headers, "GET /")

        # Logout needs the token like any other state change.
        status, _, _ = self.portal.request("POST", "/logout", headers=self.with_cookie(cookie))
        self.assertEqual(status, 403)
        self.assertEqual(self.me(cookie)[0], 200)
        status, headers, _ = self.portal.request(
            "POST", "/logout", headers=self.with_cookie(cookie, **{"X-CSRF-Token": csrf}))
        self.assertEqual((status, headers["Location"]), (303, "/login"))
        self.assertIn("Max-Age=0", headers["Set-Cookie"])

        # Ended server-side: the same cookie is refused everywhere.
        status, _ = self.me(cookie)
        self.assertEqual(status, 401)
        status, headers, _ = self.portal.request("GET", "/", headers=self.with_cookie(cookie))
        self.assertEqual((status, headers["Location"]), (303, "/login"))

        events = [(e["event"], e["user"]) for e in self.audit_events(self.admin_token)
                  if e["detail"].get("username") == name or e["user"] == name]
        self.assertIn(("login.ok", name), events)
        self.assertIn(("logout", name), events)
        for e in self.audit_events(self.admin_token):
            self.assertNotIn(cookie, json.dumps(e))
        self.assertNotIn(cookie, self.portal.output())

    def test_csrf_token_guards_cookie_requests_not_bearer_ones(self):
        name, password = self.add_user()
        cookie = self.login(name, password)
        csrf = self.me(cookie)[1]["csrf_token"]
        archive = small_archive()
        put = f"/api/v1/uploads/{uuid.uuid4().hex[:8]}.tar.gz"

        # Without the token, or with another one: 403, and nothing stored.
        for extra in ({}, {"X-CSRF-Token": "x" * len(csrf)}, {"X-CSRF-Token": ""},
                      {"X-CSRF-Token": csrf + "x"}):
            status, headers, body = self.portal.request(
                "PUT", put, headers=self.with_cookie(cookie, **extra), body=archive)
            self.assertEqual(status, 403, (extra, body))
            self.assertEqual(self.assert_json_error(headers, body)["code"], "csrf_token_missing")
            status, _, _ = self.portal.request(
                "DELETE", "/api/v1/uploads/nosuchupload", headers=self.with_cookie(cookie, **extra))
            self.assertEqual(status, 403)
        self.assertEqual(self.pg.psql("select count(*) from uploads where filename = '%s'"
                                      % put.rsplit("/", 1)[1]).strip(), "0")

        # A safe method needs no token; with it, the upload goes through.
        self.assertEqual(self.me(cookie)[0], 200)
        status, _, body = self.portal.request(
            "PUT", put, headers=self.with_cookie(cookie, **{"X-CSRF-Token": csrf}), body=archive)
        self.assertEqual(status, 201, body)
        upload_id = json.loads(body)["id"]
        status, _, _ = self.portal.request(
            "DELETE", f"/api/v1/uploads/{upload_id}",
            headers=self.with_cookie(cookie, **{"X-CSRF-Token": csrf}))
        self.assertEqual(status, 204)

        # A bearer token is never sent by a browser on its own: no CSRF token.
        token = self.portal.run_ok("token", "create", "--user", name).stdout.split()[-1]
        status, _, _ = self.portal.request(
            "DELETE", "/api/v1/uploads/nosuchupload", headers=self.auth(token))
        self.assertEqual(status, 404)
        # And a bearer header wins over a cookie: no CSRF check either.
        status, _, _ = self.portal.request(
            "DELETE", "/api/v1/uploads/nosuchupload",
            headers=dict(self.with_cookie(cookie), **self.auth(token)))
        self.assertEqual(status, 404)

    def test_csrf_tokens_belong_to_their_session(self):
        name, password = self.add_user()
        first = self.login(name, password)
        second = self.login(name, password)
        self.assertNotEqual(first, second)
        csrf_first = self.me(first)[1]["csrf_token"]
        self.assertNotEqual(csrf_first, self.me(second)[1]["csrf_token"])
        status, _, _ = self.portal.request(
            "POST", "/logout", headers=self.with_cookie(second, **{"X-CSRF-Token": csrf_first}))
        self.assertEqual(status, 403)

    def test_sessions_end_when_the_user_is_disabled(self):
        name, password = self.add_user()
        cookie = self.login(name, password)
        self.assertEqual(self.me(cookie)[0], 200)
        self.portal.run_ok("user", "disable", name)
        self.assertEqual(self.me(cookie)[0], 401)
        status, _, _ = self.post_login(name, password)
        self.assertEqual(status, 401)

    def test_session_past_its_absolute_age_is_refused(self):
        name, password = self.add_user()
        cookie = self.login(name, password)
        self.assertEqual(self.me(cookie)[0], 200)
        user_id = self.pg.psql(f"select id from users where username = '{name}'").strip()
        self.pg.psql("update sessions set created_at = now() - interval '2 days',"
                     " absolute_expires_at = now() - interval '1 second'"
                     f" where user_id = {user_id}")
        status, _ = self.me(cookie)
        self.assertEqual(status, 401)

    def test_forged_and_garbage_cookies(self):
        for value in ("", "x", "A" * 43, "A" * 44, "%00", "' or 1=1 --", "é" * 10, "a" * 4000):
            status, headers, body = self.portal.request(
                "GET", "/api/v1/me", headers={"Cookie": f"{COOKIE}={value}".encode()})
            self.assertEqual(status, 401, value)
            self.assert_json_error(headers, body)
        status, _, _ = self.portal.request("GET", "/api/v1/me",
                                           headers={"Cookie": "a=b; c; =; ;;" + COOKIE})
        self.assertEqual(status, 401)
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)

    # -- wrong passwords, lockout, no enumeration

    def test_wrong_password_and_unknown_user_answer_alike(self):
        name, _ = self.add_user()
        known = self.post_login(name, "wrong")
        unknown = self.post_login("nobody" + uuid.uuid4().hex[:8], "wrong")
        self.assertEqual(known[0], 401)
        self.assertEqual(unknown[0], 401)
        self.assertEqual(known[2], unknown[2])
        self.assertTrue(known[1]["Content-Type"].startswith("text/html"))
        self.assertIsNone(known[1].get("Set-Cookie"))
        self.assert_security_headers(known[1], "401 login page")
        events = [e for e in self.audit_events(self.admin_token) if e["event"] == "login.failed"]
        self.assertTrue(any(e["detail"].get("username") == name for e in events))

    def test_lockout_after_five_failures_even_with_the_right_password(self):
        name, password = self.add_user()
        for _ in range(5):
            self.assertEqual(self.post_login(name, "wrong")[0], 401)
        status, headers, body = self.post_login(name, password)
        self.assertEqual(status, 429, body[:200])
        retry = int(headers["Retry-After"])
        self.assertTrue(800 <= retry <= 900, retry)
        self.assertIsNone(headers.get("Set-Cookie"))
        # Case does not escape the lock: names compare case-insensitively.
        self.assertEqual(self.post_login(name.upper(), password)[0], 429)
        # Another account is not affected.
        other, other_password = self.add_user()
        self.login(other, other_password)

        # Locked attempts do not prolong the lock: once the five failures are
        # 15 minutes old, the right password works again.
        self.pg.psql("update login_failures set at = at - interval '15 minutes 1 second'"
                     f" where username = '{name.lower()}'")
        self.login(name, password)
        events = [e["event"] for e in self.audit_events(self.admin_token)
                  if e["detail"].get("username") in (name, name.upper())]
        self.assertEqual(events.count("login.failed"), 5)
        self.assertEqual(events.count("login.locked"), 2)
        self.assertIn("login.ok", events)

    def test_unknown_names_lock_exactly_like_known_ones(self):
        known, _ = self.add_user()
        unknown = "ghost" + uuid.uuid4().hex[:8]
        answers = {}
        for name in (known, unknown):
            seen = []
            for _ in range(6):
                status, headers, body = self.post_login(name, "wrong")
                # The page carries the lock's seconds left for its countdown:
                # they tick for both names alike, so they are not compared.
                body = re.sub(rb'data-retry-after="\d+"', b'data-retry-after="N"', body)
                seen.append((status, body, headers.get("Retry-After") is not None))
            answers[name] = seen
        self.assertEqual([s for s, _, _ in answers[known]], [401] * 5 + [429])
        self.assertEqual(answers[known], answers[unknown])

    def test_five_failures_spread_over_more_than_fifteen_minutes_do_not_lock(self):
        name, password = self.add_user()
        for _ in range(4):
            self.assertEqual(self.post_login(name, "wrong")[0], 401)
        self.pg.psql("update login_failures set at = at - interval '16 minutes'"
                     f" where username = '{name.lower()}'")
        self.assertEqual(self.post_login(name, "wrong")[0], 401)
        self.login(name, password)

    # -- hostile forms

    def test_hostile_login_forms(self):
        name, password = self.add_user()
        cases = [
            (form(username="a';drop table users;--", password="x"), 401),
            (form(username="ünïcødé", password="x"), 401),
            (b"username=%FF%FE&password=x", 401),
            (form(username="a" * 300, password="x"), 401),
            (form(username=name), 400),
            (form(password="x"), 400),
            (form(username="", password="x"), 400),
            (b"username=a&username=b&password=x", 400),
            (b"%zz=1", 400),
            (b"", 400),
            (form(username=name, password="x" * 5000), 413),
        ]
        for body, expected in cases:
            status, headers, page = self.portal.request(
                "POST", "/login", headers={"Content-Type": "application/x-www-form-urlencoded"},
                body=body)
            self.assertEqual(status, expected, body[:80])
            self.assertTrue(headers["Content-Type"].startswith("text/html"), body[:80])
            self.assertIsNone(headers.get("Set-Cookie"))
        status, _, _ = self.portal.request(
            "POST", "/login", headers={"Content-Type": "application/json"},
            body=json.dumps({"username": name, "password": password}).encode())
        self.assertEqual(status, 415)
        self.assertEqual(self.pg.psql("select count(*) from users where username like 'a''%'").strip(), "0")
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)
        self.login(name, password)

    def test_login_from_a_foreign_origin_is_refused(self):
        name, password = self.add_user()
        own = f"http://127.0.0.1:{self.portal.port}"
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Origin": f"https://127.0.0.1:{self.portal.port}"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
            status, hdrs, _ = self.post_login(name, password, headers=headers)
            self.assertEqual(status, 403, headers)
            self.assertIsNone(hdrs.get("Set-Cookie"))
        for headers in ({"Origin": own}, {"Sec-Fetch-Site": "same-origin"}, {}):
            status, hdrs, _ = self.post_login(name, password, headers=headers)
            self.assertEqual(status, 303, headers)

    def test_login_attempts_per_address_are_limited(self):
        portal = self.start_portal(env={"PORTAL_LOGINS_PER_MINUTE": "3"})
        name, password = self.add_user()
        statuses = [self.post_login("nobody", "x", portal=portal)[0] for _ in range(3)]
        self.assertEqual(statuses, [401, 401, 401])
        # The 4th within the minute, even with the right password.
        status, headers, _ = self.post_login(name, password, portal=portal)
        self.assertEqual(status, 429)
        self.assertTrue(1 <= int(headers["Retry-After"]) <= 60, headers["Retry-After"])
        self.assertIsNone(headers.get("Set-Cookie"))
        # Another server's budget (and so this test's main one) is untouched.
        self.login(name, password)

    # -- static files

    def test_static_files(self):
        # Pages link static files by content-hashed names, cached for a year.
        _, _, page = self.portal.request("GET", "/login")
        css = re.search(rb'href="(/static/portal\.[0-9a-f]{12}\.css)"', page).group(1).decode()
        status, headers, body = self.portal.request("GET", css)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/css"))
        self.assertEqual(headers["Cache-Control"], "public, max-age=31536000, immutable")
        self.assert_security_headers(headers, "static file")
        etag = headers["ETag"]
        self.assertRegex(etag, r'^"[0-9a-f]{64}"$')
        self.assertEqual(etag[1:13], css.split(".")[1])
        status, headers, _ = self.portal.request("GET", css, headers={"If-None-Match": etag})
        self.assertEqual(status, 304)
        self.assert_security_headers(headers, "304 static file")
        # The plain name is not served: only the hashed one is cacheable.
        for path in ("/static/portal.css", "/static/portal.000000000000.css", "/static/nope.js",
                     "/static/..%2Flogin.html", "/static/%2e%2e"):
            status, headers, _ = self.portal.request("GET", path)
            self.assertEqual(status, 404, path)
            self.assert_security_headers(headers, path)


class SessionExpiryTest(PortalTestCase, SessionChecks):
    """A session unused for PORTAL_SESSION_IDLE_TIMEOUT ends; using it keeps it."""

    PORTAL_ENV = {"PORTAL_SESSION_IDLE_TIMEOUT": "2s"}

    def test_idle_session_expires(self):
        name, password = self.add_user()
        cookie = self.login(name, password)
        self.assertEqual(self.me(cookie)[0], 200)
        # Use moves the idle expiry forward.
        before = self.pg.psql("select idle_expires_at from sessions").strip()
        wait_until(lambda: self.pg.psql("select now() > timestamptz '%s' - interval '1 second'" % before).strip() == "t",
                   timeout=10, message="a second to pass")
        self.assertEqual(self.me(cookie)[0], 200)
        self.assertNotEqual(self.pg.psql("select idle_expires_at from sessions").strip(), before)
        # The idle expiry is 2 s after the last use, in the database's clock.
        # Asking the server would use the session and push the expiry on, so
        # the wait asks the database.
        wait_until(lambda: self.pg.psql("select count(*) from sessions s join users u"
                                        " on u.id = s.user_id where u.username = '%s'"
                                        " and s.idle_expires_at > now()" % name).strip() == "0",
                   timeout=20, message="the session's idle expiry")
        self.assertEqual(self.me(cookie)[0], 401)
        status, headers, _ = self.portal.request("GET", "/", headers=self.with_cookie(cookie))
        self.assertEqual((status, headers["Location"]), (303, "/login"))
        self.assertIn("Max-Age=0", headers["Set-Cookie"])


class ProductionCookieTest(PortalTestCase, SessionChecks):
    """In production the cookie is Secure and __Host- prefixed, and HSTS is sent."""

    PORTAL_ENV = {"PORTAL_ENV": "production", "SECRET_KEY_BASE": "k" * 64,
                  "PORTAL_DB_ALLOW_INSECURE": "1"}

    def test_secure_host_cookie(self):
        name, password = self.add_user()
        status, headers, body = self.post_login(name, password)
        self.assertEqual(status, 303, body[:300])
        cookie = self.session_cookie(headers, name="__Host-portal_session")
        set_cookie = headers["Set-Cookie"]
        self.assertIn("; Secure", set_cookie)
        self.assertIn("Path=/", set_cookie)
        self.assertNotIn("Domain", set_cookie)
        self.assertTrue(headers["Strict-Transport-Security"].startswith("max-age="))
        status, _, _ = self.portal.request(
            "GET", "/api/v1/me", headers=self.with_cookie(cookie, name="__Host-portal_session"))
        self.assertEqual(status, 200)
        # The development name means nothing here.
        status, _, _ = self.portal.request("GET", "/api/v1/me", headers=self.with_cookie(cookie))
        self.assertEqual(status, 401)

"""End-to-end tests of what the web pages need from the server, without a
browser (issue 13): the page routes and who gets which answer (SPEC §11),
the size limit in GET /api/v1/me, the admin overview of users and tokens
(no hash, no secret), the declared size of a live upload in /admin/actors,
and the sign-in page's time left when refused.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_web_api        (from tests/e2e)
"""

import datetime
import json
import socket
import unittest

import archives

from portal_harness import PortalTestCase, wait_until
from test_sessions import SessionChecks

PAGES = ("/", "/uploads", "/admin")


class WebApiTest(PortalTestCase, SessionChecks):
    PORTAL_ENV = {"PORTAL_LOGINS_PER_MINUTE": "1000", "PORTAL_MAX_UPLOAD_BYTES": "5000000",
                  "PORTAL_USER_QUOTA_BYTES": "7000000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p = cls.portal
        wait_until(lambda: p.request("GET", "/ready")[0] == 200, 30)
        cls.admin_token = p.create_user_and_token("webadmin", "admin")
        cls.uploader_token = p.create_user_and_token("webuser", "uploader")

    def page(self, path, cookie=None, token=None):
        headers = self.with_cookie(cookie) if cookie else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.portal.request("GET", path, headers=headers)

    def test_pages_by_role(self):
        uploader = self.login(*self.add_user("uploader"))
        admin = self.login(*self.add_user("admin"))
        for path in PAGES:
            with self.subTest(path=path, who="anonymous"):
                status, headers, _ = self.page(path)
                self.assertEqual((status, headers["Location"]), (303, "/login"))
            with self.subTest(path=path, who="admin"):
                status, headers, body = self.page(path, admin)
                self.assertEqual(status, 200)
                self.assertTrue(headers["Content-Type"].startswith("text/html"))
                self.assertEqual(headers["Cache-Control"], "no-store")
                self.assertIn(b'<body data-role="admin">', body)
                self.assertNotIn(b"{{", body)
            if path != "/admin":
                status, _, body = self.page(path, uploader)
                self.assertEqual(status, 200, path)
                self.assertIn(b'<body data-role="uploader">', body)
        # SPEC §11: an uploader on /admin gets a 403 page, not JSON.
        status, headers, body = self.page("/admin", uploader)
        self.assertEqual(status, 403)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(b"<h1>403 Forbidden</h1>", body)
        self.assertIn(b"This page is for administrators.", body)
        status, _, _ = self.page("/admin", token=self.uploader_token)
        self.assertEqual(status, 403)

    def test_home_page_no_longer_sends_browsers_to_curl(self):
        status, _, body = self.page("/", self.login(*self.add_user()))
        self.assertEqual(status, 200)
        self.assertNotIn(b"curl", body)
        self.assertIn(b'id="files"', body)
        self.assertRegex(body, rb'<script src="/static/tus\.min\.[0-9a-f]{12}\.js" defer></script>')

    def test_me_carries_the_size_limit_and_quota(self):
        status, _, me = self.portal.get_json("/api/v1/me", token=self.uploader_token)
        self.assertEqual(status, 200)
        self.assertEqual(me["max_upload_bytes"], 5000000)
        self.assertEqual(me["quota_bytes"], 7000000)
        self.assertEqual(me["used_bytes"], 0)

    def test_users_overview_is_for_admins_and_holds_no_secret(self):
        for token, want in ((None, 401), (self.uploader_token, 403)):
            status, _, doc = self.portal.get_json("/admin/users", token=token)
            self.assertEqual(status, want)
            self.assertIn("error", doc)
        status, _, doc = self.portal.get_json("/admin/users", token=self.admin_token)
        self.assertEqual(status, 200)
        users = {u["username"]: u for u in doc["users"]}
        self.assertEqual(set(users["webuser"]), {
            "username", "role", "disabled", "has_password", "created_at", "quota_bytes", "uploads",
            "stored_bytes", "active_tokens", "last_login"})
        self.assertEqual(users["webuser"]["role"], "uploader")
        self.assertFalse(users["webuser"]["has_password"])  # a token-only account
        self.assertEqual(users["webuser"]["quota_bytes"], 7000000)  # the server's default
        self.assertEqual(users["webuser"]["active_tokens"], 1)
        self.assertIsNone(users["webuser"]["last_login"])
        name, password = self.add_user()
        self.login(name, password)
        status, _, doc = self.portal.get_json("/admin/users", token=self.admin_token)
        signed_in = next(u for u in doc["users"] if u["username"] == name)
        self.assertTrue(signed_in["has_password"])
        self.assertRegex(signed_in["last_login"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        hashes = self.pg.psql("SELECT password_hash FROM users WHERE password_hash IS NOT NULL").split()
        self.assertTrue(hashes)
        raw = json.dumps(doc)
        for h in hashes:
            self.assertNotIn(h, raw)
        self.assertNotIn("argon2", raw)

    def test_only_a_proven_use_marks_a_token_used(self):
        token = self.portal.create_user_and_token("fresh", "uploader")
        token_id = token[4:20]
        last_used = f"SELECT coalesce(last_used_at::text, 'never') FROM api_tokens WHERE id = '{token_id}'"
        self.assertEqual(self.pg.psql(last_used), "never")
        forged = token[:21] + ("A" if token[21] != "A" else "B") + token[22:]
        self.assertEqual(self.portal.get_json("/api/v1/uploads", token=forged)[0], 401)
        self.assertEqual(self.pg.psql(last_used), "never")
        self.assertEqual(self.portal.get_json("/api/v1/uploads", token=token)[0], 200)
        # written on the side, after the answer
        first = wait_until(lambda: self.pg.psql(last_used) != "never" and self.pg.psql(last_used),
                           30, message="last_used_at written")
        # within the minute, a use writes nothing
        self.assertEqual(self.portal.get_json("/api/v1/uploads", token=token)[0], 200)
        self.assertEqual(self.pg.psql(last_used), first)

    def test_tokens_overview_is_for_admins_and_holds_no_secret(self):
        for token, want in ((None, 401), (self.uploader_token, 403)):
            self.assertEqual(self.portal.get_json("/admin/tokens", token=token)[0], want)
        status, _, doc = self.portal.get_json("/admin/tokens", token=self.admin_token)
        self.assertEqual(status, 200)
        mine = [t for t in doc["tokens"] if t["user"] == "webuser"]
        self.assertEqual(len(mine), 1)
        self.assertEqual(set(mine[0]), {"id", "user", "name", "created_at", "expires_at", "last_used_at", "state"})
        self.assertEqual(mine[0]["state"], "active")
        # Used (by the 403 above): when, to the minute, written on the side.
        def listed():
            _, _, d = self.portal.get_json("/admin/tokens", token=self.admin_token)
            return [t for t in d["tokens"] if t["user"] == "webuser"][0]["last_used_at"]
        stamp = wait_until(listed, 30, message="the uploader token's last_used_at")
        used = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        age = datetime.datetime.now(datetime.timezone.utc) - used
        self.assertLess(abs(age.total_seconds()), 600, mine[0])
        # "upt_<id>_<secret>": the public id is listed, the secret never.
        self.assertEqual(mine[0]["id"], self.uploader_token[4:20])
        raw = json.dumps(doc)
        for token in (self.uploader_token, self.admin_token):
            self.assertNotIn(token[21:], raw)
        for h in self.pg.psql("SELECT secret_hash FROM api_tokens").split():
            self.assertNotIn(h, raw)
        # Newest first.
        created = [t["created_at"] for t in doc["tokens"]]
        self.assertEqual(created, sorted(created, reverse=True))

    def test_live_upload_shows_its_declared_size(self):
        # The start of a real archive: the validator must have no reason to
        # end the upload early.
        start = archives.gzip_bytes(archives.random_tar(2 << 20), level=0)[:1024]
        declared = 4_000_000
        with socket.create_connection(self.portal.address, timeout=30) as sock:
            sock.sendall((f"PUT /api/v1/uploads/live.tar.gz HTTP/1.1\r\nHost: t\r\n"
                          f"Authorization: Bearer {self.uploader_token}\r\n"
                          f"Content-Length: {declared}\r\n\r\n").encode() + start)

            def live():
                _, _, doc = self.portal.get_json("/admin/actors", token=self.admin_token)
                found = [u for u in doc["uploads"] if u["filename"] == "live.tar.gz"]
                return found[0] if found and found[0]["bytes_received"] > 0 else None

            upload = wait_until(live, 10, message="the upload in /admin/actors")
            self.assertEqual(upload["bytes_expected"], declared)
        with socket.create_connection(self.portal.address, timeout=30) as sock:
            sock.sendall((f"PUT /api/v1/uploads/chunked.tar.gz HTTP/1.1\r\nHost: t\r\n"
                          f"Authorization: Bearer {self.uploader_token}\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n").encode() + b"400\r\n" + start + b"\r\n")

            def chunked():
                _, _, doc = self.portal.get_json("/admin/actors", token=self.admin_token)
                found = [u for u in doc["uploads"] if u["filename"] == "chunked.tar.gz"]
                return found[0] if found and found[0]["bytes_received"] > 0 else None

            upload = wait_until(chunked, 10, message="the chunked upload in /admin/actors")
            self.assertIsNone(upload["bytes_expected"])

    def test_lockout_page_says_how_long(self):
        name, password = self.add_user()
        for _ in range(5):
            self.assertEqual(self.post_login(name, "wrong")[0], 401)
        status, headers, body = self.post_login(name, password)
        self.assertEqual(status, 429)
        wait = int(headers["Retry-After"])
        self.assertTrue(840 < wait <= 900, wait)
        self.assertIn(b"Too many failed sign-ins for this name. It is locked for 15 minutes.", body)
        self.assertIn(f'data-retry-after="{wait}"'.encode(), body)
        status, _, body = self.portal.request("GET", "/login")
        self.assertIn(b'data-retry-after=""', body)


class LoginRateLimitPageTest(PortalTestCase, SessionChecks):
    PORTAL_ENV = {"PORTAL_LOGINS_PER_MINUTE": "2"}

    def test_rate_limit_page_says_how_long(self):
        for _ in range(2):
            self.assertEqual(self.post_login("nobody", "x")[0], 401)
        status, headers, body = self.post_login("nobody", "x")
        self.assertEqual(status, 429)
        wait = int(headers["Retry-After"])
        self.assertTrue(1 <= wait <= 60, wait)
        unit = "second" if wait == 1 else "seconds"
        self.assertIn(f"Too many failed sign-ins from this address. Wait {wait} {unit}.".encode(), body)
        self.assertIn(f'data-retry-after="{wait}"'.encode(), body)


if __name__ == "__main__":
    unittest.main()

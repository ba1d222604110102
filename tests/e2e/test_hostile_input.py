"""Fuzz-ish end-to-end tests (issue 4, "input hygiene"): malformed
Authorization headers, huge cookies and heads, SQL metacharacters, NUL-free
control bytes, invalid UTF-8 and unicode in every text input the API takes
today: each answered with a clear 4xx in the JSON shape, never a 5xx, and
the server keeps serving.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_hostile_input        (from tests/e2e)
"""

import base64
import json
import unittest
import urllib.parse

import archives as A
from portal_harness import PortalTestCase
from test_uploads import NO_RATE_LIMITS, UploadChecks, wait_ready

SQLISH = ["' OR '1'='1", "'; DROP TABLE uploads; --", "\" OR \"\"=\"", "1; SELECT pg_sleep(5)",
          "%00", "\\x00", "$1", "${jndi:ldap://x}"]
UNICODE = ["é", "ünïcødé.tar.gz", "日本語.tar.gz", "😀.tar.gz", "\u202e.tar.gz", "a\u0301.tgz"]


class HostileInputTest(PortalTestCase, UploadChecks):
    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("fuzzed", "uploader")
        cls.admin = cls.portal.create_user_and_token("fuzz-admin", "admin")
        wait_ready(cls.portal)

    def assert_4xx(self, status, headers, body, context, code=None):
        self.assertTrue(400 <= status < 500, f"{context}: {status} {body[:200]!r}")
        doc = json.loads(body)
        self.assertEqual(set(doc), {"error"}, context)
        if code:
            self.assertEqual(doc["error"]["code"], code, context)
        return doc["error"]["message"]

    def still_serving(self):
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)

    def test_malformed_authorization(self):
        values = ["", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc",
                  "Bearer " + "A" * 8000, "Bearer \t", self.token, "Bearer" + self.token,
                  "Bearer " + self.token + "x", "Bearer " + self.token[:-1],
                  "Bearer " + self.token + " extra"]
        values += ["Bearer " + s for s in SQLISH + UNICODE]
        for value in values:
            with self.subTest(value=value[:40]):
                raw = value.encode("utf-8")
                status, headers, body = self.portal.request(
                    "GET", "/api/v1/me", {"Authorization": raw})
                message = self.assert_4xx(status, headers, body, repr(value[:40]), "unauthorized")
                self.assertEqual(status, 401)
                self.assertEqual(headers.get("WWW-Authenticate"), "Bearer")
                self.assertNotIn(self.token, message)
        # invalid UTF-8 and latin-1 bytes in the token
        for raw in [b"Bearer \xff\xfe\xfd", b"Bearer abc\xc3(", b"Bearer \xe9t\xe9"]:
            status, headers, body = self.portal.request("GET", "/api/v1/me", {"Authorization": raw})
            self.assert_4xx(status, headers, body, repr(raw), "unauthorized")
        self.still_serving()

    def test_two_authorization_headers(self):
        with self.portal.connect() as sock:
            sock.sendall(("GET /api/v1/me HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {self.token}\r\n"
                          "Authorization: Bearer nonsense\r\nConnection: close\r\n\r\n").encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
        self.assertIn(status, (200, 400, 401), data[:200])
        self.still_serving()

    def test_huge_cookie_and_head(self):
        status, headers, body = self.portal.request(
            "GET", "/api/v1/me", {"Cookie": "session=" + "x" * 15000, **self.auth(self.token)})
        self.assertEqual(status, 200, body[:200])  # under the 16 KiB head: ignored
        status, headers, body = self.portal.request(
            "GET", "/api/v1/me", {"Cookie": "session=" + "x" * 17000, **self.auth(self.token)})
        self.assert_4xx(status, headers, body, "17 KB cookie", "request_header_fields_too_large")
        self.assertEqual(status, 431)
        self.still_serving()

    def test_hostile_filenames(self):
        archive = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=101)))
        before = self.snapshot()
        for name in SQLISH + UNICODE + ["..", ".tar.gz", "a/b.tar.gz", "a\\b.tar.gz",
                                         "x" * 300 + ".tar.gz", "a\tb.tar.gz", "a\x7fb.tgz"]:
            with self.subTest(name=name[:40]):
                path = "/api/v1/uploads/" + urllib.parse.quote(name, safe="")
                status, headers, body = self.portal.request("PUT", path, self.auth(self.token),
                                                            archive)
                self.assert_4xx(status, headers, body, repr(name[:40]))
                self.assertIn(status, (400, 404), body[:200])
        self.assert_nothing_left(before, context="hostile filenames")
        self.still_serving()

    def test_hostile_ids_and_query_parameters(self):
        for value in SQLISH + UNICODE + ["x" * 5000]:
            quoted = urllib.parse.quote(value, safe="")
            with self.subTest(value=value[:40]):
                for path in [f"/api/v1/uploads/{quoted}", f"/api/v1/uploads/{quoted}/content",
                             f"/api/v1/uploads/{quoted}/entries"]:
                    status, headers, body = self.portal.request("GET", path, self.auth(self.token))
                    self.assert_4xx(status, headers, body, path[:60], "not_found")
                status, headers, body = self.portal.request(
                    "DELETE", f"/api/v1/uploads/{quoted}", self.auth(self.token))
                self.assert_4xx(status, headers, body, "delete", "not_found")
                status, headers, body = self.portal.request(
                    "GET", f"/api/v1/uploads?cursor={quoted}", self.auth(self.token))
                self.assert_4xx(status, headers, body, "cursor", "invalid_cursor")
                status, headers, body = self.portal.request(
                    "GET", f"/api/v1/uploads?limit={quoted}", self.auth(self.token))
                self.assert_4xx(status, headers, body, "limit", "invalid_limit")
                status, headers, body = self.portal.request(
                    "GET", f"/admin/audit?limit={quoted}", self.auth(self.admin))
                self.assert_4xx(status, headers, body, "audit limit", "invalid_limit")
                status, headers, body = self.portal.request(
                    "POST", f"/admin/actors/{quoted}/kill", self.auth(self.admin), b"")
                self.assert_4xx(status, headers, body, "kill id", "not_found")
        # invalid percent-encoded UTF-8 in a path parameter
        for raw in ["%ff%fe", "%c3%28", "%e2%82", "%00"]:
            status, headers, body = self.portal.request("GET", f"/api/v1/uploads/{raw}",
                                                        self.auth(self.token))
            self.assert_4xx(status, headers, body, raw, "not_found")
            status, headers, body = self.portal.request(
                "GET", f"/api/v1/uploads?cursor={raw}", self.auth(self.token))
            self.assert_4xx(status, headers, body, "cursor " + raw, "invalid_cursor")
        # well-formed cursors (base64url of "micros|id") whose id is not one
        for forged_id in [b"\xff\xfe", b"' OR 1=1 --", "日本".encode(), b"a\x01b"]:
            cursor = base64.urlsafe_b64encode(b"1700000000000000|" + forged_id).rstrip(b"=")
            status, headers, body = self.portal.request(
                "GET", "/api/v1/uploads?cursor=" + cursor.decode(), self.auth(self.token))
            self.assert_4xx(status, headers, body, f"cursor id {forged_id!r}", "invalid_cursor")
        self.still_serving()


if __name__ == "__main__":
    unittest.main()

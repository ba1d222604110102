"""Fuzz-ish end-to-end tests (issue 4, "input hygiene"): malformed
Authorization headers, huge cookies and heads, SQL metacharacters, NUL-free
control bytes, invalid UTF-8 and unicode in every text input the API takes
today: each answered with its exact 4xx status and error code in the JSON
shape, never a 5xx, and the server keeps serving.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_hostile_input        (from tests/e2e)
"""

import base64
import json
import unittest
import urllib.parse

import archives as A
from portal_harness import PortalTestCase, parse_http_response
from upload_checks import NO_RATE_LIMITS, UploadChecks

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

    def assert_4xx(self, status, headers, body, context, want_status, code):
        """The exact status and error code, in the SPEC's JSON shape; returns the message."""
        self.assertEqual(status, want_status, f"{context}: {body[:200]!r}")
        doc = json.loads(body)
        self.assertEqual(set(doc), {"error"}, context)
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
                message = self.assert_4xx(status, headers, body, repr(value[:40]), 401,
                                          "unauthorized")
                self.assertEqual(headers.get("WWW-Authenticate"), "Bearer")
                self.assertNotIn(self.token, message)
        # invalid UTF-8 and latin-1 bytes in the token
        for raw in [b"Bearer \xff\xfe\xfd", b"Bearer abc\xc3(", b"Bearer \xe9t\xe9"]:
            status, headers, body = self.portal.request("GET", "/api/v1/me", {"Authorization": raw})
            self.assert_4xx(status, headers, body, repr(raw), 401, "unauthorized")
            self.assertEqual(headers.get("WWW-Authenticate"), "Bearer")
        self.still_serving()

    def test_two_authorization_headers(self):
        # SPEC §4 is silent; the server reads the first Authorization line
        # and ignores the rest, as Go's net/http (and so tusd) does. Pinned
        # both ways round, so a change of rule is a deliberate one.
        def me(first, second):
            data = self.portal.raw(("GET /api/v1/me HTTP/1.1\r\nHost: x\r\n"
                                    f"Authorization: {first}\r\nAuthorization: {second}\r\n"
                                    "Connection: close\r\n\r\n").encode())
            return parse_http_response(data)

        status, headers, body = me(f"Bearer {self.token}", "Bearer nonsense")
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(json.loads(body)["username"], "fuzzed")
        status, headers, body = me("Bearer nonsense", f"Bearer {self.token}")
        self.assert_4xx(status, headers, body, "a bad token first", 401, "unauthorized")
        status, headers, body = me(f"Bearer {self.token}", f"Bearer {self.admin}")
        self.assertEqual(json.loads(body)["username"], "fuzzed", "the second token is not used")
        self.still_serving()

    def test_huge_cookie_and_head(self):
        status, headers, body = self.portal.request(
            "GET", "/api/v1/me", {"Cookie": "session=" + "x" * 15000, **self.auth(self.token)})
        self.assertEqual(status, 200, body[:200])  # under the 16 KiB head: ignored
        status, headers, body = self.portal.request(
            "GET", "/api/v1/me", {"Cookie": "session=" + "x" * 17000, **self.auth(self.token)})
        self.assert_4xx(status, headers, body, "17 KB cookie", 431, "request_header_fields_too_large")
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
                # every one reaches the upload route and fails its name rule
                # (SPEC §5.3), even "..", "a/b" and 300 characters
                self.assert_4xx(status, headers, body, repr(name[:40]), 400, "invalid_filename")
        self.assert_nothing_left(before, context="hostile filenames")
        self.still_serving()

    def test_hostile_ids_and_query_parameters(self):
        for value in SQLISH + UNICODE + ["x" * 5000]:
            quoted = urllib.parse.quote(value, safe="")
            with self.subTest(value=value[:40]):
                for path in [f"/api/v1/uploads/{quoted}", f"/api/v1/uploads/{quoted}/content",
                             f"/api/v1/uploads/{quoted}/entries"]:
                    status, headers, body = self.portal.request("GET", path, self.auth(self.token))
                    self.assert_4xx(status, headers, body, path[:60], 404, "not_found")
                status, headers, body = self.portal.request(
                    "DELETE", f"/api/v1/uploads/{quoted}", self.auth(self.token))
                self.assert_4xx(status, headers, body, "delete", 404, "not_found")
                status, headers, body = self.portal.request(
                    "GET", f"/api/v1/uploads?cursor={quoted}", self.auth(self.token))
                self.assert_4xx(status, headers, body, "cursor", 400, "invalid_cursor")
                status, headers, body = self.portal.request(
                    "GET", f"/api/v1/uploads?limit={quoted}", self.auth(self.token))
                self.assert_4xx(status, headers, body, "limit", 400, "invalid_limit")
                status, headers, body = self.portal.request(
                    "GET", f"/admin/audit?limit={quoted}", self.auth(self.admin))
                self.assert_4xx(status, headers, body, "audit limit", 400, "invalid_limit")
                status, headers, body = self.portal.request(
                    "POST", f"/admin/actors/{quoted}/kill", self.auth(self.admin), b"")
                self.assert_4xx(status, headers, body, "kill id", 404, "not_found")
        # invalid percent-encoded UTF-8 in a path parameter
        for raw in ["%ff%fe", "%c3%28", "%e2%82", "%00"]:
            status, headers, body = self.portal.request("GET", f"/api/v1/uploads/{raw}",
                                                        self.auth(self.token))
            self.assert_4xx(status, headers, body, raw, 404, "not_found")
            status, headers, body = self.portal.request(
                "GET", f"/api/v1/uploads?cursor={raw}", self.auth(self.token))
            self.assert_4xx(status, headers, body, "cursor " + raw, 400, "invalid_cursor")
        # well-formed cursors (base64url of "micros|id") whose id is not one
        for forged_id in [b"\xff\xfe", b"' OR 1=1 --", "日本".encode(), b"a\x01b"]:
            cursor = base64.urlsafe_b64encode(b"1700000000000000|" + forged_id).rstrip(b"=")
            status, headers, body = self.portal.request(
                "GET", "/api/v1/uploads?cursor=" + cursor.decode(), self.auth(self.token))
            self.assert_4xx(status, headers, body, f"cursor id {forged_id!r}", 400,
                            "invalid_cursor")
        self.still_serving()


if __name__ == "__main__":
    unittest.main()

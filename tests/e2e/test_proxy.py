"""End-to-end tests of SPEC §8 behind a proxy: with PORTAL_TRUST_PROXY in
production, `X-Forwarded-Proto: http` is redirected to https (301) except
/health, and the client address comes from Fly-Client-IP / X-Forwarded-For
(access log, audit rows); without PORTAL_TRUST_PROXY those headers are
ignored. Production also sends HSTS.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_proxy        (from tests/e2e)
"""

import json
import unittest

import archives as A
from portal_harness import PortalTestCase, wait_until
from test_uploads import NO_RATE_LIMITS, UploadChecks

PRODUCTION = dict(NO_RATE_LIMITS, PORTAL_ENV="production", SECRET_KEY_BASE="k" * 64,
                  PORTAL_DB_ALLOW_INSECURE="1")


def access_line(portal, request_id):
    for e in portal.logs:
        if e.get("msg") == "request" and e.get("request_id") == request_id:
            return e
    return None


class TrustedProxyTest(PortalTestCase, UploadChecks):
    PORTAL_ENV = dict(PRODUCTION, PORTAL_TRUST_PROXY="1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("behind", "uploader")

    def test_plain_http_is_redirected_except_health(self):
        headers = {"X-Forwarded-Proto": "http", "Host": "portal.example.com"}
        status, answer, _ = self.portal.request("GET", "/api/v1/me?x=1", headers)
        self.assertEqual(status, 301)
        self.assertEqual(answer["Location"], "https://portal.example.com/api/v1/me?x=1")
        self.assertIn("max-age=", answer["Strict-Transport-Security"])
        self.assertEqual(answer["X-Frame-Options"], "DENY")
        status, _, _ = self.portal.request("GET", "/health", headers)
        self.assertEqual(status, 200)
        # an upload over plain http is redirected before its body is read
        status, answer, _ = self.portal.request(
            "PUT", "/api/v1/uploads/x.tar.gz", dict(headers, **self.auth(self.token)), b"\x1f\x8b")
        self.assertEqual(status, 301)
        status, answer, _ = self.portal.request(
            "GET", "/api/v1/me", dict(self.auth(self.token), **{"X-Forwarded-Proto": "https"}))
        self.assertEqual(status, 200)
        self.assertIn("max-age=", answer["Strict-Transport-Security"])

    def test_client_address_from_the_proxy(self):
        status, answer, _ = self.portal.request(
            "GET", "/api/v1/me", dict(self.auth(self.token), **{"Fly-Client-IP": "203.0.113.7",
                                                                 "X-Forwarded-Proto": "https"}))
        self.assertEqual(status, 200)
        line = wait_until(lambda: access_line(self.portal, answer["X-Request-Id"]), 10)
        self.assertEqual(line["ip"], "203.0.113.7")

        archive = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=81)))
        status, answer, body = self.put(self.token, "proxied.tar.gz", archive, headers={
            "X-Forwarded-For": "1.2.3.4, 198.51.100.9", "X-Forwarded-Proto": "https"})
        self.assertEqual(status, 201, body)
        upload_id = json.loads(body)["id"]
        ip = self.pg.psql("select ip from audit_events where event = 'upload.complete'"
                          f" and detail->>'upload_id' = '{upload_id}'")
        self.assertEqual(ip, "198.51.100.9")

        # a header that is not an address is not an address
        status, answer, _ = self.portal.request(
            "GET", "/api/v1/me", dict(self.auth(self.token), **{"Fly-Client-IP": "evil\"x",
                                                                 "X-Forwarded-Proto": "https"}))
        self.assertEqual(status, 200)
        line = wait_until(lambda: access_line(self.portal, answer["X-Request-Id"]), 10)
        self.assertEqual(line["ip"], "127.0.0.1")


class UntrustedProxyTest(PortalTestCase):
    """Production without PORTAL_TRUST_PROXY: the headers are the client's
    own words and change nothing."""
    PORTAL_ENV = dict(PRODUCTION)

    def test_proxy_headers_are_ignored(self):
        status, answer, _ = self.portal.request("GET", "/ready", {
            "X-Forwarded-Proto": "http", "Host": "portal.example.com",
            "Fly-Client-IP": "203.0.113.7", "X-Forwarded-For": "198.51.100.9"})
        self.assertEqual(status, 200)  # served, not redirected
        line = wait_until(lambda: access_line(self.portal, answer["X-Request-Id"]), 10)
        self.assertEqual(line["ip"], "127.0.0.1")


if __name__ == "__main__":
    unittest.main()

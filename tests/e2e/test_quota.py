"""End-to-end tests of the per-user storage quota (issue 4):
PORTAL_USER_QUOTA_BYTES as the default, `user quota NAME BYTES|default` per
user; 413 quota_exceeded before the body (Content-Length) and while
streaming (chunked), nothing left behind; /api/v1/me shows quota and usage.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_quota        (from tests/e2e)
"""

import contextlib
import json
import unittest

import archives as A
from portal_harness import PortalTestCase, wait_until
from test_uploads import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response

MiB = 1024 * 1024
QUOTA = 3 * MiB


class QuotaTest(PortalTestCase, UploadChecks):
    PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_USER_QUOTA_BYTES=str(QUOTA))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.one = A.gzip_bytes(A.random_tar(1 * MiB, seed=91), level=0)  # ~1 MiB stored

    def user(self, name):
        return self.portal.create_user_and_token(name, "uploader")

    def me(self, token):
        status, _, body = self.portal.request("GET", "/api/v1/me", self.auth(token))
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_quota_before_the_body(self):
        token = self.user("q-before")
        self.assertEqual(self.me(token)["quota_bytes"], QUOTA)
        self.assertEqual(self.me(token)["used_bytes"], 0)
        self.upload_ok(token, "a.tar.gz", self.one, "q-before")
        self.upload_ok(token, "b.tar.gz", self.one, "q-before")
        used = self.me(token)["used_bytes"]
        self.assertEqual(used, 2 * len(self.one))
        before = self.snapshot()
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(token, "c.tar.gz", QUOTA - used + 1,
                                         extra={"Expect": "100-continue"}))
            status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
        self.assert_error(status, headers, body, 413, "quota_exceeded", "Content-Length")
        self.assert_nothing_left(before, context="quota before the body")
        # what still fits, fits
        small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=92)))
        self.upload_ok(token, "small.tar.gz", small, "q-before")

    def test_quota_while_streaming(self):
        token = self.user("q-chunked")
        self.upload_ok(token, "a.tar.gz", self.one, "q-chunked")
        self.upload_ok(token, "b.tar.gz", self.one, "q-chunked")
        before = self.snapshot()
        pieces = [self.one[i:i + 256 * 1024] for i in range(0, len(self.one), 256 * 1024)]
        status, headers, body = self.put_chunked(token, "c.tar.gz", pieces)
        self.assert_error(status, headers, body, 413, "quota_exceeded", "chunked")
        self.assert_nothing_left(before, context="quota while streaming")
        self.assertEqual(self.me(token)["used_bytes"], 2 * len(self.one))

    def test_concurrent_uploads_cannot_both_slip_under(self):
        """Each of two uploads fits alone; together they do not. Both start
        while the quota has room; when they finish, only one is recorded."""
        token = self.user("q-race")
        self.upload_ok(token, "base.tar.gz", self.one, "q-race")
        before = self.snapshot()
        half = len(self.one) // 2
        with contextlib.ExitStack() as stack:
            socks = []
            for name in ("x.tar.gz", "y.tar.gz"):
                sock = stack.enter_context(self.portal.connect(timeout=REQUEST_TIMEOUT))
                # chunked: no length to refuse up front
                sock.sendall(self.head_bytes(token, name, chunked=True))
                sock.sendall(b"%x\r\n" % half + self.one[:half] + b"\r\n")
                socks.append(sock)
            for sock in socks:
                rest = self.one[half:]
                sock.sendall(b"%x\r\n" % len(rest) + rest + b"\r\n0\r\n\r\n")
            answers = [read_response(sock, REQUEST_TIMEOUT)[:3] for sock in socks]
        statuses = sorted(a[0] for a in answers)
        self.assertEqual(statuses, [201, 413], [a[2][:200] for a in answers])
        refused = [a for a in answers if a[0] == 413][0]
        self.assert_error(*refused, 413, "quota_exceeded", "the second of two")
        self.assertEqual(self.row_count(), before["rows"] + 1)
        self.assertLessEqual(self.me(token)["used_bytes"], QUOTA)
        # the refused one's file was already in place: it is removed
        wait_until(lambda: len(self.dir_files("archives")) == len(before["archives"]) + 1, 20,
                   message="only the recorded upload's file in archives/")
        self.assertEqual(self.dir_files("tmp"), [])

    def test_per_user_quota(self):
        token = self.user("q-own")
        self.portal.run_ok("user", "quota", "q-own", "0")  # none
        self.assertIsNone(self.me(token)["quota_bytes"])
        for i in range(4):
            self.upload_ok(token, f"free-{i}.tar.gz", self.one, "q-own")
        self.portal.run_ok("user", "quota", "q-own", str(MiB))
        self.assertEqual(self.me(token)["quota_bytes"], MiB)
        status, headers, body = self.put(token, "over.tar.gz", self.one)
        self.assert_error(status, headers, body, 413, "quota_exceeded", "own quota")
        self.portal.run_ok("user", "quota", "q-own", "default")
        self.assertEqual(self.me(token)["quota_bytes"], QUOTA)
        audit = self.pg.psql("select count(*) from audit_events where event = 'user.quota'")
        self.assertGreaterEqual(int(audit), 3)
        bad = self.portal.run_cli("user", "quota", "q-own", "lots")
        self.assertEqual(bad.returncode, 2, bad.stderr)
        unknown = self.portal.run_cli("user", "quota", "nobody-here", "5")
        self.assertEqual(unknown.returncode, 1, unknown.stderr)


if __name__ == "__main__":
    unittest.main()

"""End-to-end tests of SPEC §5.3's "per-user upload rate limit or concurrency
limit": 429 with Retry-After and the JSON error, before any body byte is
read, leaving nothing behind; and the slot freed the moment an upload is
answered.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_upload_limits        (from tests/e2e)
"""

import contextlib
import unittest

import archives as A
from portal_harness import PortalTestCase, wait_until
from test_uploads import REQUEST_TIMEOUT, UploadChecks, read_response

MiB = 1024 * 1024


class ConcurrencyLimitTest(PortalTestCase, UploadChecks):
    """The default 8 concurrent uploads per user, and 10 in all."""

    PORTAL_ENV = {"PORTAL_UPLOADS_TOTAL": "10", "PORTAL_UPLOAD_STARTS_PER_MINUTE": "100000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = cls.portal.create_user_and_token("alice", "uploader")
        cls.bob = cls.portal.create_user_and_token("bob", "uploader")
        cls.archive = A.gzip_bytes(A.random_tar(1 * MiB, seed=41), level=0)
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=42)))

    def hold(self, stack, token, name):
        """An upload that has started (head and a first piece of body sent)
        and waits for the rest: it holds one slot until answered or closed."""
        sock = stack.enter_context(self.portal.connect(timeout=REQUEST_TIMEOUT))
        sock.sendall(self.head_bytes(token, name, len(self.archive)))
        sock.sendall(self.archive[:64 * 1024])
        return sock

    def held(self, count):
        wait_until(lambda: len(self.dir_files("tmp")) == count, 30,
                   message=f"{count} partial files in tmp/, found {self.dir_files('tmp')}")

    def assert_429(self, token, name, context):
        rows, archives = self.row_count(), self.dir_files("archives")
        tmp = self.dir_files("tmp")
        status, headers, body = self.put(token, name, self.small)
        message = self.assert_error(status, headers, body, 429, "too_many_uploads", context)
        retry_after = headers.get("Retry-After", "")
        self.assertTrue(retry_after.isdigit() and int(retry_after) >= 1,
                        f"{context}: Retry-After {retry_after!r}")
        self.assertNotIn(self.alice, message)
        # nothing was stored or recorded for the refused upload
        self.assertEqual(self.dir_files("tmp"), tmp, context)
        self.assertEqual(self.dir_files("archives"), archives, context)
        self.assertEqual(self.row_count(), rows, context)

    def test_ninth_concurrent_upload_of_a_user(self):
        before = self.snapshot()
        with contextlib.ExitStack() as stack:
            socks = [self.hold(stack, self.alice, f"held-{i}.tar.gz") for i in range(8)]
            self.held(8)
            self.assert_429(self.alice, "ninth.tar.gz", "9th concurrent upload")
            # someone else still may
            self.upload_ok(self.bob, "bob-meanwhile.tar.gz", self.small, "bob")

            # One held upload finishes: its slot is free by the time its 201
            # arrives, so the next upload needs no retry.
            socks[0].sendall(self.archive[64 * 1024:])
            status, _, body, _ = read_response(socks[0], REQUEST_TIMEOUT)
            self.assertEqual(status, 201, body)
            self.upload_ok(self.alice, "after-one-ended.tar.gz", self.small, "alice")
            self.held(7)
        # the 7 others vanish mid-body: their slots and partial files go
        self.assert_nothing_left(dict(before, archives=self.dir_files("archives"),
                                      rows=self.row_count()), context="held uploads closed")
        wait_until(lambda: self.put(self.alice, "slots-back.tar.gz", self.small)[0] == 201, 30,
                   message="alice's slots to be released after her clients vanished")

    def test_total_limit_across_users(self):
        with contextlib.ExitStack() as stack:
            for i in range(8):
                self.hold(stack, self.alice, f"a-{i}.tar.gz")
            for i in range(2):
                self.hold(stack, self.bob, f"b-{i}.tar.gz")
            self.held(10)
            # bob runs only 2, but the server runs its 10
            self.assert_429(self.bob, "b-third.tar.gz", "11th upload on the server")
        self.assert_nothing_left({"tmp": [], "archives": self.dir_files("archives")},
                                 rows=False, context="held uploads closed")

    def test_refused_before_the_body_is_read(self):
        """The 429 is the answer to the head: sent before the body, so a
        client using Expect: 100-continue never sends it."""
        with contextlib.ExitStack() as stack:
            for i in range(8):
                self.hold(stack, self.alice, f"e-{i}.tar.gz")
            self.held(8)
            with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
                sock.sendall(self.head_bytes(self.alice, "expecting.tar.gz", 10 * MiB,
                                             extra={"Expect": "100-continue"}))
                status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
            self.assert_error(status, headers, body, 429, "too_many_uploads", "Expect: 100-continue")
        wait_until(lambda: not self.dir_files("tmp"), 30, message="tmp/ to be empty")


class StartRateTest(PortalTestCase, UploadChecks):
    """PORTAL_UPLOAD_STARTS_PER_MINUTE=3: a token bucket of 3 starts per user."""

    PORTAL_ENV = {"PORTAL_UPLOAD_STARTS_PER_MINUTE": "3"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.carol = cls.portal.create_user_and_token("carol", "uploader")
        cls.dave = cls.portal.create_user_and_token("dave", "uploader")
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=43)))

    def test_fourth_start_within_a_minute(self):
        for i in range(3):
            self.upload_ok(self.carol, f"c-{i}.tar.gz", self.small, "carol")
        before = self.snapshot()
        status, headers, body = self.put(self.carol, "c-3.tar.gz", self.small)
        self.assert_error(status, headers, body, 429, "too_many_uploads", "4th start in a minute")
        # one token comes back every 20 s: the answer says how long to wait
        retry_after = int(headers["Retry-After"])
        self.assertTrue(1 <= retry_after <= 20, retry_after)
        self.assert_nothing_left(before, context="rate-limited upload")
        # refused starts do not count against another user
        self.upload_ok(self.dave, "d-0.tar.gz", self.small, "dave")


if __name__ == "__main__":
    unittest.main()

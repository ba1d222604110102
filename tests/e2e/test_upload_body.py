"""End-to-end tests of an upload's body on the wire (SPEC §5.3, §11): the size
limit (Content-Length, chunked, uncompressed bombs), silence mid-body (408),
clients that vanish or break the chunked framing. Each refusal is checked for
its exact status and error code AND for leaving nothing behind.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_upload_body        (from tests/e2e)
"""

import socket
import threading
import time
import unittest

import archives as A
from portal_harness import PortalTestCase, wait_until
from upload_checks import (NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response,
                           read_to_eof, send_quietly)

MiB = 1024 * 1024


class VanishingClientTest(PortalTestCase, UploadChecks):
    """The default limits: a Content-Length over 1 GiB, and clients that go
    away mid-body or send a broken chunked body."""

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("uploader", "uploader")
        cls.gz = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=11)))

    # -- Content-Length above the limit: 413 before any body byte (SPEC §5.3, §11)

    def test_content_length_over_limit(self):
        for expect in (False, True):
            with self.subTest(expect=expect):
                self.check_413_before_body(self.token, 1024 ** 3 + 1, expect)  # the default limit + 1
                self.check_413_before_body(self.token, 10 * 1024 ** 4, expect)  # 10 TiB

    # -- the client goes away mid-body (SPEC §5.3)

    def test_client_disconnects_mid_body(self):
        before = self.snapshot()
        archive = A.gzip_bytes(A.random_tar(3 * MiB, seed=21), level=0)
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "vanishing.tar.gz", len(archive)))
            sock.sendall(archive[: 1 * MiB])
            wait_until(lambda: self.dir_files("tmp"), 30, message="a partial file in tmp/")
        # closed without the rest
        self.assert_nothing_left(before, context="client disconnected")
        # logged as the client closing (499), never as a malformed request
        line = wait_until(lambda: [e for e in self.portal.logs if e.get("msg") == "request"
                                   and e.get("path") == "/api/v1/uploads/vanishing.tar.gz"], 10,
                          message="the access-log line of the cut upload")
        self.assertEqual([e["status"] for e in line], [499])
        status, _, _ = self.portal.request("GET", "/health")
        self.assertEqual(status, 200)
        self.upload_ok(self.token, "after-disconnect.tar.gz", archive, "uploader")

    def test_client_resets_mid_body(self):
        before = self.snapshot()
        archive = A.gzip_bytes(A.random_tar(3 * MiB, seed=22), level=0)
        sock = self.portal.connect(timeout=REQUEST_TIMEOUT)
        try:
            sock.sendall(self.head_bytes(self.token, "reset.tar.gz", len(archive)))
            sock.sendall(archive[: 1 * MiB])
            wait_until(lambda: self.dir_files("tmp"), 30, message="a partial file in tmp/")
            # SO_LINGER 0: close() sends a RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        finally:
            sock.close()
        self.assert_nothing_left(before, context="client reset")
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)

    def test_malformed_chunked_body(self):
        before = self.snapshot()
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "badchunk.tar.gz", chunked=True))
            sock.sendall(b"%x\r\n" % len(self.gz) + self.gz + b"\r\nZZZ-not-hex\r\n")
            status, headers, body, _ = read_response(sock, 15)
        self.assert_error(status, headers, body, 400, "bad_request", "malformed chunk size")
        self.assert_nothing_left(before, context="malformed chunked body")


class LimitsTest(PortalTestCase, UploadChecks):
    """A server whose PORTAL_MAX_UPLOAD_BYTES is the exact size of an archive
    built for it, with a 2 s body idle timeout."""

    @classmethod
    def setUpClass(cls):
        # ~1 MiB of random data, stored: the archive is what it is
        cls.exact = A.gzip_bytes(A.random_tar(1 * MiB, seed=31), level=1, filename="a")
        cls.limit = len(cls.exact)
        # a valid archive one byte over the limit (a longer FNAME in the gzip header)
        cls.one_over = A.gzip_bytes(A.random_tar(1 * MiB, seed=31), level=1, filename="ab")
        assert len(cls.one_over) == cls.limit + 1
        cls.twice = A.gzip_bytes(A.random_tar(2 * MiB, seed=32), level=1)
        cls.PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_MAX_UPLOAD_BYTES=str(cls.limit),
                              PORTAL_BODY_IDLE_TIMEOUT_SECONDS="2")
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("limited", "uploader")

    def test_exactly_the_limit_is_accepted(self):
        status, headers, body = self.put(self.token, "exact.tar.gz", self.exact)
        self.assert_upload(status, headers, body, self.exact, "exact.tar.gz", "limited", "tar.gz",
                           "exact limit, Content-Length")

    def test_exactly_the_limit_chunked_is_accepted(self):
        pieces = [self.exact[i:i + 100_000] for i in range(0, len(self.exact), 100_000)]
        status, headers, body = self.put_chunked(self.token, "exact-chunked.tar.gz", pieces)
        self.assert_upload(status, headers, body, self.exact, "exact-chunked.tar.gz", "limited",
                           "tar.gz", "exact limit, chunked")

    def test_one_byte_over_the_limit(self):
        for expect in (False, True):
            with self.subTest(expect=expect):
                self.check_413_before_body(self.token, self.limit + 1, expect)
        # and with the body actually sent
        before = self.snapshot()
        status, headers, body = self.put(self.token, "over.tar.gz", self.one_over)
        self.assert_error(status, headers, body, 413, "payload_too_large", "limit + 1, sent")
        self.assert_nothing_left(before, context="limit + 1")

    def check_chunked_over_limit(self, archive, piece_size):
        before = self.snapshot()
        pieces = [archive[i:i + piece_size] for i in range(0, len(archive), piece_size)]
        wire = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "chunked-over.tar.gz", chunked=True))
            sender = threading.Thread(target=send_quietly, args=(sock, wire), daemon=True)
            sender.start()
            status, headers, body, rest = read_response(sock, REQUEST_TIMEOUT)
            self.assert_error(status, headers, body, 413, "payload_too_large",
                              f"chunked, {len(archive)} bytes in {piece_size}-byte chunks")
            # the connection is closed after the answer
            self.assertEqual(rest + read_to_eof(sock, 5), b"")
            sender.join(20)
        self.assert_nothing_left(before, context="chunked over the limit")

    def test_chunked_body_over_the_limit(self):
        self.check_chunked_over_limit(self.twice, 64 * 1024)
        self.check_chunked_over_limit(self.one_over, 1000)

    def test_uncompressed_size_bomb(self):
        zeros = A.tar_bytes([A.file("zeros.bin", bytes(40 * MiB))])
        self.assertGreater(len(zeros), 32 * self.limit)
        for filename, archive in (("bomb.tar.gz", A.gzip_bytes(zeros, level=9)),
                                  ("bomb.tar.zst", A.zstd_bytes(zeros, level=19))):
            with self.subTest(filename=filename):
                self.assertLess(len(archive), self.limit)
                before = self.snapshot()
                status, headers, body = self.put(self.token, filename, archive)
                self.assert_error(status, headers, body, 422, "archive_bomb", filename)
                self.assert_nothing_left(before, context=filename)

    def test_just_under_the_bomb_limit_is_accepted(self):
        # a stream of exactly 32 x the limit (rounded down to the record size)
        target = (32 * self.limit) // A.RECORD * A.RECORD
        data_size = target - 3 * A.BLOCK  # header, data, two zero blocks
        data_size -= data_size % A.BLOCK
        tar = A.tar_bytes([A.file("z.bin", bytes(data_size))], fmt=A.tarfile.USTAR_FORMAT)
        self.assertLessEqual(len(tar), 32 * self.limit)
        archive = A.gzip_bytes(tar, level=9)
        status, headers, body = self.put(self.token, "under.tar.gz", archive)
        obj = self.assert_upload(status, headers, body, archive, "under.tar.gz", "limited",
                                 "tar.gz", "just under the bomb limit")
        self.assertEqual(obj["uncompressed_size"], len(tar))

    def test_silent_client_gets_408(self):
        before = self.snapshot()
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "silent.tar.gz", len(self.exact)))
            sock.sendall(self.exact[:600_000])  # more than a server chunk: a partial file exists
            wait_until(lambda: self.dir_files("tmp"), 30, message="a partial file in tmp/")
            silent_since = time.monotonic()
            status, headers, body, rest = read_response(sock, 30)
            waited = time.monotonic() - silent_since
            self.assert_error(status, headers, body, 408, "request_timeout", "silent mid-body")
            self.assertEqual(rest + read_to_eof(sock, 5), b"", "the connection closes")
        self.assertLess(waited, 20, "the 2 s body idle timeout was not applied")
        self.assert_nothing_left(before, context="408")

    def test_slow_but_steady_client_is_not_timed_out(self):
        # The 2 s limit is for silence: a client that trickles 4 KiB every
        # 0.25 s for 5 s is never silent that long and must not get a 408.
        # (The sleeps pace the client; nothing is synchronised by them.)
        data = self.exact
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "trickle.tar.gz", len(data)))
            offset = 0
            trickle_until = time.monotonic() + 5
            while time.monotonic() < trickle_until:
                sock.sendall(data[offset:offset + 4096])
                offset += 4096
                time.sleep(0.25)
            sock.sendall(data[offset:])
            status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
        self.assert_upload(status, headers, body, data, "trickle.tar.gz", "limited", "tar.gz",
                           "slow but steady")


if __name__ == "__main__":
    unittest.main()

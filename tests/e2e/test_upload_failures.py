"""End-to-end tests of refused and interrupted uploads: every row of SPEC §5.3
over HTTP, crash safety and start-up reconciliation (§5.1, §9, §11), and the
database going away. Each refusal is checked for its exact status and error
code AND for leaving nothing behind: no file in tmp/, no new file in
archives/, no new row in uploads.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_upload_failures        (from tests/e2e)
"""

import json
import os
import random
import socket
import threading
import time
import unittest

import archives as A
from portal_harness import Portal, PortalTestCase, wait_until
from test_uploads import (NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response, read_to_eof,
                          wait_ready)

MiB = 1024 * 1024


def send_quietly(sock, data):
    """sendall that tolerates the server answering and closing first."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


class ValidationTest(PortalTestCase, UploadChecks):
    """SPEC §5.3 with the default limits: names, media types, damaged and
    unsafe archives, too many entries, oversized Content-Length, clients
    that vanish."""

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("uploader", "uploader")
        wait_ready(cls.portal)
        cls.tar = A.tar_bytes(A.sample_members(seed=11))
        cls.gz = A.gzip_bytes(cls.tar)
        cls.zst = A.zstd_bytes(cls.tar)

    def refused(self, filename, body, want_status, want_code, context=None, headers=None):
        """PUTs body (Content-Length), expects the JSON error and that
        nothing was left; returns the error message."""
        context = context or filename
        before = self.snapshot()
        status, hdrs, answer = self.put(self.token, filename, body, headers=headers)
        message = self.assert_error(status, hdrs, answer, want_status, want_code, context)
        self.assert_nothing_left(before, context=context)
        return message

    # -- filenames (SPEC §5.3)

    def test_invalid_filenames(self):
        cases = {
            "no suffix": "archive",
            "only .tar": "archive.tar",
            "zip": "archive.zip",
            ".gz alone": "archive.gz",
            "zst alone": "archive.zst",
            "suffix in the middle": "archive.tar.gz.txt",
            "leading dot": ".hidden.tar.gz",
            "only the suffix": ".tar.gz",
            "space": "my%20archive.tar.gz",
            "encoded slash": "dir%2Farchive.tar.gz",
            "encoded backslash": "dir%5Carchive.tar.gz",
            "unicode": "caf%C3%A9.tar.gz",
            "semicolon": "a%3Bb.tar.gz",
            "NUL": "a%00b.tar.gz",
            "newline": "a%0Ab.tar.gz",
            "256 characters": "a" * 249 + ".tar.gz",
            "1000 characters": "a" * 993 + ".tar.gz",
        }
        for name, filename in cases.items():
            with self.subTest(case=name):
                self.refused(filename, self.gz, 400, "invalid_filename", name)

    def test_filename_of_255_characters_is_accepted(self):
        name = "a" * 248 + ".tar.gz"
        self.assertEqual(len(name), 255)
        obj = self.upload_ok(self.token, name, self.gz, "uploader")
        self.assertEqual(obj["filename"], name)

    # -- Content-Length above the limit: 413 before any body byte (SPEC §5.3, §11)

    def test_content_length_over_limit(self):
        for expect in (False, True):
            with self.subTest(expect=expect):
                self.check_413_before_body(self.token, 1024 ** 3 + 1, expect)  # the default limit + 1
                self.check_413_before_body(self.token, 10 * 1024 ** 4, expect)  # 10 TiB

    # -- media type: 415 within the first chunk (SPEC §5.3)

    def test_wrong_magic_refused_within_first_chunk(self):
        before = self.snapshot()
        junk = b"PK\x03\x04" + random.Random(3).randbytes(64 * 1024 - 4)  # a zip, say
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "not-gzip.tar.gz", 100 * MiB))
            sock.sendall(junk)
            # the other 99.9 MiB are never sent: the 415 must come anyway
            status, headers, body, _ = read_response(sock, 15)
            message = self.assert_error(status, headers, body, 415, "unsupported_media_type",
                                        "64 KiB of a zip")
        self.assertTrue(message)
        self.assert_nothing_left(before, context="wrong magic")

    def test_wrong_magic_small_bodies(self):
        cases = {
            "gzip named .tar.zst": ("gz-named.tar.zst", self.gz),
            "zstd named .tar.gz": ("zst-named.tar.gz", self.zst),
            "zstd named .tgz": ("zst-named.tgz", self.zst),
            "plain tar named .tar.gz": ("plain.tar.gz", self.tar),
            "bzip2 named .tar.gz": ("bz.tar.gz", b"BZh91AY&SY" + bytes(200)),
            "text named .tar.zst": ("text.tar.zst", b"hello world\n" * 100),
            "one byte": ("one.tar.gz", b"\x1f"),
            "half the zstd magic": ("half.tar.zst", b"\x28\xb5"),
        }
        for name, (filename, body) in cases.items():
            with self.subTest(case=name):
                self.refused(filename, body, 415, "unsupported_media_type", name)

    def test_empty_body(self):
        before = self.snapshot()
        status, headers, body = self.put(self.token, "empty.tar.gz", b"")
        self.assertIn(status, (415, 422), body)
        code = json.loads(body)["error"]["code"]
        self.assertIn(code, ("unsupported_media_type", "invalid_archive"))
        self.assert_error(status, headers, body, status, code)
        self.assert_nothing_left(before, context="empty body")

    # -- damaged archives: 422 invalid_archive (SPEC §5.3)

    def test_invalid_archives(self):
        big_tar = A.tar_bytes(A.sample_members(seed=12, big=400_000))
        big_gz = A.gzip_bytes(big_tar, level=6)
        big_zst = A.zstd_bytes(big_tar)
        text_tar = A.tar_bytes([A.file("notes.txt", b"lorem ipsum dolor sit amet " * 20000)])
        text_gz = A.gzip_bytes(text_tar)
        corrupt_gz = A.corrupt(text_gz, len(text_gz) // 2)
        self.assertFalse(A.gzip_crc_ok(corrupt_gz), "the corruption must be detectable")
        stored_gz = A.gzip_bytes(text_tar, level=0)  # only the CRC-32 can tell
        crc_only = A.corrupt(stored_gz, len(stored_gz) // 2, count=4)
        self.assertFalse(A.gzip_crc_ok(crc_only))
        text_zst = A.zstd_bytes(text_tar)
        good = A.raw_entry("good.txt", b"fine\n")
        cases = {
            "truncated gzip": ("t.tar.gz", big_gz[: len(big_gz) * 2 // 3]),
            "gzip without its trailer": ("t.tar.gz", big_gz[:-8]),
            "gzip cut in its header": ("t.tar.gz", big_gz[:6]),
            "truncated zstd": ("t.tar.zst", big_zst[: len(big_zst) * 2 // 3]),
            "zstd without its checksum": ("t.tar.zst", big_zst[:-4]),
            "corrupt deflate data": ("c.tar.gz", corrupt_gz),
            "stored gzip with a wrong CRC-32": ("c.tar.gz", crc_only),
            "corrupt zstd data": ("c.tar.zst", A.corrupt(text_zst, len(text_zst) // 2)),
            "gzip of text": ("text.tar.gz", A.gzip_bytes(b"this is not a tar archive\n" * 1000)),
            "zstd of text": ("text.tar.zst", A.zstd_bytes(b"this is not a tar archive\n" * 1000)),
            "gzip of nothing": ("nothing.tar.gz", A.gzip_bytes(b"")),
            "bad tar checksum (first header)": (
                "sum.tar.gz", A.gzip_bytes(A.raw_tar([A.raw_entry("a.txt", b"x", checksum_delta=1)]))),
            "bad tar checksum (second header)": (
                "sum.tar.gz",
                A.gzip_bytes(A.raw_tar([good, A.raw_entry("b.txt", b"y", checksum_delta=-7)]))),
            "missing end-of-archive marker": (
                "eoa.tar.gz", A.gzip_bytes(A.raw_tar([good], end_marker=False))),
            "tar cut inside an entry's data": (
                "cut.tar.gz", A.gzip_bytes(A.raw_tar([A.raw_entry("a.bin", bytes(5000))])[:2048])),
        }
        for name, (filename, body) in cases.items():
            with self.subTest(case=name):
                self.refused(filename, body, 422, "invalid_archive", name)

    # -- unsafe entries: 422 unsafe_entry naming the entry (SPEC §5.3)

    def test_unsafe_entries(self):
        ok_dir = A.raw_entry("root/", typeflag=b"5", mode=0o755)
        ok_file = A.raw_entry("root/file.txt", b"data\n")
        cases = {
            # name: (entries, the entry the message must name)
            "absolute path": ([ok_file, A.raw_entry("/etc/cron.d/evil", b"x")], "/etc/cron.d/evil"),
            "'..' component": ([A.raw_entry("../evil.sh", b"x")], "../evil.sh"),
            "'..' that stays inside": ([ok_dir, A.raw_entry("root/../b.txt", b"x")], "root/../b.txt"),
            "'..' at the end": ([ok_dir, A.raw_entry("root/..", typeflag=b"5")], "root/.."),
            "control character": ([ok_file, A.raw_entry(b"root/bad\x01name", b"x")], "root/bad\x01name"),
            "escape character": ([A.raw_entry(b"\x1b[31mred", b"x")], "\x1b[31mred"),
            "DEL character": ([A.raw_entry(b"root/del\x7f", b"x")], "root/del\x7f"),
            "newline": ([A.raw_entry(b"root/line\nbreak", b"x")], "root/line\nbreak"),
            "character device": ([ok_dir, A.raw_entry("root/tty", typeflag=b"3", devmajor=4,
                                                      devminor=1)], "root/tty"),
            "block device": ([ok_dir, A.raw_entry("root/sda", typeflag=b"4", devmajor=8)], "root/sda"),
            "FIFO": ([ok_dir, A.raw_entry("root/pipe", typeflag=b"6")], "root/pipe"),
            "absolute symlink target": (
                [ok_dir, A.raw_entry("root/passwd", typeflag=b"2", linkname="/etc/passwd")],
                "root/passwd"),
            "symlink escaping the root": (
                [ok_dir, A.raw_entry("root/up", typeflag=b"2", linkname="../../outside")], "root/up"),
            "symlink to the parent of the root": (
                [A.raw_entry("parent", typeflag=b"2", linkname="..")], "parent"),
            "symlink chain escaping": (
                [A.raw_entry("d/", typeflag=b"5"), A.raw_entry("d/l", typeflag=b"2", linkname="."),
                 A.raw_entry("d/s", typeflag=b"2", linkname="l/../..")], "d/s"),
            "hardlink escaping": (
                [ok_file, A.raw_entry("root/hl", typeflag=b"1", linkname="../../etc/shadow")],
                "root/hl"),
            "hardlink to an absolute path": (
                [A.raw_entry("hl", typeflag=b"1", linkname="/etc/shadow")], "hl"),
        }
        for name, (entries, entry) in cases.items():
            with self.subTest(case=name):
                body = A.gzip_bytes(A.raw_tar(entries))
                message = self.refused(f"unsafe-{len(entry)}.tar.gz", body, 422, "unsafe_entry", name)
                shown = {entry, entry.encode("unicode_escape").decode("ascii"),
                         json.dumps(entry)[1:-1]}
                self.assertTrue(any(s in message for s in shown),
                                f"{name}: the message {message!r} does not name {entry!r}")

    def test_unsafe_entries_built_with_tarfile(self):
        # the same kinds, as Python's tarfile writes them (pax format)
        cases = {
            "character device": ([A.directory("r"), A.chardev("r/null")], "r/null"),
            "block device": ([A.blockdev("disk")], "disk"),
            "FIFO": ([A.file("a.txt", b"a"), A.fifo("fifo")], "fifo"),
            "absolute symlink target": ([A.symlink("etc", "/etc")], "etc"),
            "symlink escaping": ([A.directory("x"), A.symlink("x/y", "../../z")], "x/y"),
            "hardlink escaping": ([A.hardlink("h", "../outside")], "h"),
        }
        for name, (members, entry) in cases.items():
            for fmt, compress in (("tar.gz", A.gzip_bytes), ("tar.zst", A.zstd_bytes)):
                with self.subTest(case=name, format=fmt):
                    body = compress(A.tar_bytes(members))
                    message = self.refused(f"tf.{fmt}", body, 422, "unsafe_entry", f"{name} {fmt}")
                    self.assertIn(entry, message)

    def test_safe_links_are_accepted(self):
        # the counterpart: links that stay inside are fine
        members = [
            A.directory("a"), A.directory("a/b"), A.file("a/b/f.txt", b"f"),
            A.symlink("a/b/g", "f.txt"), A.symlink("a/up", "b/../b/f.txt"),
            A.symlink("a/b/top", "../../a"), A.hardlink("a/h", "a/b/f.txt"),
        ]
        archive = A.gzip_bytes(A.tar_bytes(members))
        status, headers, body = self.put(self.token, "links.tar.gz", archive)
        self.assert_upload(status, headers, body, archive, "links.tar.gz", "uploader", "tar.gz",
                           "safe links")

    # -- too many entries: 422 archive_bomb (SPEC §5.3, §11)

    def test_entry_count_limit(self):
        started = time.monotonic()
        exactly = A.many_empty_files(100_000)
        one_more = A.many_empty_files(100_001)
        build_seconds = time.monotonic() - started
        if build_seconds > 20:
            self.skipTest(f"building 100 001 entries took {build_seconds:.0f}s")
        # 100 000 entries: accepted, and every one counted
        archive = A.gzip_bytes(exactly, level=1)
        status, headers, body = self.put(self.token, "many.tar.gz", archive)
        self.assertEqual(status, 201, body[:300])
        obj = json.loads(body)
        self.assertEqual(obj["entries"], 100_000)
        self.assertEqual(obj["uncompressed_size"], len(exactly))
        # 100 001: a bomb
        message = self.refused("too-many.tar.gz", A.gzip_bytes(one_more, level=1), 422,
                               "archive_bomb", "100 001 entries")
        self.assertIn("100000", message.replace(" ", "").replace(",", ""))

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
        wait_ready(cls.portal)

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


def restarted(portal, env=None):
    """A new server process on the same data dir, database and settings as
    `portal` (which must have stopped)."""
    merged = {k: v for k, v in portal.env.items() if k.startswith("PORTAL_")}
    merged.update(env or {})
    p = Portal(portal.env["DATABASE_URL"], env=merged)
    p.data_dir = portal.data_dir  # for the tests' own checks
    return p


class CrashTest(PortalTestCase, UploadChecks):
    """SIGKILL mid-upload, then start-up reconciliation (SPEC §5.1, §9, §11).
    Each test runs its own servers; the class's server only runs the CLI."""

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("crashy", "uploader")
        wait_ready(cls.portal)
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=41)))

    def server(self, portal=None):
        """A fresh server (or a restart on `portal`'s data dir), cleaned up after the test."""
        p = restarted(portal) if portal else Portal(self.pg.url, env=self.PORTAL_ENV)
        self.addCleanup(p.cleanup)
        p.start()
        wait_ready(p)  # as a platform would, before sending it traffic
        return p

    def stop_cleanly(self, p):
        self.assertEqual(p.terminate(timeout=40), 0, p.output_tail())
        self.assertEqual(p.sanitizer_reports(), [])

    def test_kill_mid_upload(self):
        first = self.server()
        before = self.snapshot(first)
        archive = A.gzip_bytes(A.random_tar(64 * MiB, seed=42), level=0)
        sock = first.connect(timeout=REQUEST_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(self.head_bytes(self.token, "killed.tar.gz", len(archive)))
        sent = 0
        # send until a good part of the body is on disk, then stop sending
        for offset in range(0, 8 * MiB, MiB):
            sock.sendall(archive[offset:offset + MiB])
            sent += MiB
        part = wait_until(lambda: [f for f in self.dir_files("tmp", first) if f.endswith(".part")],
                          30, message="a .part file")
        wait_until(lambda: os.path.getsize(self.data_path("tmp", part[0], portal=first)) > MiB, 30,
                   message="the partial file to grow")
        first.kill()
        self.assertEqual(self.dir_files("tmp", first), part, "the crash left its partial file")

        second = self.server(first)
        self.assert_nothing_left(before, second, context="after the restart")
        self.assertEqual(self.dir_files("archives", second), [])
        logged = [e for e in second.logs if part[0] in json.dumps(e)]
        self.assertTrue(logged, "the removal of the stale partial file is logged")
        obj = self.upload_ok(self.token, "after-crash.tar.gz", self.small, "crashy", portal=second)
        self.assertEqual(self.dir_files("archives", second), [obj["id"]])
        self.stop_cleanly(second)

    def test_file_without_row_goes_to_orphans(self):
        first = self.server()
        obj = self.upload_ok(self.token, "kept.tar.gz", self.small, "crashy", portal=first)
        self.stop_cleanly(first)
        orphan_id = "OrphanNoRow_" + os.urandom(6).hex()
        content = b"an archive whose row never committed"
        with open(self.data_path("archives", orphan_id, portal=first), "wb") as f:
            f.write(content)
        rows = self.row_count()

        second = self.server(first)
        self.assertEqual(self.dir_files("archives", second), [obj["id"]])
        orphans = self.dir_files("orphans", second)
        self.assertEqual(len(orphans), 1, orphans)
        self.assertTrue(orphans[0].startswith(orphan_id), orphans)
        with open(self.data_path("orphans", orphans[0], portal=second), "rb") as f:
            self.assertEqual(f.read(), content, "orphans are moved, never altered")
        self.assertEqual(self.row_count(), rows)
        self.assertTrue([e for e in second.logs if orphan_id in json.dumps(e)],
                        "the orphan is logged")
        # the known upload is untouched and still served
        status, _, body = second.request("GET", f"/api/v1/uploads/{obj['id']}/content",
                                         self.auth(self.token))
        self.assertEqual((status, body), (200, self.small))
        self.stop_cleanly(second)

    def test_row_without_file_is_deleted(self):
        first = self.server()
        kept = self.upload_ok(self.token, "kept2.tar.gz", self.small, "crashy", portal=first)
        lost = self.upload_ok(self.token, "lost.tar.gz", self.small, "crashy", portal=first)
        self.stop_cleanly(first)
        os.unlink(self.data_path("archives", lost["id"], portal=first))
        ghost = "GhostRow_" + os.urandom(6).hex()
        self.pg.psql(
            "insert into uploads (id, owner_id, filename, size, sha256, format, entries,"
            " uncompressed_size) select '" + ghost + "', id, 'ghost.tar.gz', 10, '" + "a" * 64 +
            "', 'tar.gz', 1, 10240 from users where username = 'crashy'")

        second = self.server(first)
        ids = set(self.pg.psql("select id from uploads").split())
        self.assertIn(kept["id"], ids)
        self.assertNotIn(lost["id"], ids)
        self.assertNotIn(ghost, ids)
        for uid in (lost["id"], ghost):
            status, headers, body = second.request("GET", f"/api/v1/uploads/{uid}",
                                                   self.auth(self.token))
            self.assert_error(status, headers, body, 404, "not_found", uid)
        self.assertEqual(self.dir_files("archives", second), [kept["id"]])
        self.assertEqual(self.dir_files("orphans", second), [])
        self.stop_cleanly(second)


class DatabaseGoneTest(PortalTestCase, UploadChecks):
    """SPEC §5.3: database unavailable -> 503 + Retry-After within the
    configured deadline, nothing half-written; /ready says so; uploads work
    again once it is back, in the same process."""

    DEADLINE_S = 1.5
    PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_DB_DEADLINE_MS=str(int(DEADLINE_S * 1000)))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("dbuser", "uploader")
        wait_ready(cls.portal)
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=51)))
        cls.big = A.gzip_bytes(A.random_tar(3 * MiB, seed=52), level=0)

    def setUp(self):
        self.addCleanup(self.pg.start)  # whatever happens, the next test has a database

    def assert_503(self, status, headers, body, context):
        self.assertEqual(status, 503, f"{context}: {body[:300]!r}")
        self.assertTrue(headers.get("Retry-After", "").strip().isdigit(),
                        f"{context}: Retry-After {headers.get('Retry-After')!r}")
        self.assert_error(status, headers, body, 503, json.loads(body)["error"]["code"], context)

    def recovers(self):
        """Uploads succeed again within 30 s of the database coming back."""
        def attempt():
            status, _, body = self.put(self.token, "back.tar.gz", self.small, timeout=30)
            if status == 201:
                return json.loads(body)
            self.assertEqual(status, 503, body[:300])  # nothing but "not yet"
            return None

        obj = wait_until(attempt, 30, interval=0.5, message="an upload to succeed again")
        self.assertTrue(os.path.isfile(self.data_path("archives", obj["id"])))
        return obj

    def test_put_while_database_down(self):
        before = self.snapshot()
        self.pg.stop()
        started = time.monotonic()
        status, headers, body = self.put(self.token, "nodb.tar.gz", self.small)
        elapsed = time.monotonic() - started
        self.assert_503(status, headers, body, "database down")
        # the deadline, plus slack for a sanitizer build on a busy machine
        self.assertLess(elapsed, self.DEADLINE_S + 3, "the 503 must come within the deadline")
        self.assert_nothing_left(before, rows=False, context="database down")
        status, _, body = self.portal.request("GET", "/ready")
        self.assertEqual(status, 503, body)
        self.assertIn("database", json.loads(body)["checks"]["database"])
        pid = self.portal.proc.pid
        self.pg.start()
        self.assertEqual(self.row_count(), before["rows"])
        obj = self.recovers()
        wait_ready(self.portal)
        self.assertEqual(self.portal.proc.pid, pid)
        self.assertIsNone(self.portal.proc.poll(), "the server kept running")
        self.assertEqual(self.row_count(), before["rows"] + 1)
        self.assertEqual(self.dir_files("tmp"), [])
        self.assertIn(obj["id"], self.dir_files("archives"))

    def test_database_lost_mid_upload(self):
        before = self.snapshot()
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "midway.tar.gz", len(self.big)))
            sock.sendall(self.big[: MiB])
            wait_until(lambda: self.dir_files("tmp"), 30, message="a partial file in tmp/")
            self.pg.stop()
            send_quietly(sock, self.big[MiB:])
            status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
        self.assert_503(status, headers, body, "database lost mid-upload")
        self.assert_nothing_left(before, rows=False, context="database lost mid-upload")
        self.pg.start()
        self.assertEqual(self.row_count(), before["rows"])
        self.recovers()


if __name__ == "__main__":
    unittest.main()

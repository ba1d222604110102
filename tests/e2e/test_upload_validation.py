"""End-to-end tests of what an upload carries (SPEC §5.3): names, media
types, damaged archives, unsafe entries and too many entries. Each refusal is
checked for its exact status and error code AND for leaving nothing behind:
no file in tmp/, no new file in archives/, no new row in uploads.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_upload_validation        (from tests/e2e)
"""

import json
import random
import time
import unittest

import archives as A
from portal_harness import PortalTestCase
from upload_checks import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response

MiB = 1024 * 1024


class ValidationTest(PortalTestCase, UploadChecks):
    """SPEC §5.3 with the default limits: names, media types, damaged and
    unsafe archives, too many entries."""

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("uploader", "uploader")
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
        # No first bytes are no gzip/zstd magic (SPEC §5.3's 415 row), as
        # for the one-byte and half-magic bodies above: 415, not 422.
        for filename in ("empty.tar.gz", "empty.tgz", "empty.tar.zst"):
            with self.subTest(filename=filename):
                self.refused(filename, b"", 415, "unsupported_media_type", "empty body")

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


if __name__ == "__main__":
    unittest.main()

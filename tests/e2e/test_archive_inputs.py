"""End-to-end tests of archive inputs from the real world that the server
once answered wrongly (issue 11 §1-§4, SPEC §5.3 and §11 "Compression
integrity", "Unsafe entries", "Text out of bytes"), each kind with its
siblings:

  - corrupt compression that `gzip -t` / `zstd -t` call corrupt: 422
    invalid_archive, whatever the number of gzip members or zstd frames;
  - valid compression they accept: 201 (NUL padding after gzip, zstd
    skippable frames anywhere, pzstd's output);
  - members that GNU tar reads differently from libarchive: a hardlink to a
    symlink, and a name or link target whose safety depends on which header
    a reader believes (every pairing of ustar, GNU long name/link, pax and pax
    global): 422 unsafe_entry;
  - bytes from archives reaching JSON: valid UTF-8 (the log, page and
    response sinks are unit-tested in tests/unit/text_sinks_test.cpp).

Every refusal is checked for its exact status and code and for leaving
nothing behind (no file in tmp/ or archives/, no row). The reference tools
are asked too, so each case shows it is what they say.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_archive_inputs        (from tests/e2e)
"""

import gzip
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import archives as A
from portal_harness import PortalTestCase
from test_uploads import NO_RATE_LIMITS, UploadChecks

BLOCK = A.BLOCK


def padded(data):
    return data + b"\0" * (-len(data) % BLOCK)


def pax_header(records, typeflag=b"x"):
    """A pax extended ('x') or global ('g') header with its records."""
    body = b""
    for key, value in records:
        rest = len(key) + len(value) + 3  # " " "=" "\n"
        length = rest + 1
        while len(str(length)) + rest != length:
            length += 1
        body += b"%d %s=%s\n" % (length, key, value)
    return A.ustar_header("PaxHeader/x", size=len(body), typeflag=typeflag) + padded(body)


def gnu_long(typeflag, value):
    """A GNU long name ('L') or long link ('K') record."""
    data = value + b"\0"
    return A.ustar_header("././@LongLink", size=len(data), typeflag=typeflag) + padded(data)


END = b"\0" * (2 * BLOCK)


def stored_gzip(data):
    """A gzip member of deflate "stored" blocks: the data appears verbatim."""
    return gzip.compress(data, compresslevel=0, mtime=0)


def skippable(content=b"\x04\x00\x00\x00", variant=0):
    """A zstd skippable frame (RFC 8878 §3.1.2)."""
    return bytes([0x50 + variant, 0x2A, 0x4D, 0x18]) + len(content).to_bytes(4, "little") + content


def tool_accepts(argv, data):
    """True when `gzip -t` / `zstd -t` exits 0 on data."""
    return subprocess.run(argv, input=data, capture_output=True, timeout=60).returncode == 0


def gzip_t(data):
    return tool_accepts(["gzip", "-t"], data)


def zstd_t(data):
    return tool_accepts(["zstd", "-t", "-q"], data)


class ArchiveInputsTest(PortalTestCase, UploadChecks):

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("inputs", "uploader")
        cls.tar = A.tar_bytes(A.sample_members(seed=21))
        cls.counter = 0

    def name(self, suffix):
        type(self).counter += 1
        return f"case-{type(self).counter}{suffix}"

    def refused(self, suffix, body, want_status, want_code, context):
        before = self.snapshot()
        status, headers, answer = self.put(self.token, self.name(suffix), body)
        message = self.assert_error(status, headers, answer, want_status, want_code, context)
        self.assert_nothing_left(before, context=context)
        return message

    def accepted(self, suffix, body, tar, context, entries=None):
        """201, with the counts of `tar` (the decompressed stream): its
        entries as Python's tarfile counts them unless given."""
        status, _, answer = self.put(self.token, self.name(suffix), body)
        self.assertEqual(status, 201, f"{context}: {answer[:300]!r}")
        obj = json.loads(answer)
        if entries is None:
            entries = A.describe(A.gzip_bytes(tar))["entries"]
        self.assertEqual(obj["size"], len(body), context)
        self.assertEqual(obj["uncompressed_size"], len(tar), context)
        self.assertEqual(obj["entries"], entries, context)
        return obj

    # -- §1 corrupt compression: 422 invalid_archive

    def test_gzip_trailer_all_zeros(self):
        # The first example: CRC-32 and ISIZE both wrong.
        good = A.gzip_bytes(self.tar)
        bad = good[:-8] + b"\0" * 8
        self.assertFalse(gzip_t(bad))
        self.refused(".tar.gz", bad, 422, "invalid_archive", "trailer zeroed")

    def test_gzip_one_trailer_field_wrong(self):
        good = A.gzip_bytes(self.tar)
        for what, at in (("CRC-32", len(good) - 8), ("ISIZE", len(good) - 4)):
            with self.subTest(field=what):
                bad = A.corrupt(good, at, count=1)
                self.assertFalse(gzip_t(bad))
                self.refused(".tar.gz", bad, 422, "invalid_archive", what)

    def test_gzip_first_of_two_members_corrupt(self):
        # The second example: each tar block its own member; a byte
        # of file content inside the first member's stored block altered, so
        # it still inflates and the tar still parses, but the member no
        # longer matches its CRC-32.
        tar = self.tar
        at = tar.index(b"# sample")  # README.md's content
        split = (at // BLOCK + 1) * BLOCK
        first = stored_gzip(tar[:split])
        rest = b"".join(stored_gzip(tar[i:i + BLOCK]) for i in range(split, len(tar), BLOCK))
        self.assertTrue(gzip_t(first + rest))
        bad = A.corrupt(first, first.index(b"# sample") + 2, xor=0x01, count=1) + rest
        self.assertTrue(zlib_inflates(bad))
        self.assertFalse(gzip_t(bad))
        self.refused(".tar.gz", bad, 422, "invalid_archive", "first member's data")

    def test_gzip_any_member_trailer_wrong(self):
        parts = [A.gzip_bytes(self.tar[:BLOCK]), A.gzip_bytes(self.tar[BLOCK:2 * BLOCK]),
                 A.gzip_bytes(self.tar[2 * BLOCK:])]
        self.assertTrue(gzip_t(b"".join(parts)))
        for member in range(3):
            for what, offset in (("CRC-32 and ISIZE", None), ("ISIZE", -2)):
                with self.subTest(member=member + 1, field=what):
                    damaged = list(parts)
                    m = damaged[member]
                    damaged[member] = (m[:-8] + b"\0" * 8 if offset is None
                                       else A.corrupt(m, len(m) + offset, count=1))
                    bad = b"".join(damaged)
                    self.assertFalse(gzip_t(bad))
                    self.refused(".tar.gz", bad, 422, "invalid_archive", f"member {member + 1}")

    def test_zstd_frame_checksum_wrong(self):
        frames = [A.zstd_bytes(self.tar[:4 * BLOCK]), A.zstd_bytes(self.tar[4 * BLOCK:])]
        self.assertTrue(zstd_t(b"".join(frames)))
        for frame in range(2):
            with self.subTest(frame=frame + 1):
                damaged = list(frames)
                damaged[frame] = A.corrupt(damaged[frame], len(damaged[frame]) - 1, count=1)
                bad = b"".join(damaged)
                self.assertFalse(zstd_t(bad))
                self.refused(".tar.zst", bad, 422, "invalid_archive", f"frame {frame + 1}")
        with self.subTest(case="after a skippable frame"):
            bad = skippable() + A.corrupt(frames[0], len(frames[0]) - 2, count=1) + frames[1]
            self.assertFalse(zstd_t(bad))
            self.refused(".tar.zst", bad, 422, "invalid_archive", "after a skippable frame")

    # -- §2 valid compression: 201

    def test_gzip_nul_padding_accepted(self):
        good = A.gzip_bytes(self.tar)
        two = A.gzip_bytes(self.tar[:BLOCK]) + A.gzip_bytes(self.tar[BLOCK:])
        for what, body in (("512 NUL bytes", good + b"\0" * 512), ("one NUL byte", good + b"\0"),
                           ("a tape block", good + b"\0" * 10240),
                           ("two members, then NULs", two + b"\0" * 512)):
            with self.subTest(case=what):
                self.assertTrue(gzip_t(body))
                self.accepted(".tar.gz", body, self.tar, what)

    def test_gzip_trailing_garbage_refused(self):
        good = A.gzip_bytes(self.tar)
        for what, tail in (("text", b"trailing garbage"), ("NULs then a byte", b"\0" * 512 + b"x"),
                           ("half a member header", b"\x1f\x8b")):
            with self.subTest(case=what):
                self.assertFalse(gzip_t(good + tail))  # an error or "trailing garbage ignored"
                self.refused(".tar.gz", good + tail, 422, "invalid_archive", what)

    def test_pzstd_output_accepted(self):
        result = subprocess.run(["pzstd", "-q", "-c", "-p", "2"], input=self.tar,
                                capture_output=True, timeout=60, check=True)
        body = result.stdout
        self.assertEqual(body[1:4], b"\x2a\x4d\x18", "pzstd starts with a skippable frame")
        self.assertTrue(zstd_t(body))
        self.accepted(".tar.zst", body, self.tar, "pzstd")

    def test_zstd_skippable_frames_anywhere_accepted(self):
        a, b = A.zstd_bytes(self.tar[:4 * BLOCK]), A.zstd_bytes(self.tar[4 * BLOCK:])
        cases = {
            "before the first frame, last magic variant": skippable(variant=15) + a + b,
            "several before, one empty": skippable() + skippable(b"", 7) + a + b,
            "between frames": a + skippable(b"x" * 1000, 3) + b,
            "after the last frame": a + b + skippable(variant=9),
        }
        for what, body in cases.items():
            with self.subTest(case=what):
                self.assertTrue(zstd_t(body))
                self.accepted(".tar.zst", body, self.tar, what)

    def test_zstd_first_bytes_after_skippable_frames(self):
        gz = A.gzip_bytes(self.tar)
        self.refused(".tar.zst", skippable() + gz, 415, "unsupported_media_type",
                     "gzip after a skippable frame")
        self.refused(".tar.zst", skippable(), 415, "unsupported_media_type",
                     "only a skippable frame")
        self.refused(".tar.zst", b"\x50\x2a\x4d\x19" + gz, 415, "unsupported_media_type",
                     "almost a skippable magic")

    def test_zstd_trailing_bytes_refused(self):
        good = A.zstd_bytes(self.tar)
        for what, tail in (("NULs", b"\0" * 512), ("text", b"trailing garbage")):
            with self.subTest(case=what):
                self.assertFalse(zstd_t(good + tail))
                self.refused(".tar.zst", good + tail, 422, "invalid_archive", what)

    # -- §3 links and names that tar readers read differently: 422 unsafe_entry

    def test_hardlink_to_symlink(self):
        members = [A.directory("a"), A.directory("a/b"), A.symlink("a/b/s", "../../x.txt"),
                   A.hardlink("h", "a/b/s")]
        tar = A.tar_bytes(members)
        self.assertEqual(gnu_tar_extracts_link(tar, "h"), "../../x.txt")
        message = self.refused(".tar.gz", A.gzip_bytes(tar), 422, "unsafe_entry",
                               "hardlink to a symlink")
        self.assertIn('"h"', message)
        self.refused(".tar.zst", A.zstd_bytes(tar), 422, "unsafe_entry", "the same in zstd")

    def test_path_through_a_hardlink_to_a_symlink(self):
        # c/d/h is a symlink to ../../x.txt from c/d: inside. A member below
        # it goes through a symlink, as below any other.
        members = [A.directory("a"), A.directory("a/b"), A.symlink("a/b/s", "../../x.txt"),
                   A.directory("c"), A.directory("c/d"), A.hardlink("c/d/h", "a/b/s")]
        self.accepted(".tar.gz", A.gzip_bytes(A.tar_bytes(members)), A.tar_bytes(members),
                      "the hardlink alone")
        tar = A.tar_bytes(members + [A.file("c/d/h/evil.txt", b"x")])
        message = self.refused(".tar.gz", A.gzip_bytes(tar), 422, "unsafe_entry", "h/evil.txt")
        self.assertIn("c/d/h/evil.txt", message)

    SOURCES = ("ustar", "GNU long", "pax", "pax global")

    @staticmethod
    def member_with(a, first, b, second, link):
        """A member whose name (or symlink target) is `first` in source a and
        `second` in source b, their headers in that order."""
        specials = b""
        ustar_value = b"ustar-target" if link else b"ustar-name"
        for source, value in ((a, first), (b, second)):
            if source == "ustar":
                ustar_value = value
            elif source == "GNU long":
                specials += gnu_long(b"K" if link else b"L", value)
            elif source == "pax":
                specials += pax_header([(b"linkpath" if link else b"path", value)])
            else:
                specials += pax_header([(b"linkpath" if link else b"path", value)], b"g")
        if link:
            return (A.ustar_header("dir", typeflag=b"5", mode=0o755) + specials +
                    A.ustar_header("dir/s", typeflag=b"2", linkname=ustar_value))
        return specials + A.ustar_header(ustar_value)

    def test_every_pairing_of_name_and_link_sources(self):
        for link in (False, True):
            safe, unsafe = (b"inside", b"../../outside") if link else (b"fine/name", b"../evil")
            for a in self.SOURCES:
                for b in self.SOURCES:
                    if a == b:
                        continue
                    for x, y in ((safe, unsafe), (unsafe, safe)):
                        context = (f"{'target' if link else 'name'}: {a} says {x.decode()}, "
                                   f"{b} says {y.decode()}")
                        with self.subTest(case=context):
                            tar = self.member_with(a, x, b, y, link) + END
                            body = A.gzip_bytes(tar)
                            message = self.refused(".tar.gz", body, 422, "unsafe_entry", context)
                            self.assertIn(unsafe.decode(), message)

    def test_conflicting_sources_that_are_all_safe_are_accepted(self):
        for link in (False, True):
            for a, b in (("ustar", "pax"), ("GNU long", "pax"), ("pax", "pax global")):
                with self.subTest(link=link, sources=(a, b)):
                    tar = self.member_with(a, b"one", b, b"two", link) + END
                    self.accepted(".tar.gz", A.gzip_bytes(tar), tar, f"{a} and {b}",
                                  entries=2 if link else 1)

    def test_a_later_member_through_another_reading(self):
        # libarchive takes the GNU long name "a", GNU tar the pax path "b":
        # for GNU tar "b" is the symlink, and "b/x" goes through it.
        tar = (gnu_long(b"L", b"a") + pax_header([(b"path", b"b")]) +
               A.ustar_header("c", typeflag=b"2", linkname=b"sub") + A.ustar_header("b/x") + END)
        self.assertIn("b", gnu_tar_names(tar))
        message = self.refused(".tar.gz", A.gzip_bytes(tar), 422, "unsafe_entry", "b/x")
        self.assertIn('"b/x"', message)

    def test_sized_link_headers_refused(self):
        # A header that carries no data (a link, a directory) but claims a
        # size: readers disagree whether the next block is data or a header.
        hidden = A.ustar_header("evil", typeflag=b"2", linkname=b"/etc/passwd")
        # In a pax archive libarchive skips a hardlink's "data"; GNU tar
        # extracts the member hidden there, which nothing checked.
        hardlink = (A.ustar_header("t") + pax_header([(b"mtime", b"1")]) +
                    A.ustar_header("x", size=BLOCK, typeflag=b"1", linkname=b"t") + hidden + END)
        self.assertIn("evil", gnu_tar_names(hardlink))
        # GNU tar skips a symlink's or a directory's "data"; libarchive reads
        # a member there.
        symlink = A.ustar_header("s", size=BLOCK, typeflag=b"2", linkname=b"t") + hidden + END
        directory = A.ustar_header("d", size=BLOCK, typeflag=b"5") + hidden + END
        self.assertNotIn("evil", gnu_tar_names(symlink))
        for what, tar in (("hardlink", hardlink), ("symlink", symlink), ("directory", directory)):
            with self.subTest(case=what):
                self.refused(".tar.gz", A.gzip_bytes(tar), 422, "invalid_archive",
                             f"a {what} with a size")

    def test_what_gnu_tar_writes_is_accepted(self):
        # The header kinds that tar readers could read differently, as GNU tar
        # really writes them: long names and link targets (GNU 'L'/'K' or pax
        # records beside a truncated ustar field), hardlinks, and sparse files
        # ('S' headers with extension blocks, or pax GNU.sparse 1.0).
        where = tempfile.mkdtemp(prefix="gnu-tar-src-")
        try:
            d = os.path.join(where, "d")
            long_dir = os.path.join(d, "x" * 150)
            os.makedirs(long_dir)
            with open(os.path.join(long_dir, "y" * 120), "wb") as f:
                f.write(b"long")
            with open(os.path.join(d, "sparse"), "wb") as f:
                f.truncate(40 * 1024 * 1024)
                for i in range(30):  # more holes than an 'S' header has slots
                    f.seek(i * 1_000_000 + 7)
                    f.write(b"x%d" % i)
            with open(os.path.join(d, "plain"), "wb") as f:
                f.write(b"data")
            os.link(os.path.join(d, "plain"), os.path.join(d, "hard"))
            os.symlink("z" * 130, os.path.join(d, "longlink"))
            for fmt in ("gnu", "posix"):
                with self.subTest(format=fmt):
                    tar = subprocess.run(["tar", f"--format={fmt}", "-cSf", "-", "-C", where, "d"],
                                         capture_output=True, timeout=60, check=True).stdout
                    entries = len([n for n in gnu_tar_names(tar) if n])
                    self.accepted(".tar.gz", A.gzip_bytes(tar), tar, fmt, entries=entries)
                    self.accepted(".tar.zst", A.zstd_bytes(tar), tar, fmt, entries=entries)
        finally:
            shutil.rmtree(where)

    # -- §4 bytes from archives reach JSON and logs as valid UTF-8

    def test_latin1_entry_name_in_entries(self):
        tar = (A.ustar_header(b"caf\xe9.txt", size=2) + padded(b"hi") +
               pax_header([(b"path", b"raw\xff\xfe")]) + A.ustar_header("x") + END)
        obj = self.accepted(".tar.gz", A.gzip_bytes(tar), tar, "Latin-1 name", entries=2)
        status, headers, body = self.portal.request(
            "GET", f"/api/v1/uploads/{obj['id']}/entries", self.auth(self.token))
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"))
        doc = json.loads(body.decode("utf-8"))  # strict: raises on invalid UTF-8
        paths = [e["path"] for e in doc["entries"]]
        # bytes.decode("utf-8", "backslashreplace"), as docs/ARCHITECTURE.md says
        self.assertEqual(paths, [b"caf\xe9.txt".decode("utf-8", "backslashreplace"),
                                 b"raw\xff\xfe".decode("utf-8", "backslashreplace")])
        self.assertEqual(paths[0], "caf\\xe9.txt")

    def test_latin1_name_in_an_error_message(self):
        tar = A.ustar_header(b"caf\xe9/../x") + END
        before = self.snapshot()
        status, headers, body = self.put(self.token, self.name(".tar.gz"), A.gzip_bytes(tar))
        self.assertEqual(status, 422)
        doc = json.loads(body.decode("utf-8"))
        self.assertEqual(doc["error"]["code"], "unsafe_entry")
        self.assertIn('"caf\\xe9/../x"', doc["error"]["message"])
        self.assert_nothing_left(before, context="Latin-1 unsafe name")


def zlib_inflates(data):
    """True when every gzip member inflates (CRC-32s aside)."""
    import zlib
    while data:
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        header = 10
        try:
            d.decompress(data[header:])
        except zlib.error:
            return False
        if not d.eof:
            return False
        data = d.unused_data[8:]
    return True


def gnu_tar_extracts_link(tar, name):
    """Extracts `tar` with GNU tar into a temporary directory; the target of
    the symlink it created at `name` (None if it is not a symlink)."""
    where = tempfile.mkdtemp(prefix="gnu-tar-")
    try:
        subprocess.run(["tar", "-xf", "-", "-C", where], input=tar, capture_output=True,
                       timeout=60, check=True)
        path = os.path.join(where, name)
        return os.readlink(path) if os.path.islink(path) else None
    finally:
        shutil.rmtree(where)


def gnu_tar_names(tar):
    """The member names GNU tar lists."""
    result = subprocess.run(["tar", "-tf", "-"], input=tar, capture_output=True, timeout=60)
    return result.stdout.decode("utf-8", "backslashreplace").split("\n")


class ArchiveInputsIsalTest(ArchiveInputsTest):
    """Every case above on a server that inflates with ISA-L
    (PORTAL_GZIP_INFLATER=isal): the same status and code for each. The one
    input kind where ISA-L and zlib differ, incomplete Huffman code sets, is
    in tests/unit/inflater_agreement_test.cpp and docs/CONFIGURATION.md."""

    PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_GZIP_INFLATER="isal")


if __name__ == "__main__":
    unittest.main()


"""Builders for the upload tests' archive corpus (SPEC §5.3, §11).

Python 3 standard library only; zstd through the `zstd` command line tool
(Python 3.11 has no zstd module). Everything is built in memory, in the test,
so each case says exactly which bytes it sends.

    tar_bytes(members)       a tar stream from Member descriptions (tarfile)
    ustar_header(...)        one hand-built 512-byte ustar header, for what
                             tarfile refuses or rewrites (bad checksums,
                             absolute names, control characters, ...)
    raw_tar(entries)         headers + data + end-of-archive marker, by hand
    gzip_bytes / zstd_bytes  compression; gunzip / unzstd the reverse
    describe(tar)            what the server must report: entries, size
"""

import gzip
import hashlib
import io
import random
import subprocess
import tarfile
import zlib

BLOCK = 512
RECORD = 20 * BLOCK  # tar's default record: archives are padded to it
MTIME = 1_700_000_000  # an int: a float mtime would make tarfile add pax headers


# --------------------------------------------------------------------------
# members described as data, written with tarfile


class Member:
    """One tar member: kind is file, dir, symlink, hardlink, chardev,
    blockdev or fifo. `target` is the link target for links."""

    def __init__(self, kind, name, data=b"", target=""):
        self.kind, self.name, self.data, self.target = kind, name, data, target

    def __repr__(self):
        return f"Member({self.kind!r}, {self.name!r})"


def file(name, data=b""):
    return Member("file", name, data)


def directory(name):
    return Member("dir", name)


def symlink(name, target):
    return Member("symlink", name, target=target)


def hardlink(name, target):
    return Member("hardlink", name, target=target)


def chardev(name):
    return Member("chardev", name)


def blockdev(name):
    return Member("blockdev", name)


def fifo(name):
    return Member("fifo", name)


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    """The tar stream (with its end-of-archive marker and record padding)
    of `members`, written by tarfile."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = _TYPES[m.kind]
            info.mtime = MTIME
            info.uid = info.gid = 1000
            info.uname = info.gname = "builder"
            if m.kind == "dir":
                info.mode = 0o755
            elif m.kind in ("symlink", "hardlink"):
                info.mode = 0o777 if m.kind == "symlink" else 0o644
                info.linkname = m.target
            elif m.kind in ("chardev", "blockdev"):
                info.mode = 0o600
                info.devmajor, info.devminor = 1, 3
            else:
                info.mode = 0o644
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def sample_members(seed=1, big=0):
    """A small tree with every accepted kind: directories, files (one of
    `big` random bytes when big > 0), a relative symlink and a hardlink."""
    rng = random.Random(seed)
    members = [
        directory("project"),
        directory("project/src"),
        file("project/README.md", b"# sample %d\n" % seed),
        file("project/src/main.c", b"int main(void) { return %d; }\n" % seed),
        file("project/empty.txt", b""),
        file("project/src/data.bin", rng.randbytes(3000)),
        symlink("project/readme-link", "README.md"),
        symlink("project/src/up", "../README.md"),
        hardlink("project/main-copy.c", "project/src/main.c"),
    ]
    if big:
        members.append(file("project/big.bin", rng.randbytes(big)))
    return members


def random_tar(size, seed=7, name="payload.bin"):
    """A tar with one file of `size` random (incompressible) bytes."""
    return tar_bytes([directory("d"), file("d/" + name, random.Random(seed).randbytes(size))])


# --------------------------------------------------------------------------
# hand-built headers


def _octal(value, width):
    """A NUL-terminated octal field of `width` bytes."""
    digits = b"%o" % value
    if len(digits) > width - 1:
        raise ValueError(f"{value} does not fit {width} bytes")
    return digits.rjust(width - 1, b"0") + b"\0"


def _field(value, width):
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if len(value) > width:
        raise ValueError(f"{value!r} is longer than {width} bytes")
    return value.ljust(width, b"\0")


def ustar_header(name, size=0, typeflag=b"0", linkname=b"", mode=0o644, devmajor=0,
                 devminor=0, prefix=b"", checksum_delta=0):
    """One 512-byte POSIX ustar header, byte by byte. Names and link targets
    go in verbatim (str or bytes). checksum_delta != 0 stores a wrong checksum."""
    h = bytearray(BLOCK)
    h[0:100] = _field(name, 100)
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(1000, 8)
    h[116:124] = _octal(1000, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(MTIME, 12)
    h[148:156] = b" " * 8  # the checksum is computed with this field as spaces
    h[156:157] = typeflag
    h[157:257] = _field(linkname, 100)
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[265:297] = _field(b"builder", 32)
    h[297:329] = _field(b"builder", 32)
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    h[345:500] = _field(prefix, 155)
    checksum = sum(h) + checksum_delta
    h[148:156] = b"%06o\0 " % checksum
    return bytes(h)


def raw_entry(name, data=b"", typeflag=b"0", linkname=b"", **kwargs):
    """(header, data) for raw_tar()."""
    return ustar_header(name, size=len(data), typeflag=typeflag, linkname=linkname, **kwargs), data


def raw_tar(entries, end_marker=True, pad_record=True):
    """Headers and data (padded to 512) of `entries` ((header, data) pairs),
    then, unless told otherwise, two zero blocks and zero padding to a
    10240-byte record, as tar writes it."""
    out = bytearray()
    for header, data in entries:
        out += header
        out += data
        out += b"\0" * (-len(data) % BLOCK)
    if end_marker:
        out += b"\0" * (2 * BLOCK)
        if pad_record:
            out += b"\0" * (-len(out) % RECORD)
    return bytes(out)


def many_empty_files(count):
    """A raw tar of `count` empty regular files ("f0000000", ...): fast
    (a header template with the checksum adjusted per name), unlike
    tarfile, for the entry-count limit."""
    template = bytearray(ustar_header("f0000000"))
    base = sum(template[:148]) + sum(template[156:]) + 8 * 32 - sum(b"f0000000")
    parts = []
    for i in range(count):
        name = b"f%07d" % i
        template[0:8] = name
        template[148:156] = b"%06o\0 " % (base + sum(name))
        parts.append(bytes(template))
    parts.append(b"\0" * (2 * BLOCK))
    body = b"".join(parts)
    return body + b"\0" * (-len(body) % RECORD)


# --------------------------------------------------------------------------
# compression


def gzip_bytes(data, level=6, filename=None):
    """A single-member gzip stream; `filename` sets the header's FNAME field
    (one more byte of name = one more byte of archive)."""
    out = io.BytesIO()
    with gzip.GzipFile(filename=filename or "", mode="wb", fileobj=out, compresslevel=level,
                       mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def gunzip(data):
    return gzip.decompress(data)


def zstd_bytes(data, level=3):
    """A zstd frame (with content checksum) from the zstd CLI."""
    result = subprocess.run(["zstd", "-q", "-c", f"-{level}", "--check", "-"], input=data,
                            capture_output=True, timeout=120, check=True)
    return result.stdout


def unzstd(data):
    result = subprocess.run(["zstd", "-q", "-d", "-c", "-"], input=data, capture_output=True,
                            timeout=120, check=True)
    return result.stdout


def decompress(data):
    if data[:2] == b"\x1f\x8b":
        return gunzip(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return unzstd(data)
    raise ValueError("neither gzip nor zstd")


# --------------------------------------------------------------------------
# what the server must report


def describe(archive):
    """The facts the server must report for a valid compressed archive,
    computed here independently: sha256, size, entries (every member:
    files, directories and links), uncompressed_size (bytes of the
    decompressed tar stream, record padding included)."""
    tar = decompress(archive)
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        members = t.getmembers()
    return {
        "sha256": hashlib.sha256(archive).hexdigest(),
        "size": len(archive),
        "entries": len(members),
        "uncompressed_size": len(tar),
    }


def corrupt(data, offset, xor=0x55, count=16):
    """A copy of data with `count` bytes from offset flipped."""
    out = bytearray(data)
    for i in range(offset, min(offset + count, len(out))):
        out[i] ^= xor
    return bytes(out)


def gzip_crc_ok(data):
    """True when data inflates and its trailer CRC matches (a sanity check
    that a corruption is detectable at all)."""
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(data)
        return d.eof
    except zlib.error:
        return False

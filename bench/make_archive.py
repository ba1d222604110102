#!/usr/bin/env python3
"""Makes a .tar.gz of (about) a target compressed size for the benchmark.

Python 3 standard library only. The archive is written with tarfile in
stream mode over gzip over a file on disk, one member at a time, so memory
stays at one member (at most 4 MiB) whatever the archive's size.

Contents: a build-output-like tree of directories, compressible text members
(log/source-like lines, about 3-4x under gzip -6) and incompressible random
members (like already-compressed assets), alternated so that about two thirds
of the compressed bytes are random data and one third text. The last member
is sized so the archive lands within a few KiB of the target.

Archives are cached by size under bench/.cache/ (bench/.gitignore), and
written under a temporary name then renamed, so an interrupted run never
leaves a truncated archive that a later run would trust.

--format zst gives a .tar.zst of the very same tar (the .tar.gz of that size
is made first and its tar stream is recompressed by the `zstd` CLI at its
default level 3, single-threaded, so the output is deterministic for a given
zstd version). Its compressed size differs from the target: the tar is the
same, so .tar.gz and .tar.zst runs move the same files.

    python3 bench/make_archive.py 256M      # prints the archive's path
    python3 bench/make_archive.py 1M --force
    python3 bench/make_archive.py 256M --format zst
"""

import argparse
import contextlib
import gzip
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
MTIME = 1_700_000_000
SEED = 20261123  # fixed: the same size always gives the same archive

WORDS = (
    "build compile link test pass fail warning error info debug trace module "
    "object archive upload portal session actor chunk credit window storage "
    "writer validator inflate digest sha256 fsync rename commit insert token "
    "user request response header body stream buffer socket listener strand "
    "cmake ninja gcc clang boost beast asio caf libarchive zlib zstd postgres "
    "src include lib bin share doc static shared release debug relwithdebinfo"
).split()


def parse_size(text):
    """'256M', '1MiB', '4096', '1G' -> bytes (binary units)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def size_label(n):
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def text_pool(rng, size):
    """`size` bytes of varied log/source-like lines (built once, sliced later).

    The pool is much larger than gzip's 32 KiB window, so slicing it at
    random offsets compresses like fresh text, not like a repetition."""
    lines = []
    total = 0
    n = 0
    while total < size:
        n += 1
        kind = rng.random()
        if kind < 0.5:
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
            line = f"[{n:08d}] {rng.choice(('INFO', 'WARN', 'DEBUG'))} {words} id={rng.getrandbits(32):08x}\n"
        elif kind < 0.8:
            ident = "_".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            line = f"    auto {ident} = {rng.choice(WORDS)}({rng.randint(0, 99999)}, \"{rng.choice(WORDS)}\");\n"
        else:
            path = "/".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
            line = f"{path}.o: {rng.getrandbits(64):016x} {rng.randint(0, 1 << 24)} bytes\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


class _Source:
    """A read()-able member body produced piece by piece (bounded memory)."""

    def __init__(self, produce, size, piece=1 << 20):
        self.produce, self.left, self.piece = produce, size, piece

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        n = self.piece if n is None or n < 0 else min(n, self.piece)
        n = min(n, self.left)
        self.left -= n
        return self.produce(n)


@contextlib.contextmanager
def written_atomically(path):
    """A temporary name to write `path` under: renamed to `path` when the
    block succeeds, removed when it fails, so no truncated archive is ever
    trusted by a later run."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def build(path, target):
    rng = random.Random(SEED ^ target)
    # Member size scales with the archive: ~64 rounds, 16 KiB .. 4 MiB.
    member = max(16 << 10, min(4 << 20, target // 96))
    pool = text_pool(rng, 4 << 20)

    def random_bytes(n):
        return rng.randbytes(n)

    def text_bytes(n):
        out = bytearray()
        while len(out) < n:
            off = rng.randrange(0, len(pool) - 4096)
            take = min(n - len(out), rng.randint(4096, 64 << 10), len(pool) - off)
            out += pool[off:off + take]
        return bytes(out)

    entries = 0
    uncompressed = 0
    with written_atomically(path) as tmp:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=MTIME) as gz:
                with tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tar:

                    def add(name, size=0, produce=None, kind=tarfile.REGTYPE):
                        nonlocal entries, uncompressed
                        info = tarfile.TarInfo(name)
                        info.mtime = MTIME
                        info.type = kind
                        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
                        info.size = size if kind == tarfile.REGTYPE else 0
                        tar.addfile(info, _Source(produce, size) if info.size else None)
                        entries += 1
                        uncompressed += 512 + (size + 511) // 512 * 512

                    add("bench", kind=tarfile.DIRTYPE)
                    round_no = 0
                    while True:
                        gz.flush()  # so raw.tell() is the compressed size so far
                        done = raw.tell()
                        left = target - done
                        # One round adds ~1.6 members' worth of compressed bytes.
                        if left < 2 * member:
                            # The last member: random data compresses to its size
                            # plus ~0.03%; leave room for headers and the trailer.
                            last = max(0, int(left / 1.0005) - 8192)
                            if last:
                                add(f"bench/tail-{round_no:05d}.bin", last, random_bytes)
                            break
                        d = f"bench/part-{round_no // 16:03d}"
                        if round_no % 16 == 0:
                            add(d, kind=tarfile.DIRTYPE)
                        add(f"{d}/asset-{round_no:05d}.bin", member, random_bytes)
                        add(f"{d}/build-{round_no:05d}.log", 2 * member, text_bytes)
                        round_no += 1
            raw.flush()
            os.fsync(raw.fileno())
    return entries, uncompressed


FORMATS = ("gz", "zst")


def archive_path(target, fmt="gz"):
    return os.path.join(CACHE, f"archive-{size_label(target)}.tar.{fmt}")


def recompress_zst(gz_path, path):
    """The tar inside `gz_path` as a .tar.zst at `path` (zstd CLI, level 3)."""
    if shutil.which("zstd") is None:
        raise RuntimeError("the zstd CLI is not installed (Debian package zstd)")
    with written_atomically(path) as tmp:
        with open(tmp, "wb") as out:
            zstd = subprocess.Popen(["zstd", "-q", "-3", "--single-thread", "-c"],
                                    stdin=subprocess.PIPE, stdout=out)
            try:
                with gzip.open(gz_path, "rb") as tar:
                    shutil.copyfileobj(tar, zstd.stdin, 1 << 20)
            finally:
                zstd.stdin.close()
                rc = zstd.wait()
            if rc != 0:
                raise RuntimeError(f"zstd exited with {rc}")
            out.flush()
            os.fsync(out.fileno())


def ensure(target, force=False, quiet=False, fmt="gz"):
    """The cached archive of `target` compressed bytes, built if missing.

    fmt "zst": the same tar as the "gz" one, compressed with zstd."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown archive format {fmt!r}, expected one of {FORMATS}")
    os.makedirs(CACHE, exist_ok=True)
    path = archive_path(target, fmt)
    if force or not os.path.exists(path):
        t0 = time.monotonic()
        if fmt == "zst":
            recompress_zst(ensure(target, quiet=quiet), path)
            entries = "(the .tar.gz's)"
        else:
            entries, _ = build(path, target)
        if not quiet:
            size = os.path.getsize(path)
            print(
                f"built {path}: {size} bytes ({size / target * 100:.2f}% of target), "
                f"{entries} entries, {time.monotonic() - t0:.1f}s",
                file=sys.stderr,
            )
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("size", help="target compressed size: 256M, 1M, 32M, 1G, or bytes")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--format", choices=FORMATS, default="gz", help="compression (default gz)")
    args = ap.parse_args()
    print(ensure(parse_size(args.size), force=args.force, fmt=args.format))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The CPU cost of each stage of an upload, measured alone on one archive.

Python 3 standard library only: ctypes (bench/native_codecs.py) reaches
ISA-L, libz, libzstd and libarchive, the libraries the server links, so those
stages run in-process with reused buffers like the server rather than
through a CLI. Issue 14's target
compares the server's CPU-s/GiB with "the sum of the unavoidable stages
(recv, inflate, tar walk, SHA-256, write), each measured alone in the same
run": this module measures those stages on the benchmark's own archive, so
bench/bench.py prints them beside the server's figure. Absolute figures
swing between runs on this VM (page-cache memory the host has reclaimed
costs several times warm memory), so only ratios within one run mean much.

Unit: CPU seconds (user + system) per GiB of the COMPRESSED archive, the unit
of the issue's table, for every stage, even the ones that see the tar. CPU is
counted for the one thread or child process doing the stage only: the
thread's CPU clock (time.thread_time) for in-process stages (so a driver's
other threads do not count), os.wait4's rusage of that one child for the CLI
stages (their few ms of exec and start-up included).
Each stage runs `repeats` times (rounds of every stage in turn, so drift hits
all stages alike); the median, min and max are reported.

Stages (256 KiB = the server's chunk size everywhere):
  recv           loopback TCP: a child streams the file with socket.sendfile;
                 this thread recv_into()s a reused 256 KiB buffer and discards.
  write_cache    write the bytes to a new file in the scratch dir (which
                 should be on the benchmark's data disk) in 256 KiB writes,
                 then fdatasync. The unlink afterwards is not timed.
  write_direct   the same with O_DIRECT (skipped if the file system refuses).
  write_streamed the same through the page cache, with writeback started
                 every 8 MiB (sync_file_range WRITE) and the window before
                 it waited for and dropped (WAIT_BEFORE|WRITE|WAIT_AFTER,
                 then posix_fadvise DONTNEED): the other way issue 14 names
                 to keep the page cache out of a stream's cost.
  sha256         hashlib.sha256 (OpenSSL) over the in-memory bytes.
  inflate_isal   .tar.gz: ISA-L's isal_inflate (through ctypes), the server's
                 inflater, every gzip member, 256 KiB inputs into one reused
                 256 KiB output buffer.
  inflate_zlib   .tar.gz: libz the same way (the reference inflater).
  inflate_zstd   .tar.zst: libzstd (through ctypes) the same way.
  zstd_dc        .tar.zst: `zstd -dc FILE >/dev/null` (child), for comparison.
  igzip_dc       .tar.gz: `igzip -dc FILE >/dev/null` (ISA-L's CLI, child).
  tar_walk       libarchive (the server's library, through ctypes) walking the
                 raw tar the way storage/archive_check.cpp does: format tar
                 only, a read callback with no skip callback, next_header +
                 data_skip. The tar is decompressed once to the scratch dir
                 outside the timing and mmapped; the callback hands out
                 256 KiB blocks (no copy), so the figure includes one Python
                 callback per block (about 2000 per GiB of tar).
  bsdtar_tf      `bsdtar -tf TAR` (child), for comparison. NB on a regular file
                 bsdtar lseek()s over entry bodies (file_skip_lseek in
                 libarchive's archive_read_open_filename.c): headers only.
  bsdtar_tzf     .tar.gz: `bsdtar -tzf FILE` (zlib inflate + tar walk), the
                 issue's table has it; .tar.zst: `bsdtar --zstd -tf FILE`.
  read_cache     `cat FILE >/dev/null`: what reading the file from the page
                 cache costs the CLI children above. Reported, not subtracted.

The file is read once before any stage (into memory for the in-process
stages), which also warms the page cache for the CLI stages that read it.

unavoidable_sum = recv + inflate (inflate_zlib for .tar.gz, inflate_zstd for
.tar.zst: the server's default decoders) + tar_walk + sha256 + the cheaper
of the three writes (medians); isal_sum is the same with
inflate_isal, the decoder of a server with PORTAL_GZIP_INFLATER=isal. Either
is None, with the missing stages named, when a part was skipped.

    python3 bench/stages.py bench/.cache/archive-256M.tar.gz [--repeats 3]
        [--scratch DIR] [--json]
"""

import argparse
import errno
import gzip
import hashlib
import json
import mmap
import os
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time

import ctypes
import native_codecs
from native_codecs import CHUNK, Skip, thread_cpu

# sync_file_range(2): not in Python's os module.
STREAM_WINDOW = 8 * 1024 * 1024
SFR_WAIT_BEFORE, SFR_WRITE, SFR_WAIT_AFTER = 1, 2, 4
_libc = ctypes.CDLL(None, use_errno=True)
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def _sync_file_range(fd, offset, nbytes, flags):
    if _libc.sync_file_range(fd, offset, nbytes, flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCRATCH = os.path.join(HERE, ".cache", "stage-scratch")
GiB = 1 << 30
PAGE = mmap.PAGESIZE

# The sender of the recv stage: connects, streams the file, closes.
_SENDER = """
import socket, sys
host, port, path, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
with socket.create_connection((host, port), timeout=timeout) as s, open(path, "rb") as f:
    s.sendfile(f)
"""

DESCRIPTIONS = {
    "recv": "loopback TCP receive, recv_into 256 KiB (receiver only)",
    "write_cache": "write 256 KiB + fdatasync, page cache",
    "write_direct": "write 256 KiB + fdatasync, O_DIRECT",
    "write_streamed": "write 256 KiB + sync_file_range/DONTNEED per 8 MiB + fdatasync",
    "sha256": "hashlib.sha256 (OpenSSL), in memory",
    "inflate_isal": "ISA-L isal_inflate (via ctypes), reused 256 KiB output",
    "inflate_zlib": "zlib inflate (libz via ctypes), reused 256 KiB output",
    "inflate_zstd": "libzstd (via ctypes), reused 256 KiB output",
    "zstd_dc": "`zstd -dc` (child, CLI)",
    "igzip_dc": "ISA-L `igzip -dc` (child, CLI)",
    "tar_walk": "libarchive walking the raw tar, in process (ctypes)",
    "bsdtar_tf": "`bsdtar -tf TAR` (seeks over bodies)",
    "bsdtar_tzf": "`bsdtar -tzf` (zlib inflate + tar walk)",
    "bsdtar_t_zstd": "`bsdtar --zstd -tf` (zstd + tar walk)",
    "read_cache": "`cat FILE` from page cache (not subtracted)",
}


def _wait_child(proc, deadline):
    """Reaps `proc` (killing it at `deadline`), returns its own CPU seconds.

    os.wait4 gives that one child's rusage; a pidfd bounds the wait."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        pidfd = None
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                proc.kill()
        finally:
            os.close(pidfd)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if time.monotonic() > deadline:
        raise RuntimeError(f"{proc.args[0]} passed its deadline")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(proc.args)} exited with {proc.returncode}")
    return ru.ru_utime + ru.ru_stime


def _child_cpu(argv, deadline):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return _wait_child(proc, deadline)


class _Run:
    """One archive's inputs, prepared once outside the timing."""

    def __init__(self, path, scratch, fmt):
        self.path, self.scratch, self.fmt = path, scratch, fmt
        self.size = os.path.getsize(path)
        # A page-aligned in-memory copy (anonymous mmap, zero-padded to the
        # page), so O_DIRECT can write straight from it, no bounce buffer.
        self.data = mmap.mmap(-1, max(PAGE, (self.size + PAGE - 1) // PAGE * PAGE))
        with open(path, "rb", buffering=0) as f:
            view = memoryview(self.data)
            got = 0
            while got < self.size:
                n = f.readinto(view[got:self.size])
                if not n:
                    raise RuntimeError(f"{path} shrank while being read")
                got += n
            view.release()
        self.tar_path = None
        self.tar_size = None

    def deadline(self):
        return time.monotonic() + 60 + 240 * max(self.size, self.tar_size or 0) / GiB

    def close(self):
        if self.tar_path:
            try:
                os.unlink(self.tar_path)
            except FileNotFoundError:
                pass
        self.data.close()

    # -- the stages; each returns CPU seconds --------------------------------

    def recv(self):
        deadline = self.deadline()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(max(1.0, deadline - time.monotonic()))
            sender = subprocess.Popen(
                [sys.executable, "-c", _SENDER, "127.0.0.1", str(listener.getsockname()[1]),
                 self.path, str(deadline - time.monotonic())],
                stdin=subprocess.DEVNULL)
            reaped = False
            try:
                conn, _ = listener.accept()
                with conn:
                    # A blocking socket (settimeout would poll() before every
                    # recv); the kernel's SO_RCVTIMEO bounds each wait instead.
                    conn.settimeout(None)
                    idle = max(1, int(deadline - time.monotonic()))
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", idle, 0))
                    buf = bytearray(CHUNK)
                    got = 0
                    t0 = thread_cpu()
                    while True:
                        n = conn.recv_into(buf)
                        if not n:
                            break
                        got += n
                    cpu = thread_cpu() - t0
                reaped = True
                _wait_child(sender, deadline + 10)
            finally:
                if not reaped:
                    sender.kill()
                    sender.wait()
        if got != self.size:
            raise RuntimeError(f"recv got {got} of {self.size} bytes")
        return cpu

    def _write(self, direct, streamed=False):
        os.makedirs(self.scratch, exist_ok=True)
        target = os.path.join(self.scratch, f"write-{os.getpid()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | (os.O_DIRECT if direct else 0)
        try:
            fd = os.open(target, flags, 0o600)
        except OSError as e:
            if direct and e.errno == errno.EINVAL:
                raise Skip(f"O_DIRECT refused on {self.scratch} (EINVAL)")
            raise
        try:
            view = memoryview(self.data)
            # O_DIRECT: the tail is written padded to a whole page from the
            # zero-padded copy, then ftruncate()d to the real size (one fd,
            # one mode; the server may instead write its tail buffered).
            end = (self.size + PAGE - 1) // PAGE * PAGE if direct else self.size
            t0 = thread_cpu()
            try:
                off = window = dropped = 0
                while off < end:
                    off += os.write(fd, view[off:min(off + CHUNK, end)])
                    if streamed and off - window >= STREAM_WINDOW:
                        # Start this window's writeback; wait for the one
                        # before and drop its pages.
                        _sync_file_range(fd, window, off - window, SFR_WRITE)
                        if window > dropped:
                            _sync_file_range(fd, dropped, window - dropped,
                                             SFR_WAIT_BEFORE | SFR_WRITE | SFR_WAIT_AFTER)
                            os.posix_fadvise(fd, dropped, window - dropped, os.POSIX_FADV_DONTNEED)
                            dropped = window
                        window = off
                if direct and end != self.size:
                    os.ftruncate(fd, self.size)
                os.fdatasync(fd)
            except OSError as e:
                if direct and e.errno == errno.EINVAL:
                    raise Skip(f"O_DIRECT write refused on {self.scratch} (EINVAL)")
                raise
            cpu = thread_cpu() - t0
            view.release()
        finally:
            os.close(fd)
            os.unlink(target)  # not timed: the server keeps its files
        return cpu

    def write_cache(self):
        return self._write(direct=False)

    def write_direct(self):
        return self._write(direct=True)

    def write_streamed(self):
        return self._write(direct=False, streamed=True)

    def sha256(self):
        view = memoryview(self.data)
        h = hashlib.sha256()
        t0 = thread_cpu()
        for off in range(0, self.size, CHUNK):
            h.update(view[off:min(off + CHUNK, self.size)])
        h.digest()
        cpu = thread_cpu() - t0
        view.release()
        return cpu

    def inflate_zlib(self):
        cpu, inflated = native_codecs.zlib_inflate(self.data, self.size)
        if self.tar_size is not None and inflated != self.tar_size:
            raise RuntimeError(f"libz inflated {inflated} bytes, Python's gzip {self.tar_size}")
        return cpu

    def inflate_isal(self):
        cpu, inflated = native_codecs.isal_inflate(self.data, self.size)
        if self.tar_size is not None and inflated != self.tar_size:
            raise RuntimeError(f"ISA-L inflated {inflated} bytes, Python's gzip {self.tar_size}")
        return cpu

    def inflate_zstd(self):
        cpu, produced = native_codecs.zstd_decompress(self.data, self.size)
        if self.tar_size is not None and produced != self.tar_size:
            raise RuntimeError(f"libzstd produced {produced} bytes, the zstd CLI {self.tar_size}")
        return cpu

    def _tool(self, package, *argv):
        """CPU of one command-line tool's run, or Skip when it is missing."""
        if not shutil.which(argv[0]):
            raise Skip(f"{argv[0]} not installed (Debian package {package})")
        return _child_cpu(list(argv), self.deadline())

    def zstd_dc(self):
        return self._tool("zstd", "zstd", "-dcq", self.path)

    def igzip_dc(self):
        return self._tool("isal", "igzip", "-dc", self.path)

    def prepare_tar(self):
        """The raw tar in the scratch dir (outside the timing), synced so no
        writeback runs during the stages."""
        os.makedirs(self.scratch, exist_ok=True)
        self.tar_path = os.path.join(self.scratch, f"raw-{os.getpid()}.tar")
        with open(self.tar_path, "wb") as out:
            if self.fmt == "gz":
                # Every member; EOFError for a truncated one.
                with gzip.open(self.path, "rb") as tar:
                    shutil.copyfileobj(tar, out, CHUNK)
            else:
                if not shutil.which("zstd"):
                    raise Skip("zstd not installed (Debian package zstd)")
                subprocess.run(["zstd", "-dcq", self.path], stdout=out, check=True,
                               timeout=self.deadline() - time.monotonic())
            out.flush()
            os.fsync(out.fileno())
        self.tar_size = os.path.getsize(self.tar_path)

    def tar_walk(self):
        return native_codecs.libarchive_walk(self.tar_path, self.tar_size)

    def bsdtar_tf(self):
        return self._tool("libarchive-tools", "bsdtar", "-tf", self.tar_path)

    def bsdtar_tzf(self):
        return self._tool("libarchive-tools", "bsdtar", "-tzf", self.path)

    def bsdtar_t_zstd(self):
        return self._tool("libarchive-tools", "bsdtar", "--zstd", "-tf", self.path)

    def read_cache(self):
        return self._tool("coreutils", "cat", self.path)


# -- measuring, summing, printing ---------------------------------------------

def archive_format(path):
    if path.endswith((".tar.gz", ".tgz")):
        return "gz"
    if path.endswith((".tar.zst", ".tzst")):
        return "zst"
    raise ValueError(f"{path}: expected a .tar.gz or .tar.zst")


def stage_names(fmt):
    if fmt == "gz":
        return ["recv", "write_cache", "write_direct", "write_streamed", "sha256", "inflate_isal", "inflate_zlib",
                "igzip_dc", "tar_walk", "bsdtar_tf", "bsdtar_tzf", "read_cache"]
    return ["recv", "write_cache", "write_direct", "write_streamed", "sha256", "inflate_zstd", "zstd_dc",
            "tar_walk", "bsdtar_tf", "bsdtar_t_zstd", "read_cache"]


def _sum(stages, parts):
    """(median sum, which write, missing stage names)."""
    writes = [w for w in ("write_cache", "write_direct", "write_streamed")
              if stages.get(w) and not stages[w]["skipped"]]
    write = min(writes, key=lambda w: stages[w]["cpu_s_per_gib"]) if writes else None
    names = parts + [write or "write_cache"]
    missing = [n for n in names if not stages.get(n) or stages[n]["skipped"]]
    if missing:
        return None, write, missing
    return sum(stages[n]["cpu_s_per_gib"] for n in names), write, []


def server_inflate(fmt):
    """The stage that is the server's default decoder for the format."""
    return "inflate_zlib" if fmt == "gz" else "inflate_zstd"


def unavoidable_sum(stages, fmt):
    """recv + the server's inflate (zlib for gz, libzstd for zst) + tar_walk
    + sha256 + the cheaper write: (CPU-s/GiB or None, the write used,
    missing stages)."""
    return _sum(stages, ["recv", server_inflate(fmt), "tar_walk", "sha256"])


def isal_sum(stages, fmt):
    """The same with inflate_isal, PORTAL_GZIP_INFLATER=isal (.tar.gz only)."""
    if fmt != "gz":
        return None, None, ["inflate_isal (gzip only)"]
    return _sum(stages, ["recv", "inflate_isal", "tar_walk", "sha256"])


def measure(archive_path, scratch_dir=DEFAULT_SCRATCH, repeats=3):
    """Each stage alone on `archive_path`, `repeats` times; see the module
    docstring. CPU-s per GiB of the compressed archive."""
    fmt = archive_format(archive_path)
    run = _Run(archive_path, scratch_dir, fmt)
    names = stage_names(fmt)
    samples = {n: [] for n in names}
    skipped = {}
    try:
        try:
            run.prepare_tar()
        except Skip as e:
            for n in ("tar_walk", "bsdtar_tf"):
                skipped[n] = str(e)
        for _ in range(repeats):
            for n in names:
                if n in skipped:
                    continue
                try:
                    samples[n].append(getattr(run, n)())
                except Skip as e:
                    skipped[n] = str(e)
    finally:
        run.close()
    gib = run.size / GiB
    stages = {}
    for n in names:
        values = [s / gib for s in samples[n]]
        stages[n] = {
            "cpu_s_per_gib": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "repeats": len(values),
            "skipped": skipped.get(n),
        }
    total, write, missing = unavoidable_sum(stages, fmt)
    isal, _, isal_missing = isal_sum(stages, fmt)
    return {
        "archive": archive_path,
        "format": fmt,
        "compressed_bytes": run.size,
        "tar_bytes": run.tar_size,
        "repeats": repeats,
        "stages": stages,
        "unavoidable_sum": total,
        "unavoidable_write": write,
        "unavoidable_missing": missing,
        "isal_sum": isal,
        "isal_missing": isal_missing,
    }


def _fmt(v):
    return "–" if v is None else f"{v:.3f}"


def format_table(result):
    """A Markdown table: stage | CPU-s/GiB (median) | min–max | note."""
    inflate = server_inflate(result["format"])
    lines = [
        f"archive {os.path.basename(result['archive'])}: {result['compressed_bytes']} bytes "
        f"compressed, {result['tar_bytes']} bytes of tar, {result['repeats']} repeats",
        "",
        "| stage | CPU-s/GiB (median) | min–max | note |",
        "| --- | --- | --- | --- |",
    ]
    for name, s in result["stages"].items():
        note = DESCRIPTIONS.get(name, "")
        if s["skipped"]:
            lines.append(f"| {name} | skipped | | {s['skipped']} |")
        else:
            lines.append(f"| {name} | {_fmt(s['cpu_s_per_gib'])} | "
                         f"{_fmt(s['min'])}–{_fmt(s['max'])} | {note} |")
    write = result["unavoidable_write"] or "write"
    missing = result["unavoidable_missing"]
    lines.append(f"| **unavoidable sum** | **{_fmt(result['unavoidable_sum'])}** | | "
                 f"recv + {inflate} + tar_walk + sha256 + {write} (the cheapest write)"
                 + (f"; missing: {', '.join(missing)}" if missing else "") + " |")
    if result["format"] == "gz":
        missing = result["isal_missing"]
        lines.append(f"| isal sum | {_fmt(result['isal_sum'])} | | the same with inflate_isal"
                     + (f"; missing: {', '.join(missing)}" if missing else "") + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive", help="a .tar.gz or .tar.zst (bench/make_archive.py makes them)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scratch", default=DEFAULT_SCRATCH,
                    help="a directory on the data disk for the write stages and the raw tar")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()
    result = measure(args.archive, args.scratch, repeats=args.repeats)
    print(json.dumps(result, indent=2) if args.json else format_table(result))


if __name__ == "__main__":
    main()

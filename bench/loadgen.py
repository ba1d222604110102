#!/usr/bin/env python3
"""Concurrent upload load generator for upload-portal: plain PUT (SPEC §5.1)
or tus 1.0 (SPEC §5.2).

Python 3 standard library only. N threads each upload the same archive file
with `PUT /api/v1/uploads/<name>` (Authorization: Bearer, Content-Length),
the body streamed from disk with socket.sendfile (the file is never read
into this process's memory), then read the 201 JSON answer and compare its
`sha256` and `size` with the file's (hashed once, before the run).

With --tus, each thread instead creates a tus upload (`POST /api/v1/tus/`,
Upload-Length, Upload-Metadata filename) and sends the file in PATCHes on
the same keep-alive connection: one PATCH for the whole file, or
--patch-bytes each (the last one shorter), every 204's Upload-Offset
checked. The upload's time ends with the last PATCH's 204; the sha256 and
size are then read from `GET /api/v1/uploads/{id}`, outside the timing.

Reports
  - aggregate MiB/s: bytes of successful uploads / wall time from the first
    upload's start to the last one's finish;
  - per-upload latency min / median / p95 / max (connect to answer read);
  - failures (status, hash mismatch, exception), each named;
  - with --server-pid: the server's peak RSS (VmHWM from /proc/PID/status:
    a lifetime high-water mark, so start a fresh server per scenario), the
    largest VmRSS sampled during the run, and the server's CPU seconds
    (utime+stime from /proc/PID/stat, summed over its threads, delta across
    the run) per GiB uploaded;
  - this process's own CPU seconds and the load average before and after
    (the client shares the machine with the server).

With --target nginx or tus-node the same load goes to a store-only peer
that bench/peers.py started (issue 14): nginx's WebDAV location
(`PUT /uploads/<name>`, 201 or 204 with no body) or @tus/server (tus on
`/files/`, as --tus does), neither with an Authorization header. A peer
answers no sha256, so nothing is checked here: `upload_ids` holds the
uploads' names (nginx) or tus ids, and the driver checks the stored files.
--server-pids takes all of a peer's processes (nginx: master and workers):
CPU, VmHWM and sampled RSS are then summed over them.

The last stdout line is one JSON object with every figure (ids of the
created uploads included, so a driver can delete them).

    python3 bench/loadgen.py --port 8080 --token upt_... --file a.tar.gz -n 4 \
        --server-pid 1234 [--tus [--patch-bytes 8388608]]
    python3 bench/loadgen.py --target nginx --port 8081 --file a.tar.gz -n 4 \
        --server-pids 2345,2346,2347
"""

import argparse
import base64
import hashlib
import http.client
import json
import math
import os
import statistics
import sys
import threading
import time
import urllib.parse

MiB = 1 << 20
GiB = 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Where each target takes a PUT and a tus creation, and whether it wants the
# API token. nginx has no tus; tus-node has no plain PUT.
TARGETS = {
    "portal": {"put": "/api/v1/uploads/", "tus": "/api/v1/tus/", "auth": True},
    "nginx": {"put": "/uploads/", "tus": None, "auth": False},
    "tus-node": {"put": None, "tus": "/files/", "auth": False},
}


# --------------------------------------------------------------------------
# /proc


def proc_cpu_seconds(pid):
    """utime+stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()  # after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / CLK_TCK


def children_pids(ppid):
    """The live children of `ppid` (nginx's workers under its master,
    PostgreSQL's backends under its postmaster)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue  # it ended
        if int(data[data.rindex(")") + 2:].split()[1]) == ppid:  # field 4 of stat(5)
            out.append(int(entry))
    return out


def children_cpu_seconds(ppid):
    """utime+stime of the live children of `ppid`, in seconds: PostgreSQL's
    backends and background processes under its postmaster. The server's
    connections (its backends) live from its start to its stop, so a
    difference across the run is the database work the uploads cost."""
    total = 0.0
    for pid in children_pids(ppid):
        try:
            total += proc_cpu_seconds(pid)
        except OSError:
            continue  # it ended
    return total


def thread_cpu_seconds(pid):
    """{tid: (name, utime+stime seconds)} for every thread of a process."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                data = f.read()
        except OSError:
            continue  # the thread ended
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def server_cpu_seconds(pids):
    """utime+stime summed over the server's processes, or None without any.
    Unlike children_cpu_seconds, a server process that ended is an error:
    its CPU would silently drop out of the difference."""
    return sum(proc_cpu_seconds(pid) for pid in pids) if pids else None


def server_thread_cpu_seconds(pids):
    """thread_cpu_seconds over all the server's processes (tids are unique
    system-wide)."""
    out = {}
    for pid in pids:
        out.update(thread_cpu_seconds(pid))
    return out


def proc_status_kib(pid, key):
    """A 'kB' field of /proc/PID/status (VmHWM, VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


class RssSampler(threading.Thread):
    """Samples the server's VmRSS (summed over its processes) every
    `interval` seconds (max kept)."""

    def __init__(self, pids, interval=0.1):
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.max_kib = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                rss = sum(proc_status_kib(pid, "VmRSS") or 0 for pid in self.pids)
            except OSError:
                return
            self.max_kib = max(self.max_kib, rss)
            self.stop.wait(self.interval)


# --------------------------------------------------------------------------
# one upload


def archive_suffix(path):
    """The upload's name ends as the file's: the server checks a name's
    suffix against the compression it finds (SPEC §5.3: 415 otherwise)."""
    return ".tar.zst" if path.endswith(".tar.zst") else ".tar.gz"


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(MiB)
            if not block:
                return h.hexdigest()
            h.update(block)


class Result:
    def __init__(self, index):
        self.index = index
        self.start = None
        self.end = None
        self.status = None
        self.error = None
        self.upload_id = None
        self.body = None

    @property
    def ok(self):
        return self.error is None

    @property
    def latency(self):
        return self.end - self.start


def check_upload_object(obj, size, digest, result):
    """The server's upload object (SPEC §6) against the file that was sent."""
    result.upload_id = obj.get("id")
    if obj.get("sha256") != digest:
        result.error = f"sha256 mismatch: server {obj.get('sha256')!r}, file {digest}"
    elif obj.get("size") != size:
        result.error = f"size mismatch: server {obj.get('size')!r}, file {size}"


def auth_headers(args):
    return {"Authorization": f"Bearer {args.token}"} if TARGETS[args.target]["auth"] else {}


def upload(args, index, size, digest, barrier, result):
    name = f"{args.name_prefix}-{index:04d}{archive_suffix(args.file)}"
    portal = args.target == "portal"
    if barrier:
        barrier.wait()
    result.start = time.monotonic()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    try:
        conn.putrequest("PUT", TARGETS[args.target]["put"] + name, skip_accept_encoding=True)
        for key, value in auth_headers(args).items():
            conn.putheader(key, value)
        conn.putheader("Content-Type", "application/gzip")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        send_error = None
        try:
            with open(args.file, "rb") as f:
                sent = conn.sock.sendfile(f, 0, size)
            if sent != size:
                send_error = f"sendfile sent {sent} of {size} bytes"
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The server may have answered early (4xx) and closed: read it.
            send_error = f"send: {exc!r}"
        try:
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            result.error = f"{send_error + '; ' if send_error else ''}response: {exc!r}"
            return
        result.status = resp.status
        result.body = body[:500]
        # WebDAV answers 204 when the PUT replaced a file (RFC 4918 §9.7.1).
        if resp.status not in ((201,) if portal else (201, 204)):
            result.error = f"HTTP {resp.status}: {body[:300].decode('utf-8', 'replace')}"
            return
        if send_error:
            result.error = f"{resp.status} but {send_error}"
            return
        if not portal:
            result.upload_id = name  # the driver checks the stored file
            return
        try:
            obj = json.loads(body)
        except ValueError:
            result.error = f"201 with a body that is not JSON: {body[:200]!r}"
            return
        check_upload_object(obj, size, digest, result)
    except Exception as exc:  # connection refused, timeout, ...
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.end = time.monotonic()
        conn.close()


def send_file_part(conn, path, offset, count):
    """sendfile() `count` bytes of `path` from `offset` into the connection."""
    with open(path, "rb") as f:
        sent = conn.sock.sendfile(f, offset, count)
    if sent != count:
        raise OSError(f"sendfile sent {sent} of {count} bytes")


def tus_upload(args, index, size, digest, barrier, result):
    name = f"{args.name_prefix}-{index:04d}{archive_suffix(args.file)}"
    tus_headers = {**auth_headers(args), "Tus-Resumable": "1.0.0"}
    if barrier:
        barrier.wait()
    result.start = time.monotonic()
    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    try:
        filename = base64.b64encode(name.encode()).decode()
        step = args.patch_bytes or size
        # With --creation-with-upload the first PATCH's bytes ride in the POST.
        first = min(step, size) if args.creation_with_upload else 0
        conn.putrequest("POST", TARGETS[args.target]["tus"], skip_accept_encoding=True)
        for key, value in tus_headers.items():
            conn.putheader(key, value)
        conn.putheader("Upload-Length", str(size))
        conn.putheader("Upload-Metadata", f"filename {filename}")
        if first:
            conn.putheader("Content-Type", "application/offset+octet-stream")
        conn.putheader("Content-Length", str(first))
        conn.endheaders()
        if first:
            send_file_part(conn, args.file, 0, first)
        resp = conn.getresponse()
        body = resp.read()
        result.status = resp.status
        if resp.status != 201:
            result.error = f"creation: HTTP {resp.status}: {body[:300].decode('utf-8', 'replace')}"
            return
        if int(resp.getheader("Upload-Offset", "0")) != first:
            result.error = f"creation: Upload-Offset {resp.getheader('Upload-Offset')}, expected {first}"
            return
        # The path, whether Location is absolute or relative (RFC 9110 §10.2.2).
        path = urllib.parse.urlsplit(resp.getheader("Location", "")).path
        upload_id = path.rstrip("/").rsplit("/", 1)[-1]
        offset = first
        while offset < size:
            count = min(step, size - offset)
            conn.putrequest("PATCH", path, skip_accept_encoding=True)
            for key, value in tus_headers.items():
                conn.putheader(key, value)
            conn.putheader("Upload-Offset", str(offset))
            conn.putheader("Content-Type", "application/offset+octet-stream")
            conn.putheader("Content-Length", str(count))
            conn.endheaders()
            send_file_part(conn, args.file, offset, count)
            resp = conn.getresponse()
            body = resp.read()
            result.status = resp.status
            if resp.status != 204:
                result.error = (f"PATCH at {offset}: HTTP {resp.status}: "
                                f"{body[:300].decode('utf-8', 'replace')}")
                return
            answered = int(resp.getheader("Upload-Offset", "-1"))
            if answered != offset + count:
                result.error = f"PATCH at {offset}: Upload-Offset {answered}, expected {offset + count}"
                return
            offset += count
        result.end = time.monotonic()
        # Checked after the run (verify_tus_uploads): a GET here would load
        # the server and the client inside the measured window, which a PUT,
        # whose 201 carries the upload object, does not.
        result.upload_id = upload_id
    except Exception as exc:  # connection refused, timeout, ...
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if result.end is None:
            result.end = time.monotonic()
        conn.close()


def verify_tus_uploads(args, results, size, digest):
    """Each finished tus upload's object (GET /api/v1/uploads/{id}, SPEC §6)
    against the file: its sha256 and size, as a PUT's 201 is checked."""
    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    try:
        for result in results:
            if not result.ok or result.upload_id is None:
                continue
            conn.request("GET", f"/api/v1/uploads/{result.upload_id}",
                         headers={"Authorization": f"Bearer {args.token}"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                result.error = f"GET upload: HTTP {resp.status}: {body[:300].decode('utf-8', 'replace')}"
                continue
            check_upload_object(json.loads(body), size, digest, result)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# the run


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(1, math.ceil(p / 100 * len(s)))
    return s[k - 1]


def run(args):
    size = os.path.getsize(args.file)
    t0 = time.monotonic()
    digest = sha256_of(args.file)
    hash_seconds = time.monotonic() - t0
    # Warm the page cache so every thread's sendfile reads from memory.
    with open(args.file, "rb") as f:
        while f.read(8 * MiB):
            pass

    pids = args.server_pids
    load_before = loadavg()
    cpu_before = server_cpu_seconds(pids)
    db_before = children_cpu_seconds(args.db_pid) if args.db_pid else None
    threads_before = server_thread_cpu_seconds(pids)
    sampler = RssSampler(pids) if pids else None
    if sampler:
        sampler.start()
    own_before = os.times()

    # Each of the N clients uploads `rounds` times, one after the other: a
    # round of small uploads is over in a fraction of a second, too short a
    # window to measure a rate in; several rounds measure it in steady state.
    n, rounds = args.concurrency, args.rounds
    results = [Result(i) for i in range(n * rounds)]
    barrier = threading.Barrier(n)
    one = tus_upload if args.tus else upload

    def client(i):
        for r in range(rounds):
            k = r * n + i
            one(args, k, size, digest, barrier if r == 0 else None, results[k])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    own_after = os.times()
    cpu_after = server_cpu_seconds(pids)
    db_after = children_cpu_seconds(args.db_pid) if args.db_pid else None
    threads_after = server_thread_cpu_seconds(pids)
    if sampler:
        sampler.stop.set()
        sampler.join()
    hwm_kib = sum(proc_status_kib(pid, "VmHWM") or 0 for pid in pids) if pids else None
    load_after = loadavg()
    if args.tus and args.target == "portal":
        verify_tus_uploads(args, results, size, digest)

    started = [r for r in results if r.start is not None]
    first = min(r.start for r in started)
    last = max(r.end for r in started)
    wall = last - first
    good = [r for r in results if r.ok]
    bad = [r for r in results if not r.ok]
    total_bytes = size * len(good)
    lat = [r.latency for r in good]
    server_cpu = (cpu_after - cpu_before) if pids else None
    # The busiest server threads: is one thread the bottleneck (busy ~ 1.0)?
    busiest = sorted(
        ((name, after - threads_before.get(tid, (name, 0.0))[1], tid)
         for tid, (name, after) in threads_after.items()),
        key=lambda t: -t[1])[:6]
    attempted_gib = size * len(results) / GiB

    report = {
        "label": args.label,
        "target": args.target,
        "protocol": "tus" if args.tus else "put",
        "patch_bytes": (args.patch_bytes or size) if args.tus else None,
        "creation_with_upload": bool(args.tus and args.creation_with_upload),
        "file": os.path.basename(args.file),
        "file_bytes": size,
        "sha256": digest,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "ok": len(good),
        "failures": len(bad),
        "verified": ("sha256 and size from the server's upload object" if args.target == "portal"
                     else "by the driver from stored files"),
        "failure_details": [{"index": r.index, "status": r.status, "error": r.error} for r in bad],
        "total_bytes": total_bytes,
        "wall_seconds": round(wall, 4),
        "mib_per_s": round(total_bytes / MiB / wall, 2) if wall > 0 else None,
        "latency_seconds": {
            "min": round(min(lat), 4),
            "median": round(statistics.median(lat), 4),
            "p95": round(percentile(lat, 95), 4),
            "max": round(max(lat), 4),
        } if lat else None,
        "server_pid": pids[0] if pids else None,
        "server_pids": pids,
        "server_vmhwm_mib": round(hwm_kib / 1024, 1) if hwm_kib is not None else None,
        "server_max_sampled_rss_mib": round(sampler.max_kib / 1024, 1) if sampler else None,
        "server_cpu_seconds": round(server_cpu, 3) if server_cpu is not None else None,
        "db_cpu_seconds": round(db_after - db_before, 3) if args.db_pid else None,
        # CPU per GiB of the bytes the server was sent (failures included).
        "server_cpu_seconds_per_gib": round(server_cpu / attempted_gib, 3) if server_cpu is not None else None,
        "server_busiest_threads": [
            {"tid": tid, "name": name, "cpu_seconds": round(cpu, 2),
             "busy": round(cpu / wall, 2) if wall > 0 else None}
            for name, cpu, tid in busiest if cpu > 0],
        "client_cpu_seconds": round(
            (own_after.user - own_before.user) + (own_after.system - own_before.system), 3),
        "client_hash_seconds": round(hash_seconds, 3),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "nproc": os.cpu_count(),
        "upload_ids": [r.upload_id for r in good],
    }
    return report


def print_table(rep, out=sys.stdout):
    lat = rep["latency_seconds"] or {}
    rows = [
        ("scenario", rep["label"] or "-"),
        ("target", rep["target"]),
        ("archive", f"{rep['file']} ({rep['file_bytes'] / MiB:.2f} MiB)"),
        ("concurrency x rounds", f"{rep['concurrency']} x {rep['rounds']}"),
        ("ok / failed", f"{rep['ok']} / {rep['failures']}"),
        ("wall time", f"{rep['wall_seconds']:.2f} s"),
        ("aggregate", f"{rep['mib_per_s']} MiB/s" if rep["mib_per_s"] is not None else "-"),
        ("latency min/med/p95/max",
         " / ".join(f"{lat[k]:.2f}" for k in ("min", "median", "p95", "max")) + " s" if lat else "-"),
        ("server peak RSS (VmHWM)", f"{rep['server_vmhwm_mib']} MiB" if rep["server_pids"] else "-"),
        ("server max sampled RSS", f"{rep['server_max_sampled_rss_mib']} MiB" if rep["server_pids"] else "-"),
        ("server CPU", f"{rep['server_cpu_seconds']} s ({rep['server_cpu_seconds_per_gib']} s/GiB)"
         if rep["server_pids"] else "-"),
        ("server busiest threads", ", ".join(
            f"{t['name']}:{t['cpu_seconds']}s ({t['busy']:.0%})" for t in rep["server_busiest_threads"][:4]) or "-"),
        ("client CPU", f"{rep['client_cpu_seconds']} s"),
        ("load avg before -> after",
         f"{' '.join(map(str, rep['loadavg_before']))} -> {' '.join(map(str, rep['loadavg_after']))}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}", file=out)
    for f in rep["failure_details"][:10]:
        print(f"  FAILED #{f['index']}: {f['error']}", file=out)
    if len(rep["failure_details"]) > 10:
        print(f"  ... and {len(rep['failure_details']) - 10} more failures", file=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", default=os.environ.get("PORTAL_BENCH_TOKEN"),
                    help="API token (default: $PORTAL_BENCH_TOKEN)")
    ap.add_argument("--file", required=True, help="the archive to upload")
    ap.add_argument("-n", "--concurrency", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="uploads per client, one after the other (default 1)")
    ap.add_argument("--target", choices=sorted(TARGETS), default="portal",
                    help="portal (default), or a store-only peer of bench/peers.py")
    ap.add_argument("--server-pid", type=int, help="read the server's RSS and CPU from /proc")
    ap.add_argument("--server-pids", default="",
                    help="PID,PID,...: the server's processes, RSS and CPU summed over them")
    ap.add_argument("--db-pid", type=int,
                    help="PostgreSQL's postmaster: read its children's CPU from /proc")
    ap.add_argument("--name-prefix", default="bench", help="uploads are named PREFIX-NNNN.tar.gz (or .tar.zst, as the file)")
    ap.add_argument("--label", default="", help="scenario name for the report")
    ap.add_argument("--tus", action="store_true", help="upload with tus 1.0 (POST, then PATCHes)")
    ap.add_argument("--patch-bytes", type=int, default=0,
                    help="with --tus: bytes per PATCH (0: the whole file in one PATCH)")
    ap.add_argument("--creation-with-upload", action="store_true",
                    help="with --tus: the first PATCH's bytes go in the creation POST")
    ap.add_argument("--timeout", type=float, default=600, help="socket timeout, seconds")
    args = ap.parse_args()
    if TARGETS[args.target]["auth"] and not args.token:
        ap.error("--token or $PORTAL_BENCH_TOKEN is required")
    if args.target == "tus-node":
        args.tus = True  # @tus/server speaks nothing else
    if not TARGETS[args.target]["tus" if args.tus else "put"]:
        ap.error(f"--target {args.target} does not take {'tus' if args.tus else 'a plain PUT'}")
    try:
        listed = [int(p) for p in args.server_pids.split(",") if p.strip()]
    except ValueError:
        ap.error(f"--server-pids {args.server_pids!r}: not a comma list of PIDs")
    # Either option, or both: each process counted once, in the order given.
    args.server_pids = list(dict.fromkeys(([args.server_pid] if args.server_pid else []) + listed))
    rep = run(args)
    print_table(rep)
    print(json.dumps(rep, separators=(",", ":")))
    sys.exit(0 if rep["failures"] == 0 else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark driver: a throwaway PostgreSQL, a fresh server per scenario,
bench/loadgen.py against it, and a CPU profile.

Python 3 standard library only. Reuses tests/support/portal_harness.py
(PYTHONPATH=tests/support) for the cluster (PostgresCluster) and for running
the binary (Portal); only the server's data dir is moved from /tmp to the
real disk (bench/.cache/data), as production keeps it on the volume.

Per scenario "NxSIZE[@PEER][+tus[=PATCH]][+zst][+rounds=R]..." (e.g.
4x256M, 16x256M+tus=8M: tus in 8 MiB PATCHes, 16x256M@nginx; see Scenario):
  1. make (or reuse) the archive with bench/make_archive.py;
  2. wait out ext4's recently-deleted window when the last scenario deleted
     many files (settle_deletions: a file system artefact, not the server's);
  3. start a fresh `upload-portal serve` (VmHWM is a lifetime high-water
     mark, so each scenario's peak RSS is its own), or the peer
     (bench/peers.py: nginx WebDAV PUT, @tus/server; store only);
  4. run loadgen.py with N concurrent uploads and the server's PID(s);
  5. delete the uploads through the API (DELETE /api/v1/uploads/{id}), stop
     the server with SIGTERM (exit code checked), wipe the data dir; for a
     peer, check every stored file's size and sha256 against the archive.

--stages SIZE measures each stage alone (bench/stages.py: receive, inflate,
tar walk, SHA-256, write) on that archive in the same run. --targets runs
the scenarios of issues 12 and 14's targets and the stages, and prints one
verdict per target (bench/targets.py); --smoke runs every part at a tiny
size (CI's check that the benchmark works; nothing is timed).
--pin-server CPUS runs the server alone on those CPUs and everything else
(PostgreSQL, the load generator, the peers) on the rest, as in a deployment
where they are other machines (run 19). --pin-system CPUS runs the system
under test there, the server with its PostgreSQL (and a peer in its
scenarios), and only the load generator and this driver on the rest (run 22).
--binary-b PATH runs the scenarios marked +b on a second build, so that two
builds are compared in one run with their scenarios alternated (run 24).

Profile (--profile): `perf` (perf record -g on the running server during one
scenario, default 4x256M) needs working perf events; `callgrind` runs the
server under valgrind --tool=callgrind for a small upload (1x32M) and
annotates it; `auto` (default) takes perf if `perf stat -e instructions true`
counts instructions, else callgrind. `both` runs callgrind and, if
`perf record -e cpu-clock` works, also a software-clock perf profile.
--syscalls (default 1x32M) counts the server's system calls with strace -f -c
(body bytes per recvmsg is the figure that matters).

Writes bench/.cache/results/<timestamp>/ (loadgen JSON lines, server logs,
profiles, reports) and prints a summary table.
"""

import argparse
import datetime
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, HERE)

import make_archive  # noqa: E402
from ext4_settle import note_deleted, settle_deletions  # noqa: E402
from scenario import Scenario  # noqa: E402
from loadgen import children_pids, proc_status_kib, sha256_of  # noqa: E402
import peers  # noqa: E402
import stages  # noqa: E402
import targets  # noqa: E402
from profile_report import (callgrind_stages, format_stages, format_syscalls, perf_stages,  # noqa: E402
                            perf_threads, reprofile)
from portal_harness import Portal, PostgresCluster  # noqa: E402

CACHE = os.path.join(HERE, ".cache")
DATA_DIR = os.path.join(CACHE, "data")
MiB = 1 << 20

# The server's settings for every scenario; everything else is the default.
# The per-user concurrency and start-rate limits (8, 60/min) are raised so the
# 16- and 64-way scenarios measure the pipeline, not the 429 path.
SERVER_ENV = {
    "PORTAL_MAX_UPLOAD_BYTES": str(1 << 30),
    "PORTAL_UPLOADS_PER_USER": "256",
    "PORTAL_UPLOADS_TOTAL": "256",
    "PORTAL_UPLOAD_STARTS_PER_MINUTE": "100000",
    # the product's default deadline, not the test harness's long one
    "PORTAL_DB_DEADLINE_MS": None,
}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def busy_processes(limit=5):
    """The top CPU consumers right now (the machine is shared)."""
    r = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                       capture_output=True, text=True)
    return [" ".join(l.split()) for l in r.stdout.splitlines()[:limit]]


def wipe_data_dir():
    note_deleted(sum(len(files) for _, _, files in os.walk(DATA_DIR)))
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def start_server(pg_url, binary, wrap=None, listen_timeout=30, extra_env=None):
    """A fresh server with its data dir on the real disk. wrap: argv prefix
    (valgrind ...) run in front of the binary."""
    wipe_data_dir()
    env = dict(SERVER_ENV, PORTAL_DATA_DIR=DATA_DIR, **(extra_env or {}))
    if wrap:
        # The harness makes a relative binary absolute against the cwd:
        # the wrapper is a command on PATH.
        p = Portal(pg_url, env=env, binary=shutil.which(wrap[0]) or wrap[0])
        args = tuple(wrap[1:]) + (binary, "serve")
    else:
        p = Portal(pg_url, env=env, binary=binary)
        args = ("serve",)
    p.data_dir = DATA_DIR  # Portal.start() creates it
    p.start(args=args, wait=True, timeout=listen_timeout)
    if SERVER_CPUS:
        pin_process(p.proc.pid, SERVER_CPUS)
    return p


# --pin-server / --pin-system: the server's CPUs; everything else (the load
# generator, this driver and, without PIN_SYSTEM, PostgreSQL and the peers)
# runs on the others.
SERVER_CPUS = None
PIN_SYSTEM = False


def pin_process(pid, cpus):
    """Every thread of pid onto cpus; threads it starts later inherit it. A
    thread or process that ends meanwhile is skipped."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return
    for tid in tids:
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass


def pin_tree(pid, cpus):
    """pid, then its children: PostgreSQL's postmaster first, so that a
    backend it forks while its children are listed inherits the CPUs."""
    pin_process(pid, cpus)
    for child in children_pids(pid):
        pin_process(child, cpus)


def delete_uploads(portal, token, ids):
    bad = []
    for upload_id in ids:
        status, _, body = portal.request(
            "DELETE", f"/api/v1/uploads/{upload_id}",
            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if status != 204:
            bad.append((upload_id, status, body[:200]))
    note_deleted(len(ids) - len(bad))
    return bad


def stop_server(portal, outdir, label, timeout=60):
    """SIGTERM, wait, save its output; returns (exit code, problems)."""
    problems = []
    try:
        code = portal.terminate(timeout=timeout)
    except AssertionError as exc:
        code = None
        problems.append(f"server did not exit within {timeout}s of SIGTERM: {exc}")
    if code not in (0, None):
        problems.append(f"server exited {code} after SIGTERM")
    with open(os.path.join(outdir, f"server-{label}.log"), "w") as f:
        f.write(portal.output())
    for entry in portal.logs:
        if entry.get("level") in ("error", "fatal", "critical"):
            problems.append(f"server logged {entry.get('level')}: {json.dumps(entry)[:300]}")
    portal.cleanup()
    return code, problems


# PostgreSQL's postmaster (main() sets it): the database's CPU is measured
# beside the server's.
DB_PID = None


def run_loadgen(portal, token, archive, n, label, outdir, pid=None, extra=()):
    return run_loadgen_on(portal.port, token, archive, n, label, outdir,
                          pids=[pid] if pid else None, extra=extra)


def run_loadgen_on(port, token, archive, n, label, outdir, pids=None, extra=()):
    cmd = [
        sys.executable, os.path.join(HERE, "loadgen.py"),
        "--port", str(port),
        "--file", archive,
        "-n", str(n),
        "--label", label,
        "--name-prefix", "bench-" + re.sub(r"[^A-Za-z0-9._-]", "-", label),
        *extra,
    ]
    if pids:
        cmd += ["--server-pids", ",".join(map(str, pids))]
    if DB_PID and token:
        cmd += ["--db-pid", str(DB_PID)]
    env = dict(os.environ, PORTAL_BENCH_TOKEN=token or "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    sys.stdout.write(proc.stdout.rsplit("\n", 2)[0] + "\n")
    if proc.stderr.strip():
        sys.stdout.write(proc.stderr)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"loadgen printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    rep = json.loads(lines[-1])
    with open(os.path.join(outdir, "loadgen.jsonl"), "a") as f:
        f.write(lines[-1] + "\n")
    return rep


# --binary-b: the server that a scenario with +b runs.
BINARY_B = None


def server_binary(sc, binary):
    """The server that scenario sc runs: --binary-b for a +b one (main()
    refuses a +b scenario without it)."""
    return BINARY_B if sc.binary_b else binary


def scenario(pg_url, binary, token, spec, outdir, perf_profile=None):
    sc = Scenario(spec)
    if sc.target != "portal":
        return peer_scenario(sc, outdir)
    binary = server_binary(sc, binary)
    n = sc.n
    archive = sc.archive()
    label = sc.label + ("-perf" if perf_profile else "")
    settle_deletions(CACHE, log)
    log(f"scenario {label}: load average {loadavg()}")
    busy = busy_processes()
    log(f"busiest processes: {busy}")
    portal = start_server(pg_url, binary, extra_env=sc.env)
    pid = portal.proc.pid
    idle_rss = (proc_status_kib(pid, "RssAnon"), proc_status_kib(pid, "VmRSS"))
    perf = None
    if perf_profile:
        event, path = perf_profile
        perf = subprocess.Popen(
            ["perf", "record", "-e", event, "-g", "-p", str(pid), "-o", path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # let perf attach to every thread first
    problems = []
    rep = None
    try:
        rep = run_loadgen(portal, token, archive, n, label, outdir, pid=pid,
                          extra=sc.loadgen_args())
        if sc.idle_seconds:
            rep.update(watch_idle_rss(pid, idle_rss, sc.idle_seconds))
    finally:
        if perf:
            perf.send_signal(signal.SIGINT)
            _, err = perf.communicate(timeout=120)
            with open(os.path.join(outdir, f"perf-record-{label}.log"), "wb") as f:
                f.write(err)
        bad = delete_uploads(portal, token, rep["upload_ids"] if rep else [])
        if bad:
            problems.append(f"DELETE failed for {len(bad)} uploads: {bad[:3]}")
        code, stop_problems = stop_server(portal, outdir, label)
        problems += stop_problems
        wipe_data_dir()
    rep["server_exit_code"] = code
    rep["busy_processes_at_start"] = busy
    rep["problems"] = problems
    for p in problems:
        log(f"PROBLEM in {label}: {p}")
    return rep


def watch_idle_rss(pid, idle, seconds):
    """After a burst: the server's RSS once a second for up to `seconds`,
    until it is within 20 % of what it was idle before the load (issue 14).
    Anonymous memory (RssAnon: heap, stacks, buffers) is reported beside it:
    the burst also faults in code the idle server had never run (RssFile:
    clean pages of the binary and its libraries), which stays counted."""
    idle_anon, idle_total = idle
    bound = 1.2 * idle_total
    started = time.monotonic()
    now = proc_status_kib(pid, "VmRSS")
    while now > bound and time.monotonic() - started < seconds:
        time.sleep(1.0)  # a sampling period, not a synchronisation
        now = proc_status_kib(pid, "VmRSS")
    return {
        "idle_rss_mib": round(idle_total / 1024, 1),
        "idle_rss_anon_mib": round(idle_anon / 1024, 1),
        "rss_after_idle_mib": round(now / 1024, 1),
        "rss_anon_after_idle_mib": round(proc_status_kib(pid, "RssAnon") / 1024, 1),
        "rss_after_idle_seconds": round(time.monotonic() - started, 1),
        "rss_after_idle_ratio": round(now / idle_total, 3) if idle_total else None,
    }


def peer_scenario(sc, outdir):
    """The same load against a store-only peer (bench/peers.py). Peers send
    no sha256 back, so every stored file is checked here against the
    archive's size and sha256 after the load: a peer that loses bytes
    fails like the portal would."""
    archive = sc.archive()
    settle_deletions(CACHE, log)
    log(f"scenario {sc.label}: load average {loadavg()}")
    workdir = os.path.join(CACHE, "peers", sc.target)
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        peer = peers.start_nginx(workdir) if sc.target == "nginx" else peers.start_tus_node(workdir)
    except peers.PeerUnavailable as exc:
        log(f"scenario {sc.label} skipped: {exc}")
        return {"label": sc.label, "skipped": str(exc), "ok": 0, "failures": 0,
                "failure_details": [], "problems": [],
                "skip_is_machine_limit": isinstance(exc, peers.NodeTooOld)}
    except (peers.PeerExited, TimeoutError, OSError) as exc:
        # A peer that should run and does not: the run goes on, its targets
        # get "n/a", and the run ends with this as a problem.
        log(f"PROBLEM in {sc.label}: {sc.target} did not start: {exc}")
        return {"label": sc.label, "skipped": f"{sc.target} did not start", "ok": 0,
                "failures": 0, "failure_details": [],
                "problems": [f"{sc.target} did not start: {exc}"]}
    if PIN_SYSTEM:
        for pid in peer.pids():  # nginx's master and its workers
            pin_process(pid, SERVER_CPUS)
    problems = []
    try:
        rep = run_loadgen_on(peer.port, None, archive, sc.n, sc.label, outdir,
                             pids=peer.pids(), extra=sc.loadgen_args())
        problems += verify_stored(peer.stored_files(), archive, rep["ok"])
    finally:
        stored = len(peer.stored_files())
        code = peer.stop()
        peer.wipe()
        note_deleted(stored)
        shutil.rmtree(workdir, ignore_errors=True)
    if code not in (0, None):
        problems.append(f"{sc.target} exited {code} when stopped")
    rep["problems"] = problems
    for p in problems:
        log(f"PROBLEM in {sc.label}: {p}")
    return rep


def verify_stored(files, archive, expected):
    size = os.path.getsize(archive)
    digest = sha256_of(archive)
    problems = []
    if len(files) != expected:
        problems.append(f"{len(files)} files stored, {expected} uploads answered as stored")
    for path, stored_size in files:
        if stored_size != size or sha256_of(path) != digest:
            problems.append(f"stored file {path} differs from the archive")
            break
    return problems


# --------------------------------------------------------------------------
# profiles


def perf_events_work():
    r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return False
    return not re.search(r"not supported|not counted", r.stderr)


def perf_record_works(event):
    r = subprocess.run(["perf", "record", "-e", event, "-o", "/dev/null", "true"],
                       capture_output=True, text=True)
    return r.returncode == 0


def callgrind_control(pid, state):
    r = subprocess.run(["callgrind_control", "-i", state, pid], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "OK" not in r.stdout:
        raise RuntimeError(f"callgrind_control -i {state} {pid} failed: {r.stdout} {r.stderr}")


def callgrind_profile(pg_url, binary, token, outdir, spec="1x32M"):
    sc = Scenario(spec)
    binary = server_binary(sc, binary)
    n = sc.n
    archive = sc.archive()
    label = f"{sc.label}-callgrind"
    out_file = os.path.join(outdir, "callgrind.out")
    log(f"profile {label}: load average {loadavg()}")
    # Instrumentation is off until the server listens and on only while the
    # uploads run, so start-up (dynamic linking, migrations check) and
    # shutdown do not dilute the upload's profile.
    wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
            "--separate-threads=no", "--dump-instr=no", "--instr-atstart=no"]
    portal = start_server(pg_url, binary, wrap=wrap, listen_timeout=180, extra_env=sc.env)
    pid = str(portal.proc.pid)
    try:
        callgrind_control(pid, "on")
        rep = run_loadgen(portal, token, archive, n, label, outdir, pid=portal.proc.pid,
                          extra=sc.loadgen_args())
        callgrind_control(pid, "off")
        bad = delete_uploads(portal, token, rep["upload_ids"])
    finally:
        code, problems = stop_server(portal, outdir, label, timeout=300)
        wipe_data_dir()
    if bad:
        problems.append(f"DELETE failed: {bad}")
    rep["server_exit_code"] = code
    rep["problems"] = problems
    for p in problems:
        log(f"PROBLEM in {label}: {p}")
    return rep, callgrind_stages(out_file, outdir)


# --------------------------------------------------------------------------


def syscall_profile(pg_url, binary, token, outdir, spec):
    """Counts the server's system calls (strace -f -c) during one scenario.

    strace slows the server down a lot: only the counts mean anything, in
    particular body bytes per recvmsg (how big the socket reads are)."""
    sc = Scenario(spec)
    binary = server_binary(sc, binary)
    n = sc.n
    archive = sc.archive()
    label = f"{sc.label}-strace"
    out_file = os.path.join(outdir, f"strace-{label}.txt")
    log(f"syscall count {label}: load average {loadavg()}")
    portal = start_server(pg_url, binary, extra_env=sc.env)
    st = subprocess.Popen(["strace", "-f", "-c", "-o", out_file, "-p", str(portal.proc.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # attached to every thread
    try:
        rep = run_loadgen(portal, token, archive, n, label, outdir, extra=sc.loadgen_args())
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(timeout=60)
        bad = delete_uploads(portal, token, rep["upload_ids"]) if "rep" in locals() else []
        stop_server(portal, outdir, label)
        wipe_data_dir()
    calls = {}
    with open(out_file) as f:
        for line in f:
            parts = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(parts) >= 5 and parts[3].isdigit() and not parts[-1].startswith("-"):
                calls[parts[-1]] = int(parts[3])
    uploaded = rep["total_bytes"]
    per_mib = {k: round(v / (uploaded / MiB), 1) for k, v in calls.items() if uploaded}
    summary = {
        "label": label,
        "uploaded_bytes": uploaded,
        "calls": calls,
        "calls_per_mib": per_mib,
        "body_bytes_per_recvmsg": round(uploaded / calls["recvmsg"], 1) if calls.get("recvmsg") else None,
        "body_bytes_per_write": round(uploaded / calls["write"], 1) if calls.get("write") else None,
        "delete_failures": bad,
    }
    log(f"syscalls {label}: {json.dumps(summary)}")
    return summary


def measure_stages(size_text, repeats):
    """Each stage alone (bench/stages.py) on the .tar.gz and the .tar.zst of
    SIZE, in the same run as the scenarios."""
    out = {}
    size = make_archive.parse_size(size_text)
    for fmt in ("gz", "zst"):
        archive = make_archive.ensure(size, fmt=fmt)
        log(f"stages alone on {os.path.basename(archive)} ({repeats} repeats)")
        out[fmt] = stages.measure(archive, os.path.join(CACHE, "stage-scratch"), repeats=repeats)
    return out


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kib / (1 << 20), 1),
        "kernel": os.uname().release,
        "commit": commit,
        "worktree_dirty": bool(dirty),
        "loadavg_start": loadavg(),
    }


def summary_table(reports):
    head = ("| scenario | ok/fail | wall s | MiB/s | latency min / med / p95 / max s | "
            "server VmHWM MiB | server CPU s | CPU s/GiB | database CPU s | client CPU s | "
            "loadavg before -> after |")
    lines = [head, "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in reports:
        if r.get("skipped"):
            lines.append(f"| {r['label']} | skipped: {r['skipped']} |" + " |" * 9)
            continue
        lat = r["latency_seconds"]
        lat_s = " / ".join(f"{lat[k]:.2f}" for k in ("min", "median", "p95", "max")) if lat else "-"
        lines.append(
            f"| {r['label']} | {r['ok']}/{r['failures']} | {r['wall_seconds']:.2f} | {r['mib_per_s']} | "
            f"{lat_s} | {r['server_vmhwm_mib']} | {r['server_cpu_seconds']:.2f} | "
            f"{r['server_cpu_seconds_per_gib']:.2f} | "
            f"{r['db_cpu_seconds'] if r.get('db_cpu_seconds') is not None else '-'} | "
            f"{r['client_cpu_seconds']:.2f} | "
            f"{' '.join(f'{x:.2f}' for x in r['loadavg_before'])} -> "
            f"{' '.join(f'{x:.2f}' for x in r['loadavg_after'])} |")
    return "\n".join(lines) + "\n"


def compose_report(args, info, reports, stage_results, profiles, thread_table, syscalls):
    """The run's printed report (Markdown, its parts a blank line apart) and
    its problems: the scenario table, the stages alone, the target verdicts,
    the profiles, the system calls."""
    table = summary_table(reports)
    text = [f"machine: {json.dumps(info)}", table]
    for fmt, result in stage_results.items():
        text.append(f"stages alone, {fmt}, CPU-s per GiB of the compressed archive:\n\n"
                    + stages.format_table(result))
    if args.targets or args.smoke:
        gz = stage_results.get("gz") or {}
        rows = targets.verdicts(reports, {"unavoidable_sum": gz.get("unavoidable_sum"),
                                          "isal_sum": gz.get("isal_sum")})
        heading = ("targets (issues 12 and 14), ratios within this run:" if args.targets else
                   "targets (the smoke runs none of their scenarios: every verdict is n/a, "
                   "and the table is checked to print):")
        text.append(heading + "\n\n" + targets.format_verdicts(rows))
    for kind, label, profile_stages in profiles:
        text.append(format_stages(f"profile ({kind}, {label}):", profile_stages))
    if thread_table:
        text.append("perf cpu-clock samples by thread:\n\n" + thread_table)
    if syscalls:
        text.append(format_syscalls(syscalls))
    problems = [(r["label"], p) for r in reports for p in r.get("problems", [])]
    if args.smoke:
        # Every part must run, but for a node too old for @tus/server (a
        # fresh Debian 12's own).
        problems += [(r["label"], "skipped: " + r["skipped"]) for r in reports
                     if r.get("skipped") and not r.get("skip_is_machine_limit")]
    problems += [(r["label"], f["error"]) for r in reports for f in r["failure_details"]]
    text.append("problems: " + (json.dumps(problems) if problems else "none"))
    return "\n\n".join(part.rstrip("\n") for part in text) + "\n", problems


def parse_cpus(text):
    """'0', '0-1', '0,2' as in taskset -c."""
    cpus = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "upload-portal"))
    ap.add_argument("--binary-b", metavar="PATH",
                    help="the server of the scenarios marked +b: two builds alternated in one run "
                         "(from run 24)")
    ap.add_argument("--scenarios", default="1x256M,4x256M,16x256M,64x1M",
                    help="comma-separated NxSIZE list ('' for none)")
    ap.add_argument("--profile", choices=("auto", "perf", "callgrind", "both", "none"), default="auto")
    ap.add_argument("--perf-scenario", default="4x256M")
    ap.add_argument("--callgrind-scenario", default="1x32M")
    ap.add_argument("--syscalls", default="1x32M",
                    help="count the server's system calls (strace -c) for this scenario ('' to skip)")
    ap.add_argument("--reprofile", metavar="RESULTS_DIR",
                    help="only re-read the profiles saved in RESULTS_DIR and print their stage tables")
    ap.add_argument("--stages", default="", metavar="SIZE",
                    help="measure each stage alone (bench/stages.py) on the SIZE .tar.gz and .tar.zst")
    ap.add_argument("--stage-repeats", type=int, default=3)
    ap.add_argument("--targets", action="store_true",
                    help="run the scenarios of issues 12 and 14's targets (bench/targets.py) and "
                         "the stages on 256M, no profiles; print each target's verdict")
    ap.add_argument("--durable", action="store_true",
                    help="fsync and synchronous_commit on in PostgreSQL, as --targets has them "
                         "(without it the cluster trades durability for speed, as the tests do)")
    ap.add_argument("--smoke", action="store_true",
                    help="CI's check that every part of the benchmark runs: tiny scenarios against "
                         "the portal and both peers, the stages on 1M, the verdict table")
    ap.add_argument("--pin-server", metavar="CPUS",
                    help="run the server on these CPUs (e.g. 0 or 0-1) and PostgreSQL, the load "
                         "generator and the peers on the others, so that the server's throughput "
                         "is not the database's or the client's CPU (exploratory, from run 19)")
    ap.add_argument("--pin-system", metavar="CPUS",
                    help="run the server with its PostgreSQL (and a peer) on these CPUs and only the "
                         "load generator and this driver on the others: the system under test, "
                         "database included, apart from the client that loads it (from run 22)")
    args = ap.parse_args()
    if args.pin_server and args.pin_system:
        ap.error("--pin-server and --pin-system: one or the other")
    pin = args.pin_server or args.pin_system
    if pin:
        global SERVER_CPUS, PIN_SYSTEM
        SERVER_CPUS = set(parse_cpus(pin))
        PIN_SYSTEM = bool(args.pin_system)
        rest = os.sched_getaffinity(0) - SERVER_CPUS
        if not rest or not SERVER_CPUS <= os.sched_getaffinity(0):
            ap.error(f"{'--pin-system' if PIN_SYSTEM else '--pin-server'} {pin}: must name CPUs of "
                     f"{sorted(os.sched_getaffinity(0))} and leave at least one for the rest")
        os.sched_setaffinity(0, rest)
    if args.reprofile:
        return reprofile(args.reprofile)
    if args.targets or args.smoke:
        args.profile, args.syscalls = "none", ""
        args.scenarios = ",".join(targets.SCENARIOS)
        args.stages = args.stages or "256M"
    if args.smoke:
        args.scenarios = "2x1M,2x1M+isal,2x1M+tus,2x1M+zst,2x1M@nginx,2x1M@tus-node"
        args.stages, args.stage_repeats = "1M", 1
    # Every scenario parses before anything starts (and the smoke checks the
    # target table's, which it does not run).
    specs = list(filter(None, args.scenarios.split(",")))
    profiled = ([args.perf_scenario, args.callgrind_scenario] if args.profile != "none" else []) + \
        ([args.syscalls] if args.syscalls else [])
    marked_b = [spec for spec in specs + profiled + (targets.SCENARIOS if args.smoke else [])
                if Scenario(spec).binary_b]
    if marked_b and not args.binary_b:
        ap.error(f"scenario {marked_b[0]}: +b needs --binary-b")
    if args.binary_b and not os.access(args.binary_b, os.X_OK):
        ap.error(f"--binary-b {args.binary_b}: not an executable file")
    if args.binary_b and not marked_b:
        ap.error("--binary-b: no scenario is marked +b")
    if args.smoke:
        missing = targets.unmeasured([Scenario(spec).label for spec in targets.SCENARIOS])
        if missing:
            print("targets that no scenario of targets.SCENARIOS measures:", *missing, sep="\n  ")
            return 1
    # The peers live in their own sessions: a SIGTERM or SIGHUP must unwind
    # through the finally blocks that stop them, as Ctrl-C does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: sys.exit(128 + signum))
    # One run per checkout at a time: the data dir, the peers' directories
    # and the archives are shared (ctest's bench.smoke beside a --targets run).
    os.makedirs(CACHE, exist_ok=True)
    lock = open(os.path.join(CACHE, "run.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another benchmark run holds bench/.cache/run.lock; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    args.binary = os.path.abspath(args.binary)  # the harness runs it from a temp cwd
    if args.binary_b:
        global BINARY_B
        BINARY_B = os.path.abspath(args.binary_b)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(CACHE, "results", stamp)
    os.makedirs(outdir, exist_ok=True)
    info = machine()
    with open(os.path.join(outdir, "git-status.txt"), "w") as f:
        for cmd in (["git", "rev-parse", "HEAD"], ["git", "status", "--porcelain"],
                    ["git", "diff", "--stat", "HEAD"]):
            f.write("$ " + " ".join(cmd) + "\n")
            f.write(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout + "\n")
    st = os.stat(args.binary)
    info["binary_mtime"] = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(st.st_mtime))
    if BINARY_B:
        info["binary_b"] = BINARY_B
        info["binary_b_mtime"] = time.strftime("%Y-%m-%d %H:%M:%SZ",
                                               time.gmtime(os.stat(BINARY_B).st_mtime))
    info["command"] = " ".join(sys.argv)
    info["server_env"] = SERVER_ENV
    log(f"machine: {json.dumps(info)}")
    log(f"results in {outdir}")

    # Durable for the targets: "each durable with its row committed".
    pg = PostgresCluster(durable=args.targets or args.durable)
    global DB_PID
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        DB_PID = int(f.readline())
    if PIN_SYSTEM:
        pin_tree(DB_PID, SERVER_CPUS)
    reports = []
    profiles = []
    stage_results = {}
    syscalls = None
    thread_table = None
    try:
        admin = Portal(pg.url, binary=args.binary)
        admin.migrate()
        token = admin.create_user_and_token("bench")
        admin.cleanup()

        for spec in specs:
            reports.append(scenario(pg.url, args.binary, token, spec, outdir))
        stage_results = measure_stages(args.stages, args.stage_repeats) if args.stages else {}

        mode = args.profile
        if mode == "auto":
            mode = "perf" if perf_events_work() else "callgrind"
            log(f"perf stat -e instructions: {'works' if mode == 'perf' else 'not supported'} -> {mode}")
        if mode == "perf":
            path = os.path.join(outdir, "perf.data")
            rep = scenario(pg.url, args.binary, token, args.perf_scenario, outdir,
                           perf_profile=("cycles", path))
            reports.append(rep)
            profiles.append(("perf", rep["label"], perf_stages(path, outdir, rep["label"])))
        if mode in ("callgrind", "both"):
            rep, profile_stages = callgrind_profile(pg.url, args.binary, token, outdir, args.callgrind_scenario)
            rep["label"] += " (under valgrind)"
            reports.append(rep)
            profiles.append(("callgrind", rep["label"], profile_stages))
        if mode == "both" and perf_record_works("cpu-clock"):
            path = os.path.join(outdir, "perf-cpuclock.data")
            rep = scenario(pg.url, args.binary, token, args.perf_scenario, outdir,
                           perf_profile=("cpu-clock", path))
            reports.append(rep)
            profiles.append(("perf cpu-clock", rep["label"], perf_stages(path, outdir, rep["label"])))
            thread_table = perf_threads(path, outdir, rep["label"])
        if args.syscalls and shutil.which("strace"):
            syscalls = syscall_profile(pg.url, args.binary, token, outdir, args.syscalls)
    finally:
        pg.destroy()
        wipe_data_dir()

    info["loadavg_end"] = loadavg()
    report, problems = compose_report(args, info, reports, stage_results, profiles,
                                      thread_table, syscalls)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(outdir, "run.json"), "w") as f:
        json.dump({"machine": info, "reports": reports, "syscalls": syscalls, "stages": stage_results,
                   "profiles": [{"kind": k, "label": l, "stages": s} for k, l, s in profiles]}, f, indent=1)
    print()
    print(report)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

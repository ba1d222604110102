"""The benchmark's store-only peers (issue 14): nginx with a WebDAV PUT
location, and @tus/server with @tus/file-store under the machine's node.

Python 3 standard library only. bench/bench.py starts each peer next to
upload-portal and sends it the same load with bench/loadgen.py
(--target nginx | tus-node), so our figures sit beside those of servers
that only store what they receive (no auth, validation, hash or fsync).

    peer = start_nginx(workdir)         # or start_tus_node(workdir)
    loadgen.py --target nginx --port peer.port --server-pids <peer.pids()>
    peer.stored_files()                 # [(path, size)] to check the bytes
    peer.stop(); peer.wipe()

Each peer runs in its own process group, with every path it writes (config,
pid file, logs, temp files, store) inside `workdir`, on a free loopback port.
A peer this machine cannot run raises PeerUnavailable, so the driver can
skip its scenarios with the reason instead of failing the whole run.
"""

import os
import re
import select
import shutil
import signal
import socket
import string
import subprocess
import time

from loadgen import children_pids, sha256_of

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_DIR = os.path.join(HERE, "peers")
START_SECONDS = 30
STOP_SECONDS = 30
BIND_ATTEMPTS = 3
NODE_MIN = (20, 19)  # @tus/server 2.4's "engines"


class PeerUnavailable(Exception):
    """This machine cannot run the peer (no nginx with WebDAV, node too old,
    npm ci failed); str() is a one-line reason."""


class NodeTooOld(PeerUnavailable):
    """Debian 12's own nodejs (18) is older than @tus/server 2.4 needs: a
    fresh machine without a newer node cannot run that peer at all."""


class PeerExited(RuntimeError):
    """The peer's process ended while it was starting."""


# --------------------------------------------------------------------------
# helpers


def wait_until(condition, seconds, what):
    """Poll `condition` until it is true; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds} s")
        time.sleep(0.02)  # the polling period of a condition with a deadline


def free_port():
    """A loopback port free right now. Another process may take it before
    the peer binds it: the callers retry on EADDRINUSE."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def alive(pid):
    """True while `pid` runs: a zombie no longer counts, since an nginx
    worker whose master was killed is reparented to a PID 1 that may never
    reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] != "Z"


def tail(path, lines=5):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).strip()
    except OSError:
        return ""


# --------------------------------------------------------------------------
# a running peer


class Peer:
    """A peer process (with its children: nginx's workers) listening on
    127.0.0.1:`port`, storing what it receives under `store`."""

    def __init__(self, name, proc, port, store, log_path, is_data=lambda name: True):
        self.name, self.proc, self.port = name, proc, port
        self.store, self.log_path, self._is_data = store, log_path, is_data

    def pids(self):
        """The peer's processes: the one started, then its children."""
        if self.proc.poll() is not None:
            return []
        return [self.proc.pid] + children_pids(self.proc.pid)

    def stored_files(self):
        """[(path, size)] of the uploads' stored bytes, sorted by path."""
        out = []
        for top, _, names in os.walk(self.store):
            for name in names:
                if self._is_data(name):
                    path = os.path.join(top, name)
                    out.append((path, os.path.getsize(path)))
        return sorted(out)

    def wipe(self):
        """Remove everything stored (the store directory itself stays)."""
        for entry in os.scandir(self.store):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)

    def stop(self):
        """SIGTERM, then SIGKILL to the process group after STOP_SECONDS.
        Returns the exit status (negative: the signal that ended it); on
        return none of the peer's processes is left."""
        children = children_pids(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._kill_group()
            code = self.proc.wait(STOP_SECONDS)
        # nginx's master ends after its workers on SIGTERM, but a killed
        # master leaves them running: wait for them too.
        try:
            wait_until(lambda: not any(map(alive, children)), STOP_SECONDS,
                       f"{self.name} workers {children} to exit")
        except TimeoutError:
            self._kill_group()
            wait_until(lambda: not any(map(alive, children)), STOP_SECONDS,
                       f"{self.name} workers {children} to die")
        if self.proc.stdout:
            self.proc.stdout.close()
        return code

    def _kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only the peer
        except ProcessLookupError:
            pass


def spawn(cmd, log_path, **kwargs):
    """Start a peer in a session of its own, so stop() can kill all of it
    and nothing else; its output goes to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log,
                                stdout=kwargs.pop("stdout", log),
                                start_new_session=True, **kwargs)


def stop_after_failed_start(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --------------------------------------------------------------------------
# nginx


def nginx_binary():
    # Debian's nginx is in /usr/sbin, which a non-root PATH may lack.
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if not path:
        raise PeerUnavailable("nginx is not installed (Debian package nginx)")
    version = subprocess.run([path, "-V"], capture_output=True, text=True).stderr
    if "--with-http_dav_module" not in version:
        raise PeerUnavailable(f"{path} is built without the WebDAV module (--with-http_dav_module)")
    return path


def write_nginx_conf(run_dir, port, workers):
    with open(os.path.join(PEERS_DIR, "nginx.conf.in")) as f:
        template = string.Template(f.read())
    conf = os.path.join(run_dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(template.substitute(
            dir=run_dir, port=port, workers=workers,
            user_directive="user root;" if os.geteuid() == 0 else ""))
    return conf


def nginx_ready(proc, run_dir, port, workers):
    """nginx wrote its pid file (so its listening socket is its own, not a
    process that took the free port first), forked every worker (so pids()
    is complete) and accepts connections."""
    if proc.poll() is not None:
        raise PeerExited(f"nginx exited {proc.returncode}")
    try:
        with open(os.path.join(run_dir, "nginx.pid")) as f:
            if f.read().strip() != str(proc.pid):
                return False
    except OSError:
        return False
    return len(children_pids(proc.pid)) >= workers and accepts(port)


def start_nginx(workdir):
    """nginx -p workdir, storing PUT /uploads/<name> in workdir/root/uploads."""
    binary = nginx_binary()
    run_dir = os.path.abspath(workdir)
    store = os.path.join(run_dir, "root", "uploads")
    os.makedirs(store, exist_ok=True)
    log_path = os.path.join(run_dir, "error.log")
    workers = len(os.sched_getaffinity(0))  # what worker_processes auto counts
    for attempt in range(1, BIND_ATTEMPTS + 1):
        port = free_port()
        conf = write_nginx_conf(run_dir, port, workers)
        proc = spawn([binary, "-p", run_dir, "-c", conf, "-e", log_path], log_path)
        try:
            wait_until(lambda: nginx_ready(proc, run_dir, port, workers), START_SECONDS,
                       "nginx to listen")
            return Peer("nginx", proc, port, store, log_path)
        except PeerExited:
            proc.wait()
            if "Address already in use" in tail(log_path) and attempt < BIND_ATTEMPTS:
                continue  # the free port was taken meanwhile: another one
            raise PeerExited(f"nginx exited {proc.returncode}: {tail(log_path)}")
        except TimeoutError:
            stop_after_failed_start(proc)
            raise


# --------------------------------------------------------------------------
# @tus/server under node


def node_binary():
    node = shutil.which("node")
    if not node:
        raise PeerUnavailable("node is not installed (@tus/server needs node >= 20.19)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"v(\d+)\.(\d+)", version)
    if not m or (int(m[1]), int(m[2])) < NODE_MIN:
        raise NodeTooOld(f"node {version} is older than 20.19, which @tus/server 2.4 needs")
    return node


def ensure_node_modules():
    """npm ci in bench/peers unless node_modules was installed from this very
    lock file (a stamp holds the lock's sha256, as deploy/dev.sh does)."""
    want = sha256_of(os.path.join(PEERS_DIR, "package-lock.json"))
    stamp = os.path.join(PEERS_DIR, "node_modules", ".portal-lock.sha256")
    try:
        with open(stamp) as f:
            if f.read().strip() == want:
                return
    except OSError:
        pass
    npm = shutil.which("npm")
    if not npm:
        raise PeerUnavailable("npm is not installed (needed once to install @tus/server)")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PEERS_DIR,
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise PeerUnavailable(f"npm ci in bench/peers failed: {last}")
    with open(stamp, "w") as f:
        f.write(want + "\n")


def read_listening_port(proc, log_path, seconds):
    """The port in tus_server.mjs's first stdout line, `listening <port>`."""
    deadline = time.monotonic() + seconds
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"@tus/server printed no 'listening' line within {seconds} s")
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                proc.wait()
                raise PeerExited(f"@tus/server exited {proc.returncode}: {tail(log_path)}")
            line += chunk
    m = re.fullmatch(rb"listening (\d+)\n", line)
    if not m:
        raise PeerExited(f"@tus/server printed {line!r}, not 'listening <port>'")
    return int(m[1])


def start_tus_node(workdir):
    """node bench/peers/tus_server.mjs, storing tus uploads (POST /files/)
    in workdir/files: one data file per upload, named by its id, beside an
    <id>.json of its metadata."""
    node = node_binary()
    ensure_node_modules()
    run_dir = os.path.abspath(workdir)
    store = os.path.join(run_dir, "files")
    os.makedirs(store, exist_ok=True)
    log_path = os.path.join(run_dir, "tus_server.log")
    # Port 0: node binds a free port itself and says which, so no race.
    proc = spawn([node, os.path.join(PEERS_DIR, "tus_server.mjs"), store, "0"], log_path,
                 stdout=subprocess.PIPE)
    try:
        port = read_listening_port(proc, log_path, START_SECONDS)
        wait_until(lambda: accepts(port), START_SECONDS, "@tus/server to accept")
    except (PeerExited, TimeoutError):
        stop_after_failed_start(proc)
        raise
    return Peer("tus-node", proc, port, store, log_path,
                is_data=lambda name: not name.endswith(".json"))

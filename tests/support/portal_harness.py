"""Test harness for upload-portal's integration and end-to-end tests.

Python 3 standard library only. It starts throwaway PostgreSQL clusters and
real `upload-portal serve` processes, and talks to them over real sockets.

    PostgresCluster  a PostgreSQL 15 cluster in a temporary directory
    Portal           the binary (env PORTAL_BINARY) with its own data dir
    PortalTestCase   a unittest base class: one cluster + one migrated,
                     listening server per TestCase class, always cleaned up
    wait_until       poll a condition with a deadline (never sleep to sync)

Everything started here is also registered for an atexit clean-up, so an
aborted run does not leave postmasters or servers behind.
"""

import atexit
import http.client
import io
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

PG_BIN = os.environ.get("PORTAL_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_TOOLS = "/usr/bin"  # psql, pg_isready, pg_dump from postgresql-client

# Environment the tests never inherit: each test states what it wants.
_SCRUBBED_PREFIXES = ("PORTAL_", "DATABASE_", "PG")
_SCRUBBED_NAMES = {"SECRET_KEY_BASE", "FLY_MACHINE_ID", "FLY_APP_NAME"}

# Markers of sanitizer reports on a process's stderr.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "ThreadSanitizer",
)

_live = []  # objects with .cleanup(), cleaned at exit in reverse order
_live_lock = threading.Lock()


def _register(obj):
    with _live_lock:
        _live.append(obj)


def _unregister(obj):
    with _live_lock:
        if obj in _live:
            _live.remove(obj)


@atexit.register
def _cleanup_leftovers():
    with _live_lock:
        leftovers = list(reversed(_live))
    for obj in leftovers:
        try:
            obj.cleanup()
        except Exception:  # best effort at interpreter exit
            pass


def wait_until(predicate, timeout, interval=0.05, message=None):
    """Calls predicate() until it returns something truthy and returns that.

    Raises AssertionError when `timeout` seconds pass first. Exceptions from
    the predicate count as "not yet" (the last one is named in the error).
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = message or getattr(predicate, "__name__", "condition")
            if last_exc is not None:
                detail += f" (last error: {last_exc!r})"
            raise AssertionError(f"timed out after {timeout}s waiting for {detail}")
        time.sleep(interval)


def free_port():
    """A currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token_secret(token):
    """The secret part of an API token "upt_<id>_<secret>" (the whole token
    when it has another shape): the part that must never be stored or logged."""
    parts = token.split("_", 2)
    return parts[2] if len(parts) == 3 and len(parts[2]) >= 16 else token


def is_root():
    return os.geteuid() == 0


def scrubbed_environ():
    """os.environ without any portal, database or libpq settings."""
    env = {}
    for key, value in os.environ.items():
        if key.startswith(_SCRUBBED_PREFIXES) or key in _SCRUBBED_NAMES:
            continue
        env[key] = value
    return env


# --------------------------------------------------------------------------
# PostgreSQL


class PostgresCluster:
    """A throwaway PostgreSQL 15 cluster on a free loopback port.

    Superuser `portal`, trust authentication, database `portal` created.
    As root, the server runs as the `postgres` OS user (initdb refuses root).
    """

    def __init__(self, start=True):
        self.dir = tempfile.mkdtemp(prefix="portal-pg-")
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgresql.log")
        self.port = None
        self.running = False
        self._run_as = None
        _register(self)
        try:
            if is_root():
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                self._run_as = "postgres"
            os.chmod(self.dir, 0o700)
            self._pg(
                [
                    os.path.join(PG_BIN, "initdb"),
                    "-D", self.data,
                    "--auth=trust",
                    "-U", "portal",
                    "-E", "UTF8",
                    "--no-sync",
                ],
                what="initdb",
            )
            if start:
                self._first_start()
                self.psql("create database portal", database="postgres")
        except BaseException:
            self.cleanup()
            raise

    # -- URLs

    @property
    def url(self):
        return self.url_for("portal")

    def url_for(self, database):
        return f"postgresql://portal@127.0.0.1:{self.port}/{database}"

    # -- lifecycle

    def _first_start(self):
        # The port is picked before PostgreSQL binds it: retry on the rare race.
        for attempt in range(3):
            self.port = free_port()
            try:
                self.start()
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def start(self, timeout=30):
        """Starts (or restarts) the cluster on the same port and data."""
        if self.running:
            return
        if self.port is None:
            self.port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100"
        )
        # -W: do not let pg_ctl wait; readiness is polled below with a deadline.
        self._pg(
            [
                os.path.join(PG_BIN, "pg_ctl"),
                "-D", self.data,
                "-l", self.logfile,
                "-o", options,
                "-W",
                "start",
            ],
            what="pg_ctl start",
        )
        self.running = True
        deadline = time.monotonic() + timeout
        while True:
            ready = subprocess.run(
                [
                    os.path.join(PG_TOOLS, "pg_isready"),
                    "-q",
                    "-h", "127.0.0.1",
                    "-p", str(self.port),
                    "-U", "portal",
                    "-d", "postgres",
                    "-t", "1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if ready.returncode == 0:
                return
            if not self._postmaster_alive() and time.monotonic() > deadline - timeout + 2:
                # postmaster.pid never appeared or vanished: it failed to start
                self.running = False
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL not ready within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _postmaster_alive(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False

    def stop(self, mode="fast"):
        """Stops the server (keeps the data). Waits until it is down."""
        if not self.running:
            return
        self._pg(
            [
                os.path.join(PG_BIN, "pg_ctl"),
                "-D", self.data,
                "-m", mode,
                "-w", "-t", "30",
                "stop",
            ],
            what="pg_ctl stop",
            check=False,
        )
        self.running = False

    def destroy(self):
        """Stops the server and deletes every file of the cluster."""
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            _unregister(self)

    cleanup = destroy

    # -- queries

    def psql(self, sql, database="portal"):
        """Runs one statement with psql -Atc; returns stdout stripped."""
        result = subprocess.run(
            [
                os.path.join(PG_TOOLS, "psql"),
                self.url_for(database),
                "-v", "ON_ERROR_STOP=1",
                "-Atc", sql,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({sql!r}): {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, name):
        """Creates an empty database; returns its URL."""
        self.psql(f'create database "{name}"', database="postgres")
        return self.url_for(name)

    def dump(self, database="portal"):
        """The database's contents as SQL text (pg_dump --data-only)."""
        result = subprocess.run(
            [os.path.join(PG_TOOLS, "pg_dump"), "--data-only", self.url_for(database)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {result.stderr.strip()}")
        return result.stdout

    def log_tail(self, lines=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no PostgreSQL log)"

    # -- helpers

    def _pg(self, argv, what, check=True):
        if self._run_as:
            argv = ["runuser", "-u", self._run_as, "--"] + argv
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            cwd=self.dir if not self._run_as else "/",
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{what} failed ({result.returncode}): {result.stderr.strip()}\n{self.log_tail()}"
            )
        return result


# --------------------------------------------------------------------------
# The server


def parse_http_response(data):
    """Parses raw response bytes into (status, headers, body).

    status is None when no status line was received. headers is an
    http.client.HTTPMessage (case-insensitive). The body is cut to
    Content-Length when that header is present.
    """
    if not data:
        return None, http.client.HTTPMessage(), b""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    status = int(parts[1])
    headers = http.client.parse_headers(io.BytesIO(b"\r\n".join(lines[1:]) + b"\r\n\r\n"))
    length = headers.get("Content-Length")
    if length is not None and length.isdigit():
        body = body[: int(length)]
    return status, headers, body


class Portal:
    """One `upload-portal` binary with its own environment and data dir.

    env: extra environment (a value of None removes a variable). The base is
    the test process's environment without PORTAL_*/DATABASE_*/PG* and
    SECRET_KEY_BASE, plus PORTAL_LISTEN=127.0.0.1:0, PORTAL_DATA_DIR in a
    temporary directory and DATABASE_URL=database_url.
    """

    def __init__(self, database_url=None, env=None, binary=None):
        # absolute: the CLI runs with other working directories
        self.binary = os.path.abspath(binary or os.environ["PORTAL_BINARY"])
        self.tmp = tempfile.mkdtemp(prefix="portal-srv-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.env = scrubbed_environ()
        self.env.update(
            {
                "PORTAL_LISTEN": "127.0.0.1:0",
                "PORTAL_DATA_DIR": self.data_dir,
            }
        )
        if database_url is not None:
            self.env["DATABASE_URL"] = database_url
        for key, value in (env or {}).items():
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        # a caller may hand over another server's data dir (restart tests)
        self.data_dir = self.env.get("PORTAL_DATA_DIR", self.data_dir)
        self.proc = None
        self.port = None
        self.returncode = None
        self.raw_lines = []  # stdout lines as text
        self.stderr_lines = []
        self._lock = threading.Lock()
        self._readers = []
        _register(self)

    # -- subcommands

    def run_cli(self, *args, input=None, env=None, timeout=60, cwd=None):
        """Runs `upload-portal ARGS...` to completion; returns CompletedProcess (text)."""
        run_env = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                run_env.pop(key, None)
            else:
                run_env[key] = value
        return subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=True,
            env=run_env,
            timeout=timeout,
            cwd=cwd or self.tmp,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def run_ok(self, *args, **kwargs):
        """run_cli that raises (with stderr) unless the exit code is 0."""
        result = self.run_cli(*args, **kwargs)
        if result.returncode != 0:
            raise AssertionError(
                f"`upload-portal {' '.join(args)}` exited {result.returncode}:\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def migrate(self):
        return self.run_ok("migrate")

    def create_user_and_token(self, name, role="uploader"):
        """Creates a user and an API token for it; returns the token."""
        self.run_ok("user", "add", name, "--role", role)
        result = self.run_ok("token", "create", "--user", name)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if not lines:
            raise AssertionError("`token create` printed nothing")
        return lines[-1].strip()

    # -- serve

    def start(self, args=("serve",), wait=True, timeout=30):
        """Starts the server. With wait, returns once it logged "listening"."""
        if self.proc is not None:
            raise RuntimeError("already started")
        os.makedirs(self.data_dir, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.tmp,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.raw_lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr_lines), daemon=True),
        ]
        for t in self._readers:
            t.start()
        if wait:
            self.wait_listening(timeout)
        return self

    def _read(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._lock:
                sink.append(line)
        stream.close()

    def wait_listening(self, timeout=30):
        def listening():
            for entry in self.logs:
                if entry.get("msg") == "listening" and isinstance(entry.get("port"), int):
                    return entry["port"]
            if self.proc.poll() is not None:
                raise _Exited()
            return None

        try:
            self.port = wait_until(listening, timeout, message='the "listening" log line')
        except (AssertionError, _Exited):
            pass
        if self.port is None:
            code = self.proc.poll()
            state = f"exited with {code}" if code is not None else "still running"
            raise AssertionError(f"server did not log \"listening\" ({state}):\n{self.output_tail()}")
        return self.port

    @property
    def logs(self):
        """stdout lines that parse as JSON objects."""
        with self._lock:
            lines = list(self.raw_lines)
        parsed = []
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                parsed.append(obj)
        return parsed

    def output(self):
        """Everything the server printed so far, stdout then stderr."""
        with self._lock:
            return "\n".join(self.raw_lines + self.stderr_lines)

    def output_tail(self, lines=60):
        with self._lock:
            out = self.raw_lines[-lines:]
            err = self.stderr_lines[-lines:]
        return "--- stdout ---\n" + "\n".join(out) + "\n--- stderr ---\n" + "\n".join(err)

    def sanitizer_reports(self):
        with self._lock:
            return [l for l in self.stderr_lines if any(m in l for m in SANITIZER_MARKERS)]

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its exit code or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._readers:
            t.join(timeout=5)
        return self.returncode

    def terminate(self, timeout=40, sig=signal.SIGTERM):
        """Sends SIGTERM (or sig) and waits; returns the exit code.

        Raises AssertionError (after killing it) if it does not exit in time.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.wait_exit(timeout)
        if code is None:
            self.kill()
            raise AssertionError(f"server did not exit within {timeout}s of {sig!r}:\n{self.output_tail()}")
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.wait_exit(10)

    def cleanup(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.terminate(timeout=15)
                except AssertionError:
                    pass
        finally:
            self.kill()
            shutil.rmtree(self.tmp, ignore_errors=True)
            _unregister(self)

    # -- HTTP

    @property
    def address(self):
        return ("127.0.0.1", self.port)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, headers=None, body=None, timeout=10):
        """One request on a fresh connection: (status, headers, body bytes).

        headers: a dict; values may be bytes to send non-ASCII verbatim.
        """
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            # a caller's own Host replaces http.client's
            skip_host = any(k.lower() == "host" for k in hdrs)
            conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
            if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k in hdrs):
                hdrs["Content-Length"] = str(len(body))
            for key, value in hdrs.items():
                conn.putheader(key, value)
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.headers, data
        finally:
            conn.close()

    def get_json(self, path, token=None, timeout=10):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, hdrs, body = self.request("GET", path, headers=headers, timeout=timeout)
        return status, hdrs, json.loads(body) if body else None

    def connect(self, timeout=10):
        """A raw TCP connection to the server."""
        return socket.create_connection(self.address, timeout=timeout)

    def raw(self, data, read_timeout=10):
        """Sends bytes on a fresh connection, reads until the server closes it
        (or read_timeout passes without data); returns everything received."""
        with self.connect(timeout=read_timeout) as sock:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before reading it all
            return read_until_closed(sock, read_timeout)


class _Exited(Exception):
    pass


def read_until_closed(sock, timeout):
    """Reads from sock until EOF, a reset, or `timeout` seconds in total."""
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------
# unittest base class


class PortalTestCase(unittest.TestCase):
    """One PostgreSQL cluster and one migrated, listening server per class.

    Subclasses may set PORTAL_ENV (a dict) for the server. Everything is torn
    down by class clean-ups, which run even when setUpClass fails half-way;
    a server that exits non-zero or printed sanitizer reports fails the class.
    """

    PORTAL_ENV = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PostgresCluster()
        cls.addClassCleanup(cls.pg.destroy)
        cls.portal = Portal(cls.pg.url, env=cls.PORTAL_ENV)
        cls.addClassCleanup(cls._stop_portal, cls.portal)
        cls.portal.migrate()
        cls.portal.start()

    @staticmethod
    def _stop_portal(portal):
        try:
            if portal.proc is None:
                return
            code = portal.proc.returncode if portal.proc.poll() is not None else portal.terminate(timeout=40)
            reports = portal.sanitizer_reports()
            if reports or code not in (0, None):
                raise AssertionError(
                    f"server exit code {code}; sanitizer reports: {reports}\n{portal.output_tail()}"
                )
        finally:
            portal.cleanup()

    def start_portal(self, env=None, wait=True, database_url=None):
        """An extra server for one test (cleaned up after it)."""
        p = Portal(database_url or self.pg.url, env=env)
        self.addCleanup(p.cleanup)
        p.start(wait=wait)
        return p

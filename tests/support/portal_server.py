"""The `upload-portal` binary as the tests drive it: subcommands to
completion, `serve` as a child process whose JSON log lines are collected,
and HTTP over real sockets.

Python 3 standard library only. Every process started here is checked when
it is cleaned up: a server must exit 0 (or as the test said) and no process,
server or CLI, may print a sanitizer report (Portal.cleanup, Portal.run_cli).
"""

import http.client
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from throwaway import register, unregister, wait_until

# Environment the tests never inherit: each test states what it wants.
_SCRUBBED_PREFIXES = ("PORTAL_", "DATABASE_", "PG")
_SCRUBBED_NAMES = {"SECRET_KEY_BASE", "FLY_MACHINE_ID", "FLY_APP_NAME"}

# The servers' database deadline unless a test sets its own (the tests of the
# deadline do, and None restores the 2 s default). Two seconds is a latency
# budget for a production machine; CI runs four suites, a browser and the
# sanitizer build's compiler on two cores, where a sign-in (an Argon2id
# verification inside its transaction, db/logins.cpp) or a queue behind one
# can outlast it, and the answer becomes a 503 the test is not about.
TEST_DB_DEADLINE_MS = "60000"

# Markers of sanitizer reports on a process's stderr.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "ThreadSanitizer",
)


def build_info(binary=None):
    """(failpoints, sanitized) of the binary under test, from `version`: a
    sanitized build's memory figures measure ASan's shadow memory, not ours."""
    out = subprocess.run([binary or os.environ["PORTAL_BINARY"], "version"], capture_output=True,
                         text=True, check=True).stdout
    return "failpoints on" in out, "sanitizers on" in out


def token_secret(token):
    """The secret part of an API token "upt_<id>_<secret>" (the whole token
    when it has another shape): the part that must never be stored or logged."""
    parts = token.split("_", 2)
    return parts[2] if len(parts) == 3 and len(parts[2]) >= 16 else token


def scrubbed_environ():
    """os.environ without any portal, database or libpq settings."""
    env = {}
    for key, value in os.environ.items():
        if key.startswith(_SCRUBBED_PREFIXES) or key in _SCRUBBED_NAMES:
            continue
        env[key] = value
    return env


def sanitizer_lines(text_lines):
    return [l for l in text_lines if any(m in l for m in SANITIZER_MARKERS)]


def _without_unprobed_vptr_reports(lines):
    """lines without UBSan's vptr reports on memory it could not read.

    UBSan reads an object's vptr only after probing that the memory is
    readable, and the probe needs a pipe(); a server out of file descriptors
    fails the probe, and every valid polymorphic object touched then is
    reported as "object has invalid vptr" / "<memory cannot be printed>".
    A suppression file cannot help: libubsan reads it at its first report,
    which then cannot open it. Every other report (and a vptr report on
    memory that could be read, which prints the memory) still counts."""
    kept, i = [], 0
    while i < len(lines):
        if ("runtime error:" in lines[i] and i + 2 < len(lines)
                and lines[i + 1].endswith("note: object has invalid vptr")
                and lines[i + 2] == "<memory cannot be printed>"):
            i += 3
            continue
        kept.append(lines[i])
        i += 1
    return kept


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
    temporary directory, DATABASE_URL=database_url and
    PORTAL_DB_DEADLINE_MS=TEST_DB_DEADLINE_MS.
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
                "PORTAL_DB_DEADLINE_MS": TEST_DB_DEADLINE_MS,
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
        # Set by a test that runs the server out of file descriptors on
        # purpose: UBSan's vptr check cannot work then (sanitizer_reports).
        self.fds_exhausted = False
        self.returncode = None
        # Who answers for the exit status: None while the harness does (it
        # must be 0), "killed" after kill(), "test" after the test collected
        # it from wait_exit() (a server expected to stop on its own, e.g. to
        # refuse a configuration, is checked by the test itself).
        self.exit_owner = None
        self.raw_lines = []  # stdout lines as text
        self.stderr_lines = []
        self._lock = threading.Lock()
        self._readers = []
        register(self)

    # -- subcommands

    def run_cli(self, *args, input=None, env=None, timeout=60, cwd=None):
        """Runs `upload-portal ARGS...` to completion; returns CompletedProcess (text)."""
        run_env = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                run_env.pop(key, None)
            else:
                run_env[key] = value
        result = subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=True,
            env=run_env,
            timeout=timeout,
            cwd=cwd or self.tmp,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        reports = sanitizer_lines(result.stderr.splitlines())
        if reports:
            raise AssertionError(
                f"`upload-portal {' '.join(args)}` printed sanitizer reports:\n{result.stderr}")
        return result

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

    def start(self, args=("serve",), wait="ready", timeout=30):
        """Starts the server and returns, with wait:
        - "ready" (or True, the default): once /ready answers 200, as a
          platform sends it traffic only then (fly.toml's check). A server
          listens before its database pool has connected, and a request in
          between may wait out the database deadline and get 503;
        - "listening": once it logged "listening" (a TLS listener, or a
          server that is not meant to be ready);
        - None or False: at once."""
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
        if wait is True or wait == "ready":
            self.wait_ready(timeout)
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

    def wait_ready(self, timeout=30):
        """Waits until /ready answers 200 (over TLS when the server has a
        certificate: only the answer matters here, not who signed it)."""
        def ready():
            if "PORTAL_TLS_CERT" not in self.env:
                return self.request("GET", "/ready")[0] == 200
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)
            try:
                conn.request("GET", "/ready")
                return conn.getresponse().status == 200
            finally:
                conn.close()

        try:
            wait_until(ready, timeout, message=f"/ready on port {self.port}")
        except AssertionError as e:
            raise AssertionError(f"{e}:\n{self.output_tail()}") from None

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
            lines = list(self.stderr_lines)
        if self.fds_exhausted:
            lines = _without_unprobed_vptr_reports(lines)
        return sanitizer_lines(lines)

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its exit code or None on
        timeout. The test that collects the code answers for it (cleanup
        then only checks for sanitizer reports)."""
        code = self._wait(timeout)
        if code is not None and self.exit_owner is None:
            self.exit_owner = "test"
        return code

    def _wait(self, timeout):
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
        code = self._wait(timeout)
        if code is None:
            self.kill()
            raise AssertionError(f"server did not exit within {timeout}s of {sig!r}:\n{self.output_tail()}")
        return code

    def kill(self):
        """SIGKILL, as a crash would; the exit status is then not checked."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.exit_owner = self.exit_owner or "killed"
        if self.proc is not None:
            self._wait(10)

    def check_exit(self):
        """Stops the server if it still runs (SIGTERM, its drain deadline)
        and raises AssertionError unless it exited 0 (when the harness
        answers for the status) and printed no sanitizer report."""
        if self.proc is None:
            return
        problems = []
        if self.proc.poll() is None:
            try:
                self.terminate(timeout=40)
            except AssertionError as exc:
                problems.append(str(exc).splitlines()[0])
        code = self.proc.poll()
        if self.exit_owner is None and code != 0:
            problems.append(f"exit status {code}")
        reports = self.sanitizer_reports()
        if reports:
            problems.append(f"sanitizer reports: {reports}")
        if problems:
            raise AssertionError(
                f"server on port {self.port}: {'; '.join(problems)}\n{self.output_tail()}")

    def cleanup(self):
        """check_exit(), then removes the server's files (also when the check fails)."""
        try:
            self.check_exit()
        finally:
            self.kill()
            shutil.rmtree(self.tmp, ignore_errors=True)
            unregister(self)

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

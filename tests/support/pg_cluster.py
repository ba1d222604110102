"""A throwaway PostgreSQL 15 cluster for the integration and end-to-end tests.

Python 3 standard library only. As root, PostgreSQL runs as the `postgres`
OS user (initdb and postgres refuse root).
"""

import contextlib
import os
import pwd
import select
import shutil
import signal
import subprocess
import tempfile
import time

from throwaway import free_port, is_root, register, unregister, wait_until

PG_BIN = os.environ.get("PORTAL_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_TOOLS = "/usr/bin"  # psql, pg_isready, pg_dump from postgresql-client

# The suite's clusters trade durability for speed: nothing is fsynced and a
# commit returns before its WAL is written. The durability test asks for a
# cluster with PostgreSQL's own defaults instead (durable=True).
FAST_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
DURABLE_SETTINGS = "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"


class PostgresCluster:
    """A throwaway PostgreSQL 15 cluster on a free loopback port.

    Superuser `portal`, trust authentication, database `portal` created.
    durable: fsync and synchronous commit on (default off, for speed).
    """

    def __init__(self, start=True, durable=False):
        self.dir = tempfile.mkdtemp(prefix="portal-pg-")
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgresql.log")
        self.port = None
        self.running = False
        self.durable = durable
        self.run_as = None  # the OS user PostgreSQL runs as (None: this process's)
        register(self)
        try:
            if is_root():
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                self.run_as = "postgres"
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
            f"{DURABLE_SETTINGS if self.durable else FAST_SETTINGS} "
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
            if not self.postmaster_pid() and time.monotonic() > deadline - timeout + 2:
                # postmaster.pid never appeared or vanished: it failed to start
                self.running = False
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL not ready within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def postmaster_pid(self):
        """The running postmaster's pid, or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

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

    def crash(self, timeout=30):
        """SIGKILLs the postmaster and every process it started, as a power
        cut would, without a shutdown checkpoint; waits until all are gone.
        start() then runs PostgreSQL's crash recovery."""
        pid = self.postmaster_pid()
        if pid is None:
            raise AssertionError("crash(): PostgreSQL is not running")
        victims = [pid] + _children(pid)
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not any(_alive(v) for v in victims), timeout,
                   message="the killed PostgreSQL processes to be gone")
        self.running = False

    def destroy(self):
        """Stops the server and deletes every file of the cluster."""
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            unregister(self)

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

    @contextlib.contextmanager
    def holding(self, sql, database="portal", timeout=30):
        """Runs `sql` (e.g. a SELECT ... FOR UPDATE) in a transaction that
        stays open, holding its locks, until the with-block ends."""
        proc = subprocess.Popen(
            [os.path.join(PG_TOOLS, "psql"), self.url_for(database), "-v", "ON_ERROR_STOP=1",
             "-At"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            proc.stdin.write(f"begin;\n{sql};\nselect 'held';\n")
            proc.stdin.flush()
            # Unbuffered reads: a buffered reader could hold "held" while
            # select() waits on the empty pipe.
            out = b""
            deadline = time.monotonic() + timeout
            while b"held\n" not in out:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
                if not ready:
                    raise AssertionError(f"psql did not take the lock within {timeout}s: {sql!r}")
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"psql failed ({sql!r}): {proc.stderr.read().strip()}")
                out += chunk
            yield
        finally:
            try:
                proc.communicate("commit;\n", timeout=timeout)
            except (OSError, ValueError):
                proc.kill()
                proc.communicate()

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
        if self.run_as:
            argv = ["runuser", "-u", self.run_as, "--"] + argv
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            cwd=self.dir if not self.run_as else "/",
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{what} failed ({result.returncode}): {result.stderr.strip()}\n{self.log_tail()}"
            )
        return result


def _children(pid):
    """The pids whose parent is pid (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid):
    """Whether pid still exists, as a zombie too: PostgreSQL's own check
    (kill(pid, 0) on the pid in postmaster.pid) sees a zombie as running."""
    return os.path.exists(f"/proc/{pid}")

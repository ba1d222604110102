"""PgBouncer in transaction pooling mode in front of a test cluster (SPEC §3:
DATABASE_URL may point at PgBouncer in transaction mode, so the server keeps
no session state across transactions).

Python 3 standard library only; Debian's `pgbouncer` package
(deploy/install-deps.sh). As root it runs as the cluster's OS user
(pgbouncer refuses root).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile

from throwaway import free_port, register, unregister, wait_until

PGBOUNCER = os.environ.get("PORTAL_PGBOUNCER", "/usr/sbin/pgbouncer")


def available():
    return os.access(PGBOUNCER, os.X_OK)


class PgBouncer:
    """A pgbouncer process on a free loopback port that pools every database
    of `cluster` for its user `portal`.

    pool_size: server connections per database. Smaller than the portal's
    own pool, so that its connections really share server connections
    between transactions (what breaks session state and prepared statements).
    """

    def __init__(self, cluster, pool_mode="transaction", pool_size=2):
        self.cluster = cluster
        self.dir = tempfile.mkdtemp(prefix="portal-pgbouncer-")
        self.logfile = os.path.join(self.dir, "pgbouncer.log")
        self.port = None
        self.proc = None
        register(self)
        try:
            if cluster.run_as:
                pw = pwd.getpwnam(cluster.run_as)
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
            for attempt in range(3):  # the port is picked before pgbouncer binds it
                self.port = free_port()
                self._write_config(pool_mode, pool_size)
                if self._start():
                    return
            raise RuntimeError(f"pgbouncer did not start:\n{self.log_tail()}")
        except BaseException:
            self.cleanup()
            raise

    @property
    def url(self):
        return self.url_for("portal")

    def url_for(self, database):
        return f"postgresql://portal@127.0.0.1:{self.port}/{database}"

    def _write_config(self, pool_mode, pool_size):
        userlist = os.path.join(self.dir, "userlist.txt")
        with open(userlist, "w") as f:
            f.write('"portal" ""\n')
        ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write(f"""[databases]
* = host=127.0.0.1 port={self.cluster.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {userlist}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
logfile = {self.logfile}
pidfile = {os.path.join(self.dir, "pgbouncer.pid")}
admin_users = portal
""")
        if self.cluster.run_as:
            pw = pwd.getpwnam(self.cluster.run_as)
            for path in (userlist, ini):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.ini = ini

    def _start(self):
        # pgbouncer itself is the child (no runuser in between), so that
        # stop() signals pgbouncer and not a wrapper that would outlive it
        user = {}
        if self.cluster.run_as:
            pw = pwd.getpwnam(self.cluster.run_as)
            user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.proc = subprocess.Popen([PGBOUNCER, self.ini], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                     **user)

        def listening():
            if self.proc.poll() is not None:
                raise _Exited()
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        try:
            wait_until(listening, 15, message="pgbouncer to listen")
            return True
        except (AssertionError, _Exited):
            self.stop()
            return False

    def stop(self):
        """SIGINT: pgbouncer's "safe shutdown" after the current transactions."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            unregister(self)

    def show(self, what):
        """Rows of pgbouncer's admin console `SHOW <what>` as dicts."""
        result = subprocess.run(
            ["psql", self.url_for("pgbouncer"), "-X", "-A", "-F", "\t", "-c", f"SHOW {what}"],
            capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"SHOW {what} failed: {result.stderr.strip()}")
        lines = result.stdout.splitlines()
        header = lines[0].split("\t")
        return [dict(zip(header, line.split("\t"))) for line in lines[1:-1]]

    def log_tail(self, lines=40):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no pgbouncer log)"


class _Exited(Exception):
    pass

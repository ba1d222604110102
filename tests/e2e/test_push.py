"""`upload-portal push FILE... --url URL`, the resuming tus client (issue 12),
against the real server and PostgreSQL.

    a fresh upload: the upload object on stdout, its sha256 the file's, one
    summary line on stderr, nothing left in the state dir
    a progress line on a terminal
    a client killed mid-way resumes on the next run and sends only the rest
    (the server's access log counts the PATCH bytes)
    a server SIGKILLed mid-upload and restarted: the same client process
    re-syncs with HEAD and completes with the right sha256, sending only
    what was not durable
    a server not up yet: the client backs off and retries until it is
    a state entry that points at another upload: the sha256 check fails,
    exit 1 with one line
    usage errors (exit 2) and failures (exit 1), one line each

The client is paused mid-upload by its test-only failpoint
(PORTAL_FAILPOINT_PUSH_PAUSE_AT/_FILE, storage/failpoints.hpp): it creates
FILE.ready and waits for FILE, so the tests wait on a condition, never a delay.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_push        (from tests/e2e)
"""

import hashlib
import json
import os
import pty
import re
import shutil
import subprocess
import tempfile
import unittest

import archives as A
from portal_case import PortalTestCase
from portal_server import Portal
from test_tls import make_certificate
from throwaway import read_pty, wait_until
from upload_checks import UploadChecks

MiB = 1 << 20
CHUNK = 256 * 1024
NO_RATE_LIMITS = {
    "PORTAL_UPLOAD_STARTS_PER_MINUTE": "100000",
    "PORTAL_UPLOADS_PER_USER": "64",
}


def archive_of(size, seed):
    """A gzip (level 0: its length depends only on `size`) tar of `size` random bytes."""
    return A.gzip_bytes(A.random_tar(size, seed=seed), level=0)


class PushTest(PortalTestCase, UploadChecks):
    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("pusher", "uploader")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="portal-push-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.state_home = os.path.join(self.tmp, "state")

    # -- helpers

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def push_env(self, **extra):
        env = dict(self.portal.env)
        env.update({"PORTAL_TOKEN": self.token, "XDG_STATE_HOME": self.state_home,
                    "PORTAL_PUSH_CHUNK_BYTES": str(CHUNK)})
        env.update(extra)
        return env

    def push(self, *files, portal=None, env=None, timeout=120, url=None):
        portal = portal or self.portal
        merged = self.push_env()
        merged.update(env or {})
        return subprocess.run([portal.binary, "push", *files, "--url", url or portal.base_url],
                              capture_output=True, text=True, env=merged, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=self.tmp)

    def push_paused(self, path, pause_at, portal=None, gate="gate"):
        """A push process that stops once the server acknowledged `pause_at`
        bytes; returns (process, the file that lets it go on)."""
        portal = portal or self.portal
        gate = os.path.join(self.tmp, gate)
        env = self.push_env(PORTAL_FAILPOINT_PUSH_PAUSE_AT=str(pause_at),
                            PORTAL_FAILPOINT_PUSH_PAUSE_FILE=gate)
        proc = subprocess.Popen([portal.binary, "push", path, "--url", portal.base_url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL, cwd=self.tmp)
        self.addCleanup(self.reap, proc)
        wait_until(lambda: os.path.exists(gate + ".ready") or proc.poll() is not None, 60,
                   message="the client to pause")
        if proc.poll() is not None:
            self.fail("the client exited rather than paused:\n" + proc.stderr.read())
        return proc, gate

    @staticmethod
    def reap(proc):
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)

    def state_entries(self):
        d = os.path.join(self.state_home, "upload-portal", "push")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def patch_bytes(self, portal, upload_id):
        """Body bytes the server received in PATCHes of this upload (access log)."""
        return sum(e.get("bytes_received", 0) for e in portal.logs
                   if e.get("msg") == "request" and e.get("method") == "PATCH"
                   and e.get("path", "").endswith("/" + upload_id))

    def remembered_upload(self, portal):
        """The id of the one upload the state dir remembers."""
        entries = self.state_entries()
        self.assertEqual(len(entries), 1)
        return self.tus_id(portal, os.path.join(self.state_home, "upload-portal", "push",
                                                entries[0]))

    def tus_id(self, portal, state_file):
        with open(state_file) as f:
            entry = json.load(f)
        self.assertEqual(entry["server"], portal.base_url)
        return entry["upload_url"].rsplit("/", 1)[1]

    def assert_pushed(self, result, archive, filename):
        """exit 0, one upload object on stdout, one summary line on stderr."""
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 1, result.stdout)
        obj = json.loads(lines[0])
        self.assertEqual(obj["sha256"], hashlib.sha256(archive).hexdigest())
        self.assertEqual(obj["filename"], filename)
        self.assertEqual(obj["size"], len(archive))
        status, _, body = self.portal.request("GET", "/api/v1/uploads/" + obj["id"],
                                              headers=self.auth(self.token))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["sha256"], obj["sha256"])
        summary = [l for l in result.stderr.splitlines() if l.startswith("push ")]
        self.assertEqual(len(summary), 1, result.stderr)
        self.assertRegex(summary[0], r"^push .*" + re.escape(filename) + r": .* uploaded as " +
                         re.escape(obj["id"]) + r", sent .* s, sha256 " + obj["sha256"] +
                         r" verified$")
        self.assertEqual(self.state_entries(), [], "nothing left in the state dir")
        return obj, summary[0]

    # -- tests

    def test_fresh_upload(self):
        archive = archive_of(MiB, seed=1)
        path = self.write("fresh.tar.gz", archive)
        result = self.push(path)
        obj, summary = self.assert_pushed(result, archive, "fresh.tar.gz")
        self.assertNotIn("resumed", summary)
        self.assertEqual(result.stderr.splitlines(), [summary], "stderr is not a terminal: no progress")
        self.assertEqual(self.patch_bytes(self.portal, obj["id"]), len(archive))
        patches = [e for e in self.portal.logs if e.get("msg") == "request"
                   and e.get("method") == "PATCH" and e.get("path", "").endswith("/" + obj["id"])]
        self.assertEqual(len(patches), (len(archive) + CHUNK - 1) // CHUNK)
        self.assertNotIn(self.token, result.stdout + result.stderr)

    def test_the_tus_endpoint_url_names_the_same_server(self):
        archive = archive_of(100_000, seed=3)
        path = self.write("via-endpoint.tar.gz", archive)
        for url in (self.portal.base_url + "/api/v1/tus/", self.portal.base_url + "/api/v1/tus"):
            with self.subTest(url=url):
                os.utime(path)  # a new state key: a fresh upload each time
                self.assert_pushed(self.push(path, url=url), archive, "via-endpoint.tar.gz")

    def test_a_path_with_a_newline_stays_one_line(self):
        # A directory's name may hold a newline (review 4): the summary line
        # shows it escaped instead of splitting in two.
        directory = os.path.join(self.tmp, "two\nlines")
        os.mkdir(directory)
        archive = archive_of(100_000, seed=21)
        path = os.path.join(directory, "nl.tar.gz")
        with open(path, "wb") as f:
            f.write(archive)
        result = self.push(path)
        _, summary = self.assert_pushed(result, archive, "nl.tar.gz")
        self.assertIn("two\\nlines/nl.tar.gz: ", summary)
        self.assertEqual(result.stderr.splitlines(), [summary])

    def test_several_files_one_object_each(self):
        archives = [archive_of(100_000 + i, seed=10 + i) for i in range(2)]
        paths = [self.write(f"many-{i}.tar.gz", a) for i, a in enumerate(archives)]
        result = self.push(*paths)
        self.assertEqual(result.returncode, 0, result.stderr)
        objs = [json.loads(l) for l in result.stdout.splitlines()]
        self.assertEqual([o["sha256"] for o in objs], [hashlib.sha256(a).hexdigest() for a in archives])
        self.assertEqual(len(result.stderr.splitlines()), 2, result.stderr)

    def test_progress_on_a_terminal(self):
        archive = archive_of(MiB, seed=2)
        path = self.write("tty.tar.gz", archive)
        main, secondary = pty.openpty()
        try:
            proc = subprocess.Popen([self.portal.binary, "push", path, "--url", self.portal.base_url],
                                    env=self.push_env(), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=secondary, cwd=self.tmp)
            os.close(secondary)
            secondary = None
            seen = read_pty(main)
            out, _ = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 0, seen)
        finally:
            os.close(main)
            if secondary is not None:
                os.close(secondary)
        self.assertIn(b"\rpush tty.tar.gz: ", seen)
        self.assertIn(b"%)", seen)
        self.assertIn(b"verified", seen)
        self.assertEqual(json.loads(out)["sha256"], hashlib.sha256(archive).hexdigest())

    def test_killed_client_resumes_on_the_next_run(self):
        archive = archive_of(4 * MiB, seed=3)
        path = self.write("resumed.tar.gz", archive)
        proc, _ = self.push_paused(path, MiB)
        upload_id = self.remembered_upload(self.portal)
        proc.kill()
        proc.communicate(timeout=30)
        first = self.patch_bytes(self.portal, upload_id)
        self.assertGreaterEqual(first, MiB)
        self.assertLess(first, len(archive))

        result = self.push(path)
        obj, summary = self.assert_pushed(result, archive, "resumed.tar.gz")
        self.assertEqual(obj["id"], upload_id)
        self.assertIn("(resumed at ", summary)
        second = self.patch_bytes(self.portal, upload_id) - first
        self.assertEqual(second, len(archive) - first, "only the rest was sent again")

    def test_push_survives_a_server_crash(self):
        first = self.start_portal(env=dict(NO_RATE_LIMITS))
        archive = archive_of(4 * MiB, seed=4)
        path = self.write("crash.tar.gz", archive)
        proc, gate = self.push_paused(path, MiB, portal=first)
        upload_id = self.remembered_upload(first)
        durable = self.patch_bytes(first, upload_id)
        first.kill()

        # the same port, data dir and database: the client's URL still holds
        env = {k: v for k, v in first.env.items() if k.startswith("PORTAL_")}
        env["PORTAL_LISTEN"] = f"127.0.0.1:{first.port}"
        second = Portal(first.env["DATABASE_URL"], env=env)
        self.addCleanup(second.cleanup)
        second.start()
        with open(gate, "w"):
            pass  # the client goes on: its kept-alive connection is dead
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        obj = json.loads(out)
        self.assertEqual(obj["id"], upload_id)
        self.assertEqual(obj["sha256"], hashlib.sha256(archive).hexdigest())
        self.assertEqual(self.patch_bytes(second, upload_id), len(archive) - durable,
                         "the durable prefix was not sent again")
        self.assertEqual(self.state_entries(), [])

    def test_a_last_patch_answered_503_counts_as_sent(self):
        # The last PATCH's record is held past the db deadline: 503, and the
        # server keeps the whole upload, which push's next HEADs complete
        # (423 while it is recorded). Those bytes were sent, once: the
        # summary counts them (it said "sent" without them).
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_DEADLINE_MS="1000"))
        archive = archive_of(2 * CHUNK, seed=11)
        path = self.write("held.tar.gz", archive)
        proc, gate = self.push_paused(path, CHUNK, portal=server)
        upload_id = self.remembered_upload(server)
        with self.pg.holding(f"select 1 from tus_uploads where id = '{upload_id}' for update"):
            with open(gate, "w"):
                pass
            wait_until(lambda: any(l.get("msg") == "tus upload complete but not recorded; kept "
                                   "for a retry" for l in server.logs), 30,
                       message="the last PATCH answered 503, its upload kept")
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(json.loads(out)["id"], upload_id)
        self.assertIn("503 unavailable", err)
        summary = [l for l in err.splitlines() if l.startswith("push ")]
        self.assertEqual(len(summary), 1, err)
        sizes = re.search(r": (\S+ \S+) uploaded as \S+, sent (\S+ \S+) in ", summary[0])
        self.assertIsNotNone(sizes, summary[0])
        self.assertEqual(sizes.group(2), sizes.group(1), summary[0])
        self.assertEqual(self.patch_bytes(server, upload_id), len(archive), "no byte sent twice")

    def test_sent_counts_no_byte_of_another_run(self):
        # Two runs of one file share the state dir: A created the upload and
        # paused; B resumed it and sent a chunk. A's next PATCH gets 409 (not
        # a byte of it read), it re-syncs, and finishes: it sent all but B's
        # chunk, and says so (it counted B's chunk as its own).
        archive = archive_of(4 * CHUNK, seed=21)
        path = self.write("twice.tar.gz", archive)
        a, gate_a = self.push_paused(path, CHUNK, gate="gate-a")
        b, gate_b = self.push_paused(path, 2 * CHUNK, gate="gate-b")
        with open(gate_a, "w"):
            pass
        out, err = a.communicate(timeout=120)
        self.assertEqual(a.returncode, 0, err)
        self.assertTrue(any(l.get("msg") == "request" and l.get("method") == "PATCH"
                            and l.get("status") == 409 for l in self.portal.logs),
                        "A's PATCH met B's bytes")
        summary = [l for l in err.splitlines() if l.startswith("push ")]
        self.assertEqual(len(summary), 1, err)
        sent = re.search(r", sent (\S+ \S+) in ", summary[0])
        self.assertIsNotNone(sent, summary[0])
        self.assertEqual(sent.group(1), f"{(len(archive) - CHUNK) / 1024:.1f} KiB", summary[0])

    def test_retries_until_the_server_is_up(self):
        # a port where a server listened and no longer does: refused at first
        gone = self.start_portal(env=dict(NO_RATE_LIMITS))
        port = gone.port
        self.assertEqual(gone.terminate(), 0)
        archive = archive_of(300_000, seed=10)
        path = self.write("later.tar.gz", archive)
        proc = subprocess.Popen([gone.binary, "push", path, "--url", f"http://127.0.0.1:{port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.push_env(), stdin=subprocess.DEVNULL, cwd=self.tmp)
        self.addCleanup(self.reap, proc)
        first = proc.stderr.readline()  # blocks until the client says something
        self.assertRegex(first, r"^upload-portal push: http://127\.0\.0\.1:\d+: Connection refused; "
                                r"retrying in \d+ ms \(attempt 2 of 8\)$")
        env = {k: v for k, v in gone.env.items() if k.startswith("PORTAL_")}
        env["PORTAL_LISTEN"] = f"127.0.0.1:{port}"
        later = Portal(gone.env["DATABASE_URL"], env=env)
        self.addCleanup(later.cleanup)
        later.start()
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, first + err)
        self.assertEqual(json.loads(out)["sha256"], hashlib.sha256(archive).hexdigest())

    def test_a_state_entry_pointing_at_another_upload_fails_the_sha256_check(self):
        # two archives of the same length: `other` is uploaded, then the state
        # entry of `mine` is made to point at it (a damaged or copied state dir)
        other = archive_of(300_000, seed=5)
        mine = archive_of(300_000, seed=6)
        self.assertEqual(len(other), len(mine))
        other_obj, _ = self.assert_pushed(self.push(self.write("other.tar.gz", other)), other,
                                          "other.tar.gz")
        path = self.write("mine.tar.gz", mine)
        st = os.stat(path)
        key = f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
        entry_dir = os.path.join(self.state_home, "upload-portal", "push")
        os.makedirs(entry_dir, exist_ok=True)
        entry = os.path.join(entry_dir, hashlib.sha256(key.encode()).hexdigest() + ".json")
        with open(entry, "w") as f:
            json.dump({"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                       "server": self.portal.base_url,
                       "upload_url": self.portal.base_url + "/api/v1/tus/" + other_obj["id"]}, f)

        result = self.push(path)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn("sha256 mismatch", lines[0])
        self.assertIn(other_obj["sha256"], lines[0])
        self.assertIn(hashlib.sha256(mine).hexdigest(), lines[0])

    @unittest.skipUnless(shutil.which("openssl"), "needs the openssl CLI")
    def test_https_verifies_the_certificate(self):
        cert, key = make_certificate(self.tmp)
        tls = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_TLS_CERT=cert, PORTAL_TLS_KEY=key))
        url = "https://127.0.0.1:%d" % tls.port
        archive = archive_of(300_000, seed=9)
        path = self.write("tls.tar.gz", archive)
        env = self.push_env()
        refused = subprocess.run([tls.binary, "push", path, "--url", url], capture_output=True,
                                 text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(refused.returncode, 1, refused.stderr)
        self.assertEqual(len(refused.stderr.splitlines()), 1, refused.stderr)
        self.assertIn("certificate verify failed", refused.stderr)
        env["SSL_CERT_FILE"] = cert
        ok = subprocess.run([tls.binary, "push", path, "--url", url], capture_output=True, text=True,
                            env=env, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(json.loads(ok.stdout)["sha256"], hashlib.sha256(archive).hexdigest())

    def test_usage_errors(self):
        path = self.write("u.tar.gz", archive_of(1000, seed=7))
        url = self.portal.base_url
        cases = [
            ((), "missing FILE"),
            ((path,), "missing --url"),
            ((path, "--url", "ftp://example.com"), "--url must be"),
            ((path, "--url", "not a url"), "--url must be"),
            ((path, "--url", url, "--url", url), "--url"),
            ((path, "--url", url, "--bogus"), "--bogus"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                r = subprocess.run([self.portal.binary, "push", *args], capture_output=True, text=True,
                                   env=self.push_env(), stdin=subprocess.DEVNULL, cwd=self.tmp)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertIn(needle, r.stderr)
                self.assertIn("push --help", r.stderr)
        r = subprocess.run([self.portal.binary, "push", "--help"], capture_output=True, text=True,
                           env=self.push_env(), stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: upload-portal push FILE... --url URL", r.stdout)

    def test_failures_are_one_line(self):
        path = self.write("f.tar.gz", archive_of(1000, seed=8))
        cases = [
            ((path,), {"PORTAL_TOKEN": ""}, "PORTAL_TOKEN"),
            ((os.path.join(self.tmp, "missing.tar.gz"),), {},
             "missing.tar.gz: No such file or directory"),
            # a name's escape sequence does not reach the terminal
            ((os.path.join(self.tmp, "esc\x1b[2J.tar.gz"),), {}, "esc\\x1b[2J.tar.gz"),
            ((self.tmp,), {}, "not a regular file"),
            ((path,), {"PORTAL_TOKEN": "upt_AAAAAAAAAAAAAAAA_" + "B" * 43}, "401"),
            ((path,), {"PORTAL_PUSH_CHUNK_BYTES": "12"}, "PORTAL_PUSH_CHUNK_BYTES"),
            # a refusal names the file it is about (of several, it may be any)
            ((self.write("bad.tar.gz", b"not gzip at all" * 100),), {},
             "bad.tar.gz: 415 unsupported_media_type"),
        ]
        for files, env, needle in cases:
            with self.subTest(needle=needle):
                r = self.push(*files, env=env)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertIn(needle, r.stderr)
                self.assertNotIn("filesystem error", r.stderr)
                self.assertNotIn("\x1b", r.stderr)
        self.assertEqual(self.state_entries(), [])


if __name__ == "__main__":
    unittest.main()

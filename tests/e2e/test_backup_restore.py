"""Backup and restore drills: the real binary against real PostgreSQL databases
(SPEC §2 `backup`/`restore`, §11 "restore").

    upload, back up, wipe, restore: downloads byte-identical, users, tokens
    (also a revoked one) and the audit trail exactly as they were
    a backup taken while uploads and deletes run restores consistently: no
    row without its file, no file without its row
    refusals: a database with users or uploads, a data dir with archives
    (unless --force), a file that exists, a table nobody decided about
    a damaged backup (a flipped byte, an archive changed and re-compressed, a
    cut-off file) fails with one line, and leaves the target untouched
    memory stays flat: peak RSS of a backup of BACKUP_RSS_TEST_MIB of archives

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_backup_restore        (from tests/e2e)
"""

import hashlib
import io
import json
import os
import pty
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import unittest

import archives as A
from portal_harness import Portal, PostgresCluster, build_info, wait_until
from throwaway import read_pty

REQUEST_TIMEOUT = 60
NO_RATE_LIMITS = {
    "PORTAL_UPLOAD_STARTS_PER_MINUTE": "100000",
    "PORTAL_UPLOADS_PER_USER": "64",
}
# Rows a backup holds, in the backup's own words (db/backup_rows.hpp).
BACKED_UP = ("users", "api_tokens", "uploads", "audit_events")
# Megabytes of archives for the memory test; the report's 2 GiB figure:
# BACKUP_RSS_TEST_MIB=2048.
RSS_TEST_MIB = int(os.environ.get("BACKUP_RSS_TEST_MIB", "256"))
RSS_LIMIT_MIB = 64


def one_line(text):
    stripped = text.rstrip("\n")
    return bool(stripped.strip()) and "\n" not in stripped


# A child's ru_maxrss starts at its parent's RSS (Linux carries the high-water
# mark of the forked image across exec), and this test process holds the
# archives it uploaded. So a small fresh interpreter spawns the command and
# reports the command's own peak.
_MEASURE = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\npeak-rss-kib {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(argv, env, cwd):
    """Runs argv; returns (CompletedProcess without the marker line, peak RSS in KiB)."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, *argv], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200)
    head, _, tail = result.stderr.rpartition("\npeak-rss-kib ")
    result.stderr = head
    return result, int(tail.strip())


def table_rows(pg, database, table, exclude_event=None):
    """Every row of `table` as JSON text, in id order (the backup's own form),
    without the volume an upload's file was on: it names a disk of the
    source deployment, and restore leaves it out."""
    where = f" where event <> '{exclude_event}'" if exclude_event else ""
    out = subprocess.run(
        ["psql", pg.url_for(database), "-v", "ON_ERROR_STOP=1", "-Atc",
         f"select (to_jsonb(t) - 'volume_id')::text from {table} t{where} order by id"],
        capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.splitlines()


class Instance:
    """One deployment's state: a database and a data dir (a Fly volume)."""

    def __init__(self, test, pg, database, env=None):
        self.database = database
        if database != "portal":
            pg.create_database(database)
        self.portal = Portal(pg.url_for(database), env={**NO_RATE_LIMITS, **(env or {})})
        test.addCleanup(self.portal.cleanup)

    def cli(self, *args, **kwargs):
        return self.portal.run_cli(*args, timeout=600, **kwargs)

    def upload(self, token, name, data):
        status, _, body = self.portal.request(
            "PUT", f"/api/v1/uploads/{name}", headers={"Authorization": f"Bearer {token}"},
            body=data, timeout=REQUEST_TIMEOUT)
        if status != 201:
            raise AssertionError(f"upload {name}: {status} {body[:200]!r}")
        return json.loads(body)

    def download(self, token, upload_id):
        status, _, body = self.portal.request(
            "GET", f"/api/v1/uploads/{upload_id}/content",
            headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT)
        return status, body

    def archives(self):
        path = os.path.join(self.portal.data_dir, "archives")
        return sorted(os.listdir(path)) if os.path.isdir(path) else []


class BackupRestoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresCluster()
        cls.addClassCleanup(cls.pg.destroy)
        cls.work = tempfile.mkdtemp(prefix="portal-backup-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.counter = 0

    def setUp(self):
        type(self).counter += 1
        self.n = self.counter
        self.source = Instance(self, self.pg, "portal" if self.n == 1 else f"source{self.n}")
        self.source.portal.migrate()
        self.source.portal.start()
        self.admin = self.source.portal.create_user_and_token("admin", role="admin")
        self.alice = self.source.portal.create_user_and_token("alice")
        # a revoked token must stay revoked after the restore
        self.revoked = self.source.portal.create_user_and_token("bob")
        token_id = self.revoked[len("upt_"):len("upt_") + 16]  # the id may hold "_" itself
        result = self.source.cli("token", "revoke", token_id)
        self.assertEqual(result.returncode, 0, result.stderr)

    def target(self, name=None, env=None):
        return Instance(self, self.pg, name or f"target{self.n}", env=env)

    def backup(self, instance=None, name="backup.tar.zst"):
        path = os.path.join(self.work, f"{self.n}-{name}")
        result = (instance or self.source).cli("backup", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        return path, result

    def restore(self, instance, path, *extra):
        return instance.cli("restore", path, *extra)

    def some_uploads(self):
        made = {}
        for i, (token, name, data) in enumerate([
            (self.alice, "a.tar.gz", A.gzip_bytes(A.tar_bytes(A.sample_members(seed=1)))),
            (self.alice, "b.tar.zst", A.zstd_bytes(A.tar_bytes(A.sample_members(seed=2, big=300_000)))),
            (self.admin, "c.tgz", A.gzip_bytes(A.random_tar(2_000_000, seed=3))),
        ]):
            obj = self.source.upload(token, name, data)
            made[obj["id"]] = (token, data, obj)
        return made

    def assert_untouched(self, target, detail):
        """A refused or failed restore changed nothing."""
        self.assertEqual(target.archives(), [], detail)
        tmp = os.path.join(target.portal.data_dir, "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [], detail)
        present = self.pg.psql("select to_regclass('public.users') is not null", database=target.database)
        if present == "t":
            self.assertEqual(self.pg.psql("select count(*) from users", database=target.database), "0")

    # -- the drill

    def test_drill_upload_backup_wipe_restore(self):
        made = self.some_uploads()
        before = {t: table_rows(self.pg, self.source.database, t) for t in BACKED_UP}
        path, result = self.backup()
        self.assertTrue(one_line(result.stdout), result.stdout)
        self.assertIn("3 uploads", result.stdout)
        self.assertEqual(subprocess.run(["zstd", "-tq", path]).returncode, 0, "zstd frame checksum")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, "a backup holds password hashes")
        self.assertEqual([f for f in os.listdir(self.work) if "partial" in f], [])
        # the backup is audited in the source
        self.assertEqual(self.pg.psql("select count(*) from audit_events where event = 'backup.created'",
                                      database=self.source.database), "1")

        # wipe: a new database that was never migrated, an empty data dir
        target = self.target()
        result = self.restore(target, path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("every sha256 verified", result.stdout)

        for table in BACKED_UP:
            after = table_rows(self.pg, target.database, table, exclude_event="backup.restored"
                               if table == "audit_events" else None)
            self.assertEqual(after, before[table], table)
        self.assertEqual(self.pg.psql("select count(*) from audit_events where event = 'backup.restored'",
                                      database=target.database), "1")
        self.assertEqual(sorted(made), target.archives())
        self.assertEqual(os.listdir(os.path.join(target.portal.data_dir, "tmp")), [], "staging removed")

        # the restored deployment serves: every download byte-identical, the
        # tokens as they were (the revoked one still refused), sequences past
        # the restored ids
        target.portal.start()
        for upload_id, (token, data, obj) in made.items():
            status, body = target.download(token, upload_id)
            self.assertEqual((status, body), (200, data), upload_id)
            status, _, listed = target.portal.get_json(f"/api/v1/uploads/{upload_id}", token=token)
            self.assertEqual((status, listed), (200, obj))
        status, _, _ = target.portal.get_json("/api/v1/me", token=self.revoked)
        self.assertEqual(status, 401)
        self.assertEqual([e for e in target.portal.logs if e.get("level") in ("warn", "error")], [],
                         "the restored data dir and database agree: nothing to reconcile")
        # restored rows record no volume; the first start on the volume
        # holding their files records it
        with open(os.path.join(target.portal.data_dir, "volume-id")) as f:
            volume = f.readline().strip()
        self.assertEqual(self.pg.psql("select distinct volume_id from uploads",
                                      database=target.database), volume)
        target.cli("user", "add", "carol")  # a new id from the restored sequence
        obj = target.upload(self.admin, "d.tar.gz", A.gzip_bytes(A.tar_bytes(A.sample_members(seed=4))))
        self.assertEqual(target.download(self.admin, obj["id"])[0], 200)

    # -- consistency under load

    def test_backup_while_uploads_run_restores_consistently(self):
        stop = threading.Event()
        done, deleted, errors = [], [], []
        before_backup = set()

        def uploader(worker):
            rng = random.Random(worker)
            i = 0
            while not stop.is_set():
                i += 1
                data = A.gzip_bytes(A.random_tar(rng.randrange(200_000, 3_000_000), seed=worker * 1000 + i))
                try:
                    obj = self.source.upload(self.alice, f"w{worker}-{i}.tar.gz", data)
                    done.append(obj["id"])
                    if i % 3 == 0:  # some deletes race the backup too
                        status, _, _ = self.source.portal.request(
                            "DELETE", f"/api/v1/uploads/{obj['id']}",
                            headers={"Authorization": f"Bearer {self.alice}"})
                        if status == 204:
                            deleted.append(obj["id"])
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=uploader, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(done) >= 8, 60, message="uploads to get going")
            before_backup = set(done) - set(deleted)
            path, result = self.backup()
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        self.assertEqual(errors, [])

        target = self.target()
        result = self.restore(target, path)
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = dict(line.split("|") for line in self.pg.psql(
            "select id, sha256 from uploads", database=target.database).splitlines())
        files = target.archives()
        self.assertEqual(sorted(rows), files, "no row without its file, no file without its row")
        for upload_id in files:
            with open(os.path.join(target.portal.data_dir, "archives", upload_id), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), rows[upload_id], upload_id)
        self.assertTrue(set(rows) <= set(done), "only acknowledged uploads")
        self.assertTrue(before_backup - set(deleted) <= set(rows),
                        "every upload finished before the backup began is in it")

    def test_changes_after_the_snapshot_stay_out_of_the_backup(self):
        version = self.source.cli("version").stdout
        if "failpoints on" not in version:
            self.skipTest("needs a build with PORTAL_FAILPOINTS=ON")
        made = self.some_uploads()
        victim = sorted(i for i, (token, _, _) in made.items() if token == self.alice)[0]
        pause = os.path.join(self.work, f"{self.n}-pause")
        path = os.path.join(self.work, f"{self.n}-paused.tar.zst")
        proc = subprocess.Popen([self.source.portal.binary, "backup", path],
                                env=dict(self.source.portal.env, PORTAL_FAILPOINT_BACKUP_PAUSE_FILE=pause),
                                cwd=self.source.portal.tmp, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: os.path.exists(pause + ".ready") or proc.poll() is not None, 60,
                       message="the backup's snapshot")
            # between the snapshot and the archives: one upload deleted (row
            # and file), one added
            status, _, _ = self.source.portal.request(
                "DELETE", f"/api/v1/uploads/{victim}", headers={"Authorization": f"Bearer {self.alice}"})
            self.assertEqual(status, 204)
            later = self.source.upload(self.alice, "later.tar.gz", A.gzip_bytes(A.tar_bytes(A.sample_members(seed=8))))
        finally:
            open(pause, "w").close()
            out, err = proc.communicate(timeout=300)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(f"upload {victim} was deleted while the backup ran; left out", err)
        self.assertIn("2 uploads", out)

        target = self.target()
        result = self.restore(target, path)
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = sorted(self.pg.psql("select id from uploads", database=target.database).split())
        self.assertEqual(rows, sorted(set(made) - {victim}))
        self.assertEqual(target.archives(), rows)
        self.assertNotIn(later["id"], rows)

    def test_an_empty_instance_keeps_its_own_audit_events(self):
        """A fresh deployment with no users still records failed logins; the
        restore keeps those events (renumbered after the backup's) and the
        backup's events keep their ids."""
        path, _ = self.backup()
        target = self.target(env={"PORTAL_DB_DEADLINE_MS": "30000"})  # Argon2id on a busy machine
        target.portal.migrate()
        target.portal.start()
        status, _, _ = target.portal.request(
            "POST", "/login", headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=b"username=nobody&password=wrong")
        self.assertEqual(status, 401)
        target.portal.terminate()
        self.assertEqual(self.pg.psql("select count(*) from audit_events", database=target.database), "1")

        result = self.restore(target, path)
        self.assertEqual(result.returncode, 0, result.stderr)
        restored = table_rows(self.pg, target.database, "audit_events")
        source = table_rows(self.pg, self.source.database, "audit_events", exclude_event="backup.created")
        self.assertEqual(restored[: len(source)], source, "the backup's events, ids and all")
        events = [json.loads(r)["event"] for r in restored[len(source):]]
        self.assertEqual(sorted(events), ["backup.restored", "login.failed"])

    # -- refusals

    def test_restore_refuses_a_used_target_unless_forced(self):
        made = self.some_uploads()
        path, _ = self.backup()
        other = self.source.upload(self.alice, "later.tar.gz", A.gzip_bytes(A.tar_bytes(A.sample_members(seed=9))))

        # the source itself: users and uploads
        result = self.restore(self.source, path)
        self.assertEqual(result.returncode, 1)
        self.assertTrue(one_line(result.stderr), result.stderr)
        self.assertIn("the database holds 3 users and 4 uploads", result.stderr)
        self.assertIn("--force", result.stderr)

        # an empty database, but a data dir holding archives
        target = self.target(env={"PORTAL_DATA_DIR": self.source.portal.data_dir})
        result = self.restore(target, path)
        self.assertEqual(result.returncode, 1)
        self.assertTrue(one_line(result.stderr), result.stderr)
        self.assertIn("holds 4 archives", result.stderr)
        self.assertEqual(self.pg.psql("select to_regclass('public.users') is null", database=target.database), "t",
                         "refused before migrating")

        # --force replaces the source's state with the backup's; what was
        # there is set aside, never deleted
        self.source.portal.terminate()
        result = self.restore(self.source, path, "--force")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(made), self.source.archives())
        aside = os.path.join(self.source.portal.data_dir, "orphans")
        replaced = [d for d in os.listdir(aside) if d.startswith("replaced-")]
        self.assertEqual(len(replaced), 1)
        self.assertEqual(sorted(os.listdir(os.path.join(aside, replaced[0]))), sorted([*made, other["id"]]))
        self.assertEqual(self.pg.psql("select count(*) from uploads", database=self.source.database), "3")

    def test_backup_refusals(self):
        path, _ = self.backup()
        result = self.source.cli("backup", path)
        self.assertEqual(result.returncode, 1)
        self.assertTrue(one_line(result.stderr), result.stderr)
        self.assertIn("exists", result.stderr)

        self.pg.psql("create table notes (id int)", database=self.source.database)
        try:
            result = self.source.cli("backup", path + ".2")
        finally:
            self.pg.psql("drop table notes", database=self.source.database)
        self.assertEqual(result.returncode, 1)
        self.assertTrue(one_line(result.stderr), result.stderr)
        self.assertIn("table notes is neither backed up nor left out", result.stderr)
        self.assertFalse(any(f.startswith(f"{self.n}-backup.tar.zst.2") for f in os.listdir(self.work)),
                         "no partial file left behind")

        result = self.source.cli("backup")
        self.assertEqual(result.returncode, 2)

    def test_backup_refuses_a_data_dir_without_the_files(self):
        # The volume not mounted, a mistyped PORTAL_DATA_DIR, a lost file: a
        # row that still exists has no file here. A backup without it would
        # pass every later check (zstd -t, restore), so none is made.
        made = self.some_uploads()
        empty = os.path.join(self.work, "empty-data")
        os.makedirs(os.path.join(empty, "tmp"))
        path = os.path.join(self.work, f"{self.n}-wrong.tar.zst")
        result = self.source.cli("backup", path, env={"PORTAL_DATA_DIR": empty})
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertTrue(one_line(result.stderr), result.stderr)
        self.assertIn(f"have rows but no files in PORTAL_DATA_DIR {empty}: is it the right "
                      "volume? refusing an incomplete backup", result.stderr)
        self.assertFalse(os.path.exists(path), "no backup file left behind")

        victim = sorted(made)[0]  # one file lost on the right volume
        os.unlink(os.path.join(self.source.portal.data_dir, "archives", victim))
        try:
            result = self.source.cli("backup", path)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertTrue(one_line(result.stderr), result.stderr)
            self.assertIn(f"upload {victim} has a row but no file in PORTAL_DATA_DIR",
                          result.stderr)
            self.assertFalse(os.path.exists(path), "no backup file left behind")
        finally:
            self.pg.psql(f"delete from uploads where id = '{victim}'",
                         database=self.source.database)

    def test_restore_refuses_a_newer_schema_than_the_backup(self):
        path, _ = self.backup()
        target = self.target()
        target.portal.migrate()
        self.pg.psql("insert into schema_migrations (version, name, checksum) values (9999, 'future', 'x')",
                     database=target.database)
        result = self.restore(target, path)
        self.assertEqual(result.returncode, 1)
        self.assertTrue(one_line(result.stderr), result.stderr)
        self.assertIn("newer than the backup's", result.stderr)
        self.assert_untouched(target, "newer schema")

    # -- damaged backups

    def damaged_restore(self, data, expect):
        path = os.path.join(self.work, f"{self.n}-damaged-{expect[:8]}.tar.zst")
        with open(path, "wb") as f:
            f.write(data)
        self.damaged_count = getattr(self, "damaged_count", 0) + 1
        target = self.target(f"target{self.n}_{self.damaged_count}")
        result = self.restore(target, path)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertTrue(one_line(result.stderr), result.stderr)
        self.assertIn(expect, result.stderr)
        self.assert_untouched(target, expect)
        return result.stderr

    def test_damaged_backups_fail_with_one_line(self):
        self.some_uploads()
        path, _ = self.backup()
        with open(path, "rb") as f:
            good = f.read()

        # a flipped byte in the compressed stream: zstd's checksum (or the
        # block decoder) catches it
        flipped = bytearray(good)
        flipped[len(good) // 2] ^= 0x01
        self.damaged_restore(bytes(flipped), "damaged")

        # an archive's bytes changed and the whole re-compressed cleanly: only
        # the manifest's sha256 can tell
        tar = bytearray(A.unzstd(good))
        member = next(m for m in tarfile.open(fileobj=io.BytesIO(bytes(tar))).getmembers()
                      if m.name.startswith("archives/"))
        tar[member.offset_data + member.size // 2] ^= 0x01
        stderr = self.damaged_restore(A.zstd_bytes(bytes(tar)), "sha256 mismatch")
        self.assertIn(member.name, stderr)

        # a backup cut off half-way (an interrupted copy)
        self.damaged_restore(good[: len(good) // 2], "damaged")

        # not a backup at all
        self.damaged_restore(A.zstd_bytes(A.tar_bytes([A.file("hello.txt", b"hi")])), "not an upload-portal backup")

    # -- progress on a terminal

    def test_restore_reports_progress_on_a_tty(self):
        self.some_uploads()
        path, _ = self.backup()
        target = self.target()
        main, secondary = pty.openpty()
        try:
            proc = subprocess.Popen([target.portal.binary, "restore", path], env=target.portal.env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary,
                                    cwd=target.portal.tmp)
            os.close(secondary)
            secondary = None
            seen = read_pty(main)
            self.assertEqual(proc.wait(60), 0)
            proc.stdout.close()
        finally:
            os.close(main)
            if secondary is not None:
                os.close(secondary)
        self.assertIn(b"\rrestore: ", seen)
        self.assertIn(b"%)", seen)

    # -- memory

    def test_backup_memory_stays_flat(self):
        chunk = 64
        count = max(1, RSS_TEST_MIB // chunk)
        for i in range(count):
            data = A.gzip_bytes(A.random_tar(chunk * 1024 * 1024, seed=100 + i), level=1)
            self.source.upload(self.admin, f"big-{i}.tar.gz", data)
        path = os.path.join(self.work, f"{self.n}-big.tar.zst")
        result, peak_kib = run_measured([self.source.portal.binary, "backup", path],
                                        env=self.source.portal.env, cwd=self.source.portal.tmp)
        self.assertEqual(result.returncode, 0, result.stderr)
        out = result.stdout
        peak_mib = peak_kib / 1024
        print(f"\nbackup of {count * chunk} MiB of archives: peak RSS {peak_mib:.1f} MiB; {out.strip()}")
        if not build_info()[1]:  # under ASan the RSS is mostly its shadow memory
            self.assertLess(peak_mib, RSS_LIMIT_MIB)
        os.unlink(path)


if __name__ == "__main__":
    unittest.main()

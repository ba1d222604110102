"""End-to-end tests of crash safety and start-up reconciliation (SPEC §5.1,
§9, §11): a server SIGKILLed mid-upload leaves nothing behind after its
restart, a file without a row goes to orphans/, a row without a file is
deleted.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_crash_recovery        (from tests/e2e)
"""

import json
import os
import shutil
import unittest

import archives as A
from portal_harness import Portal, PortalTestCase, wait_until
from upload_checks import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response

MiB = 1024 * 1024


def restarted(portal, env=None):
    """A new server process on the same data dir, database and settings as
    `portal` (which must have stopped)."""
    merged = {k: v for k, v in portal.env.items() if k.startswith("PORTAL_")}
    merged.update(env or {})
    p = Portal(portal.env["DATABASE_URL"], env=merged)
    p.data_dir = portal.data_dir  # for the tests' own checks
    return p


class CrashTest(PortalTestCase, UploadChecks):
    """SIGKILL mid-upload, then start-up reconciliation (SPEC §5.1, §9, §11).
    Each test runs its own servers; the class's server only runs the CLI."""

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("crashy", "uploader")
        cls.admin = cls.portal.create_user_and_token("crash-admin", "admin")
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=41)))

    def server(self, portal=None):
        """A fresh server (or a restart on `portal`'s data dir), cleaned up after the test."""
        p = restarted(portal) if portal else Portal(self.pg.url, env=self.PORTAL_ENV)
        self.addCleanup(p.cleanup)
        p.start()
        return p

    def server_on(self, where, **env):
        """A server on `where` (a data dir path, or the data dir of a stopped
        server), with `env` (e.g. FLY_MACHINE_ID) besides the class's."""
        data_dir = where if isinstance(where, str) else where.data_dir
        p = Portal(self.pg.url, env=dict(self.PORTAL_ENV, PORTAL_DATA_DIR=data_dir, **env))
        self.addCleanup(p.cleanup)
        p.start()
        return p

    def stop_cleanly(self, p):
        self.assertEqual(p.terminate(timeout=40), 0, p.output_tail())
        self.assertEqual(p.sanitizer_reports(), [])

    def test_kill_mid_upload(self):
        first = self.server()
        before = self.snapshot(first)
        archive = A.gzip_bytes(A.random_tar(64 * MiB, seed=42), level=0)
        sock = first.connect(timeout=REQUEST_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(self.head_bytes(self.token, "killed.tar.gz", len(archive)))
        sent = 0
        # send until a good part of the body is on disk, then stop sending
        for offset in range(0, 8 * MiB, MiB):
            sock.sendall(archive[offset:offset + MiB])
            sent += MiB
        part = wait_until(lambda: [f for f in self.dir_files("tmp", first) if f.endswith(".part")],
                          30, message="a .part file")
        wait_until(lambda: os.path.getsize(self.data_path("tmp", part[0], portal=first)) > MiB, 30,
                   message="the partial file to grow")
        first.kill()
        self.assertEqual(self.dir_files("tmp", first), part, "the crash left its partial file")

        second = self.server(first)
        self.assert_nothing_left(before, second, context="after the restart")
        self.assertEqual(self.dir_files("archives", second), [])
        logged = [e for e in second.logs if part[0] in json.dumps(e)]
        self.assertTrue(logged, "the removal of the stale partial file is logged")
        obj = self.upload_ok(self.token, "after-crash.tar.gz", self.small, "crashy", portal=second)
        self.assertEqual(self.dir_files("archives", second), [obj["id"]])
        self.stop_cleanly(second)

    def test_a_second_server_on_a_data_dir_in_use_is_refused_and_changes_nothing(self):
        # Its start-up reconciliation would run under the first server: empty
        # tmp/ under a streaming upload, set aside an archive whose row is a
        # moment away. It exits (1, one line) before touching anything.
        first = self.server()
        archive = A.gzip_bytes(A.random_tar(4 * MiB, seed=43), level=0)
        sock = first.connect(timeout=REQUEST_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(self.head_bytes(self.token, "streaming.tar.gz", len(archive)))
        sock.sendall(archive[:MiB])
        part = wait_until(lambda: self.dir_files("tmp", first), 30, message="a .part file")
        unrowed = self.data_path("archives", "committed-a-moment-before-its-row", portal=first)
        with open(unrowed, "wb") as f:
            f.write(self.small)
        with open(os.path.join(first.data_dir, "volume-id")) as f:
            volume_id = f.read()
        os.rmdir(self.data_path("orphans", portal=first))  # a start would make it again

        second = restarted(first)
        self.addCleanup(second.cleanup)
        second.start(wait=False)
        self.assertEqual(second.wait_exit(30), 1, second.output_tail())
        stderr = "".join(second.stderr_lines)
        self.assertIn(f"the data directory {first.data_dir} is in use", stderr)
        self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)

        self.assertEqual(self.dir_files("tmp", first), part)
        self.assertTrue(os.path.exists(unrowed))
        self.assertFalse(os.path.exists(self.data_path("orphans", portal=first)))
        with open(os.path.join(first.data_dir, "volume-id")) as f:
            self.assertEqual(f.read(), volume_id)
        sock.sendall(archive[MiB:])
        status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
        self.assert_upload(status, headers, body, archive, "streaming.tar.gz", "crashy", "tar.gz",
                           portal=first)
        os.unlink(unrowed)
        self.stop_cleanly(first)
        third = self.server(first)  # the lock went with its holder
        self.stop_cleanly(third)

    def test_file_without_row_goes_to_orphans(self):
        first = self.server()
        obj = self.upload_ok(self.token, "kept.tar.gz", self.small, "crashy", portal=first)
        self.stop_cleanly(first)
        orphan_id = "OrphanNoRow_" + os.urandom(6).hex()
        content = b"an archive whose row never committed"
        with open(self.data_path("archives", orphan_id, portal=first), "wb") as f:
            f.write(content)
        rows = self.row_count()

        second = self.server(first)
        self.assertEqual(self.dir_files("archives", second), [obj["id"]])
        orphans = self.dir_files("orphans", second)
        self.assertEqual(len(orphans), 1, orphans)
        self.assertTrue(orphans[0].startswith(orphan_id), orphans)
        with open(self.data_path("orphans", orphans[0], portal=second), "rb") as f:
            self.assertEqual(f.read(), content, "orphans are moved, never altered")
        self.assertEqual(self.row_count(), rows)
        self.assertTrue([e for e in second.logs if orphan_id in json.dumps(e)],
                        "the orphan is logged")
        # the known upload is untouched and still served
        status, _, body = second.request("GET", f"/api/v1/uploads/{obj['id']}/content",
                                         self.auth(self.token))
        self.assertEqual((status, body), (200, self.small))
        self.stop_cleanly(second)

    def volume_id(self, portal):
        with open(os.path.join(portal.data_dir, "volume-id")) as f:
            return f.readline().strip()  # the id; a second line names the machine

    def volume_of(self, upload_id):
        return self.pg.psql(f"select coalesce(volume_id, 'none') from uploads"
                            f" where id = '{upload_id}'").strip()

    def delete_upload(self, portal, upload_id):
        """The class's database is shared: no row is left for the next test."""
        status = portal.request("DELETE", f"/api/v1/uploads/{upload_id}",
                                self.auth(self.token))[0]
        self.assertEqual(status, 204)

    def two_uploads_and_their_id_copied(self):
        """A stopped server with two uploads, and an empty directory holding
        a copy of its volume-id (a lost id's recovery gone wrong)."""
        right = self.server()
        ups = [self.upload_ok(self.token, f"real{i}.tar.gz", self.small, "crashy", portal=right)
               for i in range(2)]
        self.stop_cleanly(right)
        wrong_dir = os.path.join(right.tmp, "copied-id")
        os.makedirs(wrong_dir)
        shutil.copy(os.path.join(right.data_dir, "volume-id"), wrong_dir)
        return right, ups, wrong_dir

    def assert_kept_then_delete(self, right, ups, stray):
        """Every row is still there and `ups` download on `right`; then all go."""
        ids = self.pg.psql("select id from uploads").split()
        for up in ups + [stray]:
            self.assertIn(up["id"], ids)
        back = self.server(right)
        for up in ups:
            self.assertEqual(back.get_json(f"/api/v1/uploads/{up['id']}", self.token)[0], 200)
        for up in ups + [stray]:
            self.delete_upload(back, up["id"])
        self.stop_cleanly(back)

    def test_a_wrong_data_dir_deletes_no_row_even_after_storing_one(self):
        # An unmounted volume or a mistyped PORTAL_DATA_DIR: the server starts
        # on a directory without the rows' files, takes an upload there, and
        # restarts there. Rows record the volume holding their file, so no
        # start deletes a row another volume holds, however many it holds.
        right = self.server()
        up = self.upload_ok(self.token, "mounted.tar.gz", self.small, "crashy", portal=right)
        self.assertEqual(self.volume_of(up["id"]), self.volume_id(right))
        self.stop_cleanly(right)

        wrong = self.server()  # a fresh, empty data dir on the same database
        self.assertNotEqual(self.volume_id(wrong), self.volume_id(right))
        stray = self.upload_ok(self.token, "stray.tar.gz", self.small, "crashy", portal=wrong)
        self.assertEqual(self.volume_of(stray["id"]), self.volume_id(wrong))
        self.stop_cleanly(wrong)
        again = self.server(wrong)
        self.stop_cleanly(again)
        ids = self.pg.psql("select id from uploads").split()
        self.assertIn(up["id"], ids)
        self.assertIn(stray["id"], ids)
        self.assertNotIn("upload row deleted: its archive file is missing",
                         [line.get("msg") for line in again.logs])
        # with one machine, every start there says the rows' files are elsewhere
        for p in (wrong, again):
            self.assertTrue(any(line.get("msg", "").startswith(
                "upload rows of other volumes: their files are not in this data directory")
                and line["level"] == "warn" and line["elsewhere"] >= 1 for line in p.logs),
                p.output_tail())

        back = self.server(right)  # the right directory again: nothing was lost
        status, _, obj = back.get_json(f"/api/v1/uploads/{up['id']}", self.token)
        self.assertEqual((status, obj["sha256"]), (200, up["sha256"]))
        self.assertEqual(self.dir_files("orphans", back), [])
        # the stray upload's file is on the other directory: its row is that
        # volume's to repair, not this one's, and this server cannot serve it
        self.assertIn(stray["id"], self.pg.psql("select id from uploads").split())
        for what in ("content", "entries"):
            status, headers, body = back.request(
                "GET", f"/api/v1/uploads/{stray['id']}/{what}", self.auth(self.token))
            self.assert_error(status, headers, body, 503, "storage_unavailable", what)
            self.assertIn("Retry-After", headers, what)
        # a file lost from its own volume is no matter of retrying
        own = self.data_path("archives", up["id"], portal=back)
        os.rename(own, own + ".away")
        status, headers, body = back.request(
            "GET", f"/api/v1/uploads/{up['id']}/content", self.auth(self.token))
        self.assert_error(status, headers, body, 500, "internal", "own volume")
        os.mkdir(own)  # opens as well as a file does, and is none
        status, headers, body = back.request(
            "GET", f"/api/v1/uploads/{up['id']}/content", self.auth(self.token))
        self.assert_error(status, headers, body, 500, "internal", "a directory in its place")
        os.rmdir(own)
        os.mkfifo(own)  # no writer: an open without O_NONBLOCK would never return
        for what in ("content", "entries"):
            status, headers, body = back.request(
                "GET", f"/api/v1/uploads/{up['id']}/{what}", self.auth(self.token))
            self.assert_error(status, headers, body, 500, "internal", f"a FIFO: {what}")
        os.unlink(own)
        # the server writes no symlink there: one that is there points
        # outside what it keeps, and neither endpoint follows it
        os.symlink(own + ".away", own)
        for what in ("content", "entries"):
            status, headers, body = back.request(
                "GET", f"/api/v1/uploads/{up['id']}/{what}", self.auth(self.token))
            self.assert_error(status, headers, body, 500, "internal", f"a symlink: {what}")
        os.unlink(own)
        os.rename(own + ".away", own)
        for uid in (up["id"], stray["id"]):
            self.delete_upload(back, uid)
        self.stop_cleanly(back)

    def test_a_copy_of_a_volume_on_another_machine_deletes_none_of_the_originals_rows(self):
        # A forked volume, or one made from a snapshot, holds the original's
        # volume-id file. On another machine it gets its own id, so its
        # starts leave the original's rows (whose newer files it lacks) alone.
        original = Portal(self.pg.url, env=dict(self.PORTAL_ENV, FLY_MACHINE_ID="machine1"))
        self.addCleanup(original.cleanup)
        original.start()
        old = self.upload_ok(self.token, "before-fork.tar.gz", self.small, "crashy",
                             portal=original)
        self.stop_cleanly(original)
        fork = os.path.join(original.tmp, "forked-data")
        shutil.copytree(original.data_dir, fork, symlinks=True)

        running = self.server_on(original, FLY_MACHINE_ID="machine1")
        new = self.upload_ok(self.token, "after-fork.tar.gz", self.small, "crashy",
                             portal=running)
        copy = self.server_on(fork, FLY_MACHINE_ID="machine2")
        self.assertNotEqual(self.volume_id(copy), self.volume_id(running))
        self.assertIn("this data directory is a copy of another machine's: it gets its own "
                      "volume id, and the rows of the original are left to the original",
                      [line.get("msg") for line in copy.logs])
        # a machine that holds none of the rows warns, also on Fly
        self.assertTrue(any(line.get("msg", "").startswith("upload rows of other volumes")
                            and line["level"] == "warn" for line in copy.logs), copy.output_tail())
        self.stop_cleanly(copy)
        self.stop_cleanly(self.server_on(fork, FLY_MACHINE_ID="machine2"))  # a restart there
        for up in (old, new):
            self.assertEqual(self.volume_of(up["id"]), self.volume_id(running))
            status, _, obj = running.get_json(f"/api/v1/uploads/{up['id']}", self.token)
            self.assertEqual((status, obj.get("sha256")), (200, up["sha256"]))
        self.assertEqual(self.dir_files("orphans", running), [])
        for up in (old, new):
            self.delete_upload(running, up["id"])
        self.stop_cleanly(running)

    def test_a_volume_id_written_to_the_wrong_directory_deletes_no_row(self):
        # The recovery of a lost volume-id gone wrong: the id is written to a
        # directory that holds none of its rows' files. That directory is not
        # the volume: it gets its own id, so neither this start nor one after
        # an upload there deletes the rows.
        right, ups, wrong_dir = self.two_uploads_and_their_id_copied()
        wrong = self.server_on(wrong_dir)
        self.assertNotEqual(self.volume_id(wrong), self.volume_id(right))
        renewed = [line for line in wrong.logs if line.get("msg", "").startswith(
            "this data directory holds none of the files of the rows of its volume id")]
        self.assertEqual([(r["was"], r["rows"]) for r in renewed],
                         [(self.volume_id(right), 2)], wrong.output_tail())
        stray = self.upload_ok(self.token, "stray.tar.gz", self.small, "crashy", portal=wrong)
        self.stop_cleanly(wrong)
        again = self.server_on(wrong_dir)
        self.stop_cleanly(again)
        self.assert_kept_then_delete(right, ups, stray)

    def test_a_start_without_the_database_records_no_volume_on_new_rows(self):
        # A start that cannot judge its directory (no database) may be on an
        # id copied by hand to the wrong directory: the uploads it takes
        # record no volume, so the next start (which judges and re-ids it)
        # deletes none of the real volume's rows and claims them for itself.
        right, ups, wrong_dir = self.two_uploads_and_their_id_copied()
        self.addCleanup(self.pg.start)  # whatever happens, the next test has a database
        self.pg.stop()
        p = Portal(self.pg.url, env=dict(self.PORTAL_ENV, PORTAL_DATA_DIR=wrong_dir))
        self.addCleanup(p.cleanup)
        p.start(wait="listening")
        self.pg.start()
        p.wait_ready()
        stray = self.upload_ok(self.token, "stray.tar.gz", self.small, "crashy", portal=p)
        self.assertEqual(self.volume_of(stray["id"]), "none")
        self.stop_cleanly(p)
        again = self.server_on(wrong_dir)
        self.stop_cleanly(again)
        self.assertNotEqual(self.volume_id(again), self.volume_id(right))
        self.assertEqual(self.volume_of(stray["id"]), self.volume_id(again))
        self.assert_kept_then_delete(right, ups, stray)

    def test_an_unusable_volume_id_refuses_to_start_and_repairs_nothing(self):
        first = self.server()
        up = self.upload_ok(self.token, "kept-aside.tar.gz", self.small, "crashy", portal=first)
        self.stop_cleanly(first)
        os.unlink(self.data_path("archives", up["id"], portal=first))  # would be deleted
        for content in ("", "not an id!\n", "abc\nmachine one\n"):
            with open(os.path.join(first.data_dir, "volume-id"), "w") as f:
                f.write(content)
            refused = restarted(first)
            self.addCleanup(refused.cleanup)
            refused.start(wait=False)
            self.assertEqual(refused.wait_exit(30), 1, refused.output_tail())
            stderr = "".join(refused.stderr_lines)
            self.assertIn("the data directory has no usable volume id", stderr)
            self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)
            self.assertIn(up["id"], self.pg.psql("select id from uploads").split())
            with open(os.path.join(first.data_dir, "volume-id")) as f:
                self.assertEqual(f.read(), content, "never replaced: an operator decides")
        self.pg.psql(f"delete from uploads where id = '{up['id']}'")

    def test_a_row_of_no_volume_is_claimed_by_the_volume_holding_its_file(self):
        # Rows made before volume ids (migration 0004) or restored from a
        # backup record none: the start on the volume holding the file records
        # it; one whose file is nowhere here is kept and reported, not deleted.
        first = self.server()
        held = self.upload_ok(self.token, "held.tar.gz", self.small, "crashy", portal=first)
        gone = self.upload_ok(self.token, "gone.tar.gz", self.small, "crashy", portal=first)
        self.stop_cleanly(first)
        os.unlink(self.data_path("archives", gone["id"], portal=first))
        self.pg.psql(f"update uploads set volume_id = null"
                     f" where id in ('{held['id']}', '{gone['id']}')")

        second = self.server(first)
        self.assertEqual(self.volume_of(held["id"]), self.volume_id(first))
        self.assertEqual(self.volume_of(gone["id"]), "none")
        kept = [line for line in second.logs
                if line.get("msg") == "upload rows kept without their file: they record no volume"]
        self.assertEqual([(k["rows"], k["first"]) for k in kept], [(1, gone["id"])])
        for uid in (held["id"], gone["id"]):
            self.delete_upload(second, uid)
        self.stop_cleanly(second)

    def test_row_without_file_is_deleted_and_audited(self):
        first = self.server()
        kept = self.upload_ok(self.token, "kept2.tar.gz", self.small, "crashy", portal=first)
        lost = self.upload_ok(self.token, "lost.tar.gz", self.small, "crashy", portal=first)
        self.stop_cleanly(first)
        os.unlink(self.data_path("archives", lost["id"], portal=first))
        ghost = "GhostRow_" + os.urandom(6).hex()  # a row of this volume, never with a file
        self.pg.psql(
            "insert into uploads (id, owner_id, filename, size, sha256, format, entries,"
            " uncompressed_size, volume_id) select '" + ghost + "', id, 'ghost.tar.gz', 10, '" +
            "a" * 64 + "', 'tar.gz', 1, 10240, '" + self.volume_id(first) +
            "' from users where username = 'crashy'")

        second = self.server(first)
        ids = set(self.pg.psql("select id from uploads").split())
        self.assertIn(kept["id"], ids)
        self.assertNotIn(lost["id"], ids)
        self.assertNotIn(ghost, ids)
        for uid in (lost["id"], ghost):
            status, headers, body = second.request("GET", f"/api/v1/uploads/{uid}",
                                                   self.auth(self.token))
            self.assert_error(status, headers, body, 404, "not_found", uid)
        self.assertEqual(self.dir_files("archives", second), [kept["id"]])
        self.assertEqual(self.dir_files("orphans", second), [])
        # each deletion is audited by the system (SPEC §11), once
        events = self.audit_events(self.admin, "upload.missing_file", portal=second)
        for uid in (lost["id"], ghost):
            mine = [e for e in events if e["detail"].get("upload_id") == uid]
            self.assertEqual(len(mine), 1, events)
            self.assertEqual(mine[0]["user"], "system")
        self.assertFalse([e for e in events if e["detail"].get("upload_id") == kept["id"]])
        self.stop_cleanly(second)



class DurableCommitTest(PortalTestCase, UploadChecks):
    """SPEC §5.1: a 201 means the row is committed. The suite's clusters run
    with fsync and synchronous commit off for speed; this one runs with
    PostgreSQL's defaults, and PostgreSQL itself is SIGKILLed (postmaster and
    backends, no shutdown checkpoint) right after a 201."""

    DURABLE_DATABASE = True
    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("durable", "uploader")

    def test_row_survives_a_postgres_crash_right_after_201(self):
        self.assertEqual(self.pg.psql("show synchronous_commit"), "on")
        self.assertEqual(self.pg.psql("show fsync"), "on")
        archive = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=71)))
        status, headers, body = self.put(self.token, "durable.tar.gz", archive)
        self.pg.crash()  # at once: no checkpoint, no WAL flush after the answer
        obj = self.assert_upload(status, headers, body, archive, "durable.tar.gz", "durable",
                                 "tar.gz", "before the crash")
        self.pg.start()  # crash recovery replays the WAL
        row = self.pg.psql(f"select filename, size, sha256 from uploads where id = '{obj['id']}'")
        self.assertEqual(row, f"durable.tar.gz|{len(archive)}|{obj['sha256']}",
                         "the row of an acknowledged upload is gone after a database crash")

        # a restarted server reconciles: the row keeps its file, nothing is
        # orphaned, and the archive is served byte for byte
        self.assertEqual(self.portal.terminate(), 0, self.portal.output_tail())
        second = restarted(self.portal)
        self.addCleanup(second.cleanup)
        second.start()
        self.assertEqual(self.dir_files("orphans", second), [])
        self.assertEqual(self.dir_files("archives", second), [obj["id"]])
        status, _, content = second.request("GET", f"/api/v1/uploads/{obj['id']}/content",
                                            self.auth(self.token))
        self.assertEqual((status, content), (200, archive))


if __name__ == "__main__":
    unittest.main()

"""tus partials across a server's death and its drain (SPEC §5.2, §9, issue
12): SIGKILL mid-PATCH, then after the restart HEAD's offset is at most what
was sent and the partial holds exactly that prefix, and the upload resumes to
the right sha256; SIGTERM with a stalled PATCH exits 0 at the drain deadline
and the partial resumes after the restart. Also start-up reconciliation (a
partial without a row is removed, a row without a partial is deleted, both
only on the volume the rows were made on), idle sessions, and the reaper's
expiry of partials. A whole upload whose record did not simply commit:
test_tus_completion.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_tus_restart        (from tests/e2e)
"""

import base64
import hashlib
import os
import shutil
import time

import archives as A
from portal_harness import PortalTestCase, wait_until

from test_tus_protocol import OFFSET_STREAM, TUS, TusChecks
from upload_checks import NO_RATE_LIMITS, read_response

MiB = 1 << 20


class TusServers(PortalTestCase, TusChecks):
    """Servers of a test's own on the class's cluster, each restartable on
    the data dir of one before it, and a 3 MiB archive to upload to them."""

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("restarter", "uploader")
        cls.archive = A.gzip_bytes(A.random_tar(3 * MiB, seed=141), level=0)

    def own_server(self, **env):
        return self.start_portal(env=dict(NO_RATE_LIMITS, **env))

    def restarted(self, old, **env):
        return self.own_server(PORTAL_DATA_DIR=old.data_dir, **env)


class TusRestartTest(TusServers):

    def stopped_with_a_partial(self):
        """A server of its own, stopped after a creation and a PATCH of the
        first 1000 bytes: (the server, the upload's id)."""
        home = self.own_server()
        upload_id = self.created_id(self.token, len(self.archive), portal=home)
        self.assertEqual(
            self.patch(self.token, upload_id, 0, self.archive[:1000], portal=home)[0], 204)
        home.terminate()
        return home, upload_id

    def stalled_patch(self, server, upload_id, sent, checksum=None):
        """A PATCH that announces the whole archive, sends `sent` bytes and
        waits; with `checksum`, under that Upload-Checksum value."""
        head = (f"PATCH {TUS}{upload_id} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {self.token}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: 0\r\nContent-Type: {OFFSET_STREAM}\r\n"
                + (f"Upload-Checksum: {checksum}\r\n" if checksum else "")
                + f"Content-Length: {len(self.archive)}\r\n\r\n").encode()
        sock = server.connect(timeout=30)
        self.addCleanup(sock.close)
        sock.sendall(head + self.archive[:sent])
        partial = self.partial_path(upload_id, portal=server)
        wait_until(lambda: os.path.getsize(partial) >= sent - 256 * 1024, 30,
                   message="the sent bytes to be stored")
        return sock

    def check_resumes(self, server, upload_id, sent):
        status, headers, _ = self.head(self.token, upload_id, portal=server)
        self.assertEqual(status, 200, server.output_tail())
        offset = int(headers["Upload-Offset"])
        self.assertGreater(offset, 0)
        self.assertLessEqual(offset, sent)
        with open(self.partial_path(upload_id, portal=server), "rb") as f:
            self.assertEqual(f.read(), self.archive[:offset], "the partial is exactly the prefix")
        status, headers, body = self.patch(self.token, upload_id, offset, self.archive[offset:],
                                           portal=server)
        self.assertEqual(status, 204, body)
        self.assertEqual(headers["Upload-Offset"], str(len(self.archive)))
        status, _, obj = server.get_json(f"/api/v1/uploads/{upload_id}", self.token)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["sha256"], hashlib.sha256(self.archive).hexdigest())

    def test_sigkill_mid_patch_then_resume(self):
        first = self.own_server()
        upload_id = self.created_id(self.token, len(self.archive), portal=first)
        sent = 2 * MiB
        self.stalled_patch(first, upload_id, sent)
        first.kill()
        second = self.restarted(first)
        self.check_resumes(second, upload_id, sent)

    def test_sigkill_mid_checksummed_patch_keeps_none_of_it(self):
        # A checksummed PATCH counts all or nothing (SPEC §5.2 checksum), also
        # when the server dies before the verdict: the bytes a killed process
        # left in the page cache were never checked against the digest (a
        # client's corrupted byte would have become durable and failed the
        # whole upload at its end).
        first = self.own_server()
        upload_id = self.created_id(self.token, len(self.archive), portal=first)
        digest = base64.b64encode(hashlib.sha256(self.archive).digest()).decode()
        sent = 2 * MiB
        self.stalled_patch(first, upload_id, sent, checksum=f"sha256 {digest}")
        first.kill()
        second = self.restarted(first)
        self.assertEqual(self.offset(self.token, upload_id, portal=second), 0)
        self.assertEqual(os.path.getsize(self.partial_path(upload_id, portal=second)), 0)
        self.assertEqual(os.listdir(os.path.dirname(self.partial_path(upload_id, portal=second))),
                         [upload_id + ".part"], "no hold left behind")
        self.assertIn("tus partial cut back to its last verified offset",
                      [line.get("msg") for line in second.logs])
        status, headers, body = self.patch(self.token, upload_id, 0, self.archive,
                                           {"Upload-Checksum": f"sha256 {digest}"}, portal=second)
        self.assertEqual(status, 204, body)
        status, _, obj = second.get_json(f"/api/v1/uploads/{upload_id}", self.token)
        self.assertEqual(obj["sha256"], hashlib.sha256(self.archive).hexdigest())

    def test_sigterm_with_a_stalled_patch(self):
        first = self.own_server(PORTAL_DRAIN_SECONDS="2")
        upload_id = self.created_id(self.token, len(self.archive), portal=first)
        sent = 2 * MiB
        self.stalled_patch(first, upload_id, sent)
        started = time.monotonic()
        self.assertEqual(first.terminate(timeout=30), 0, first.output_tail())
        self.assertLess(time.monotonic() - started, 20)
        second = self.restarted(first)
        self.check_resumes(second, upload_id, sent)

    def test_reconciliation_at_start(self):
        first = self.own_server()
        kept = self.created_id(self.token, len(self.archive), portal=first)
        lost = self.created_id(self.token, len(self.archive), portal=first)
        self.assertEqual(self.patch(self.token, kept, 0, self.archive[:1000], portal=first)[0], 204)
        first.terminate()
        os.unlink(self.partial_path(lost, portal=first))
        stray = self.partial_path("strayid", portal=first)
        with open(stray, "wb") as f:
            f.write(b"no row")
        second = self.restarted(first)
        self.assertFalse(os.path.exists(stray))
        self.assertEqual(self.tus_rows(lost), 0)
        self.assertEqual(self.tus_rows(kept), 1)
        self.assertEqual(self.offset(self.token, kept, portal=second), 1000)
        logs = [line.get("msg") for line in second.logs]
        self.assertIn("tus partial without a row removed", logs)
        self.assertIn("tus row deleted: its partial is missing", logs)

    def test_a_partial_proves_the_volume_for_its_archives_too(self):
        # Every archive of this volume is gone, but a tus partial of it is
        # here: the directory is the volume (not a wrong one), so the rows of
        # the missing archives are deleted, as SPEC §11 says, and the partial
        # resumes.
        home = self.own_server()
        partial = self.created_id(self.token, len(self.archive), portal=home)
        self.assertEqual(
            self.patch(self.token, partial, 0, self.archive[:1000], portal=home)[0], 204)
        stored = self.upload_ok(self.token, "gone.tar.gz", A.gzip_bytes(A.tar_bytes(
            A.sample_members(seed=7))), "restarter", portal=home)
        home.terminate()
        os.unlink(self.data_path("archives", stored["id"], portal=home))
        back = self.restarted(home)
        self.assertEqual(self.pg.psql(f"select count(*) from uploads where id = '{stored['id']}'"),
                         "0")
        self.assertIn("upload row deleted: its archive file is missing",
                      [line.get("msg") for line in back.logs])
        self.assertEqual(self.offset(self.token, partial, portal=back), 1000)
        self.assertEqual(self.delete(self.token, partial, portal=back)[0], 204)

    def test_a_wrong_data_dir_deletes_no_tus_row(self):
        # The same start on a directory without the partials (an unmounted
        # volume), a creation there, a restart there: the first partial's row
        # records the other volume, so it survives and resumes at home.
        home, resumable = self.stopped_with_a_partial()
        wrong = self.own_server()
        stray = self.created_id(self.token, len(self.archive), portal=wrong)
        wrong.terminate()
        again = self.restarted(wrong)
        self.assertEqual((self.tus_rows(resumable), self.tus_rows(stray)), (1, 1))
        again.terminate()
        back = self.restarted(home)
        self.assertEqual(self.offset(self.token, resumable, portal=back), 1000)
        self.assertEqual(self.tus_rows(stray), 1)  # the other volume's to repair
        for uid in (resumable, stray):
            self.assertEqual(self.delete(self.token, uid, portal=back)[0], 204)

    def test_a_copy_of_a_volume_leaves_the_originals_expired_partials(self):
        # A copy (cp -a with its volume-id deleted, deploy/README.md section 4)
        # on the same machine: the original's expired tus row is the
        # original's to expire; the copy's start leaves it alone.
        home, upload_id = self.stopped_with_a_partial()
        self.pg.psql("update tus_uploads set expires_at = now() - interval '1 second'"
                     f" where id = '{upload_id}'")
        copy_dir = os.path.join(home.tmp, "copy")
        shutil.copytree(home.data_dir, copy_dir)
        os.unlink(os.path.join(copy_dir, "volume-id"))
        copy = self.own_server(PORTAL_DATA_DIR=copy_dir, PORTAL_REAPER_INTERVAL_SECONDS="1")
        self.assertEqual(self.tus_rows(upload_id), 1)
        copy.terminate()
        self.restarted(home)  # the original's start expires it
        self.assertEqual(self.tus_rows(upload_id), 0)
        self.assertFalse(os.path.exists(self.partial_path(upload_id, portal=home)))

    def test_idle_session_stops_and_the_next_replays(self):
        server = self.own_server(PORTAL_TUS_SESSION_IDLE_SECONDS="1")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        half = len(self.archive) // 2
        self.assertEqual(self.patch(self.token, upload_id, 0, self.archive[:half], portal=server)[0], 204)
        self.wait_session_stopped(upload_id, server)
        # a new session replays the durable prefix: the digest covers it all
        status, _, body = self.patch(self.token, upload_id, half, self.archive[half:], portal=server)
        self.assertEqual(status, 204, body)
        status, _, obj = server.get_json(f"/api/v1/uploads/{upload_id}", self.token)
        self.assertEqual(obj["sha256"], hashlib.sha256(self.archive).hexdigest())

    def test_expired_partials_are_reaped(self):
        # reaped once its session has retired (a live session holds it)
        server = self.own_server(PORTAL_REAPER_INTERVAL_SECONDS="1",
                                 PORTAL_TUS_SESSION_IDLE_SECONDS="1")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        self.assertEqual(self.patch(self.token, upload_id, 0, self.archive[:1000], portal=server)[0], 204)
        self.pg.psql(f"update tus_uploads set expires_at = now() - interval '1 second' where id = '{upload_id}'")
        partial = self.partial_path(upload_id, portal=server)
        wait_until(lambda: not os.path.exists(partial), 20, message="the expired partial to go")
        self.assertEqual(self.tus_rows(upload_id), 0)
        status, _, _ = self.head(self.token, upload_id, portal=server)
        self.assertEqual(status, 404)

    def test_a_reaper_round_past_its_deadline_keeps_each_row_with_its_file(self):
        # A round held up past the db deadline rolls back (its caller was
        # told `timeout`): an expired partial it found must stay with its
        # row, so files go only after COMMIT. Retention is on so that the
        # round's second statement meets the held lock on uploads.
        server = self.own_server(PORTAL_REAPER_INTERVAL_SECONDS="1", PORTAL_RETENTION_DAYS="1",
                                 PORTAL_TUS_SESSION_IDLE_SECONDS="1", PORTAL_DB_DEADLINE_MS="1000")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        self.assertEqual(
            self.patch(self.token, upload_id, 0, self.archive[:1000], portal=server)[0], 204)
        self.wait_session_stopped(upload_id, server)
        partial = self.partial_path(upload_id, portal=server)

        def rolled_back():
            return sum(1 for l in server.logs
                       if l.get("msg") == "database request rolled back: its deadline passed"
                       and l.get("request") == "delete_expired_uploads")

        with self.pg.holding("lock table uploads in exclusive mode"):
            self.pg.psql("update tus_uploads set expires_at = now() - interval '1 second'"
                         f" where id = '{upload_id}'")
            wait_until(self.reaper_blocked, 20, message="a round of the reaper to wait")
            self.assertTrue(os.path.exists(partial),
                            "a round removed a partial before its COMMIT")
            # Held past the deadline: the reaper says so after a second miss.
            wait_until(lambda: any(l.get("msg") == "retention reaper could not reach the "
                                   "database; retrying later" for l in server.logs), 20,
                       message="the held rounds to pass their deadline")
        wait_until(rolled_back, 20, message="the held round to roll back")
        # The file first: a later round may take both, row before file.
        file_there = os.path.exists(partial)
        self.assertTrue(file_there or self.tus_rows(upload_id) == 0,
                        "a rolled-back round removed the partial of a row it kept")
        wait_until(lambda: self.tus_rows(upload_id) == 0 and not os.path.exists(partial), 20,
                   message="a later round to expire row and partial")

    def reaper_blocked(self):
        return int(self.pg.psql(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
            " and query like '%delete_expired_uploads%'")) > 0

    def test_retention_off_reaps_no_upload(self):
        # An upload made while retention was on is kept once it is off, and
        # shows no expiry (SPEC section 6: expires_at only with retention on).
        # The round that expires a tus partial would have reaped it.
        first = self.own_server(PORTAL_RETENTION_DAYS="2")
        kept = self.upload_ok(self.token, "kept.tar.gz", A.gzip_bytes(A.tar_bytes(
            A.sample_members(seed=8))), "restarter", portal=first)
        self.assertIsNotNone(kept["expires_at"])
        first.terminate()
        self.pg.psql("update uploads set created_at = now() - interval '3 days'"
                     f" where id = '{kept['id']}'")
        server = self.restarted(first, PORTAL_REAPER_INTERVAL_SECONDS="1",
                                PORTAL_TUS_SESSION_IDLE_SECONDS="1")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        self.pg.psql("update tus_uploads set expires_at = now() - interval '1 second'"
                     f" where id = '{upload_id}'")
        wait_until(lambda: self.tus_rows(upload_id) == 0, 20, message="a round of the reaper")
        status, _, obj = server.get_json(f"/api/v1/uploads/{kept['id']}", self.token)
        self.assertEqual(status, 200)
        self.assertIsNone(obj["expires_at"])
        self.assertIn(kept["id"], self.dir_files("archives", server))
        self.assertEqual(server.request("DELETE", f"/api/v1/uploads/{kept['id']}",
                                        self.auth(self.token))[0], 204)

    def test_a_running_patch_outlives_its_expiry(self):
        # The reaper leaves an upload with a live session alone: a PATCH that
        # streams past Upload-Expires keeps every byte and completes.
        server = self.own_server(PORTAL_REAPER_INTERVAL_SECONDS="1",
                                 PORTAL_TUS_SESSION_IDLE_SECONDS="1")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        other = self.created_id(self.token, len(self.archive), portal=server)
        sent = len(self.archive) // 2
        sock = self.stalled_patch(server, upload_id, sent)
        # the creation's session of `other` stops idle; the stalled PATCH
        # keeps the session of `upload_id` alive
        self.wait_session_stopped(other, server)
        self.pg.psql("update tus_uploads set expires_at = now() - interval '1 second' "
                     f"where id in ('{upload_id}', '{other}')")
        # a reaper round has run once the sessionless one is gone
        wait_until(lambda: not os.path.exists(self.partial_path(other, portal=server)), 20,
                   message="the reaper to expire the upload without a session")
        self.assertTrue(os.path.exists(self.partial_path(upload_id, portal=server)))
        self.assertEqual(self.tus_rows(upload_id), 1)
        sock.sendall(self.archive[sent:])
        status, _, body, _ = read_response(sock, 30)
        self.assertEqual(status, 204, body)
        status, _, obj = server.get_json(f"/api/v1/uploads/{upload_id}", self.token)
        self.assertEqual((status, obj["sha256"]), (200, hashlib.sha256(self.archive).hexdigest()))

    def test_a_stopped_patch_moves_the_expiry(self):
        server = self.own_server()
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        self.pg.psql("update tus_uploads set expires_at = now() + interval '2 minutes' "
                     f"where id = '{upload_id}'")
        sent = len(self.archive) // 2
        self.stalled_patch(server, upload_id, sent).close()  # the client goes away
        # the PATCH kept its bytes, and the upload is again good for the whole expiry
        wait_until(lambda: int(self.pg.psql(
            "select count(*) from tus_uploads where expires_at > now() + interval '1 hour' "
            f"and id = '{upload_id}'")) == 1, 20, message="Upload-Expires to move")
        self.check_resumes(server, upload_id, sent)


if __name__ == "__main__":
    import unittest
    unittest.main()

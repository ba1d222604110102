"""A tus upload's last step when its record does not simply commit (SPEC
§5.2, §9, issue 12; docs/TUS.md "Completion"): held past the database
deadline, cut off in COMMIT with its outcome in doubt, or killed between the
archive's move into archives/ and the COMMIT. In each case the upload is
either recorded or stays resumable, and the next HEAD (or an empty PATCH at
the full offset) completes it; HEADs meanwhile answer 423, never a
complete-looking 200 without an upload object, and never fill the db pool.
Also the creation's and a refusal's records under a late database.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_tus_completion     (from tests/e2e)
"""

import concurrent.futures
import contextlib
import hashlib
import os
import time

from portal_harness import wait_until

from test_tus_restart import TusServers


class TusCompletionTest(TusServers):
    @staticmethod
    def replays(server, upload_id):
        """The bytes each rebuild of the upload's validator read from its partial."""
        return [l["bytes"] for l in server.logs
                if l.get("msg") == "tus validator rebuilt from the partial"
                and l.get("upload_id") == upload_id]

    @contextlib.contextmanager
    def last_patch_held(self, server, upload_id):
        """The whole archive PATCHed while its tus row is locked: the record
        is held past the deadline (503; the upload is kept). The lock stays
        for the block."""
        with self.pg.holding(f"select 1 from tus_uploads where id = '{upload_id}' for update"):
            status, headers, body = self.patch(self.token, upload_id, 0, self.archive,
                                               portal=server)
            self.assert_tus_error(status, headers, body, 503, "unavailable", "record held up")
            yield

    def completed_by_head(self, server, upload_id):
        """HEADs until one says the upload is complete: 423 (being recorded,
        retry; tus-js-client keeps the URL) until then, never 200 before the
        upload object exists."""
        def complete():
            status, headers, _ = self.head(self.token, upload_id, portal=server)
            if status == 423:
                return False
            self.assertEqual(status, 200)
            self.assertEqual(headers["Upload-Offset"], str(len(self.archive)))
            status, _, obj = server.get_json(f"/api/v1/uploads/{upload_id}", self.token)
            self.assertEqual(status, 200, "a complete-looking HEAD before the upload object")
            return obj
        obj = wait_until(complete, 30, message="a HEAD to find the upload complete")
        self.assertEqual(obj["sha256"], hashlib.sha256(self.archive).hexdigest())
        self.assertIn(upload_id, self.dir_files("archives", server))
        self.assertFalse(os.path.exists(self.partial_path(upload_id, portal=server)))
        self.assertEqual(self.tus_rows(upload_id), 0)

    def test_a_completion_the_database_did_not_take_stays_resumable(self):
        # The last PATCH's record is held past the db deadline: 503, and it
        # is rolled back. The upload is not lost: the archive goes back to
        # partials/ and the next HEAD completes it.
        server = self.own_server(PORTAL_DB_DEADLINE_MS="1000")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        with self.last_patch_held(server, upload_id):
            # held up still: whatever a HEAD says, it is not "complete"
            self.assertEqual(self.head(self.token, upload_id, portal=server)[0], 423)
        wait_until(lambda: any(l.get("msg") == "tus upload complete but not recorded; kept for "
                               "a retry" for l in server.logs), 20,
                   message="the session to keep the upload")
        self.completed_by_head(server, upload_id)
        self.assertEqual(self.replays(server, upload_id), [],
                         "the kept upload was judged already: its retry replays nothing")

    def test_heads_during_an_outage_run_one_completion_at_a_time(self):
        # Each HEAD of a whole upload may start its completion; one whose
        # record was answered `timeout` still holds a db worker until it is
        # rolled back. Without one attempt at a time, HEADs during a long
        # outage filled the pool, and HEAD itself turned 503 (tus-js-client
        # then starts a second upload).
        server = self.own_server(PORTAL_DB_DEADLINE_MS="1000", PORTAL_DB_POOL_SIZE="2")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        with self.pg.holding("lock table uploads in exclusive mode"):
            status, headers, body = self.patch(self.token, upload_id, 0, self.archive,
                                               portal=server)
            self.assert_tus_error(status, headers, body, 503, "unavailable", "record held up")
            statuses = []
            until = time.monotonic() + 4 * 1.0  # four deadlines of HEADs, paced
            while time.monotonic() < until:
                statuses.append(self.head(self.token, upload_id, portal=server)[0])
                time.sleep(0.2)
            self.assertEqual(set(statuses), {423}, statuses)
        self.completed_by_head(server, upload_id)
        self.assertEqual(self.replays(server, upload_id), [], "no attempt replayed the file")

    def backend_in_commit(self, wait_event):
        """The pid of the server's backend waiting in COMMIT on `wait_event`."""
        def find():
            pid = self.pg.psql("select pid from pg_stat_activity where datname = 'portal' and "
                               f"query = 'COMMIT' and wait_event = '{wait_event}'")
            return int(pid) if pid.strip() else None
        return wait_until(find, 20, message=f"the record's COMMIT to wait on {wait_event}")

    def cut_off_in_commit(self, server, upload_id, wait_event):
        """The last PATCH's record loses its connection while its COMMIT
        waits on `wait_event` (the backend is terminated): 503, in doubt.
        Then what the session learns the COMMIT did."""
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            patched = pool.submit(self.patch, self.token, upload_id, 0, self.archive,
                                  portal=server)
            self.pg.psql(f"select pg_terminate_backend({self.backend_in_commit(wait_event)})")
            status, headers, body = patched.result(timeout=30)
        self.assert_tus_error(status, headers, body, 503, "unavailable", "record in doubt")
        return self.in_doubt_resolved(server, upload_id)

    def in_doubt_resolved(self, server, upload_id):
        """HEADs (423: each asks the database again) until the session knows
        what the COMMIT in doubt did; that fate."""
        def fate():
            known = next((l["fate"] for l in server.logs
                          if l.get("msg") == "tus upload's record in doubt: resolved"
                          and l.get("upload_id") == upload_id), None)
            if not known:
                self.assertEqual(self.head(self.token, upload_id, portal=server)[0], 423)
            return known
        return wait_until(fate, 20, message="the session to learn what the COMMIT in doubt did")

    def commits_wait_for_a_standby(self):
        """Every COMMIT waits for a synchronous standby that is not there,
        from the servers' next connections on (theirs are replaced now).
        Returns what undoes it (also a cleanup)."""
        def restore():
            self.pg.psql("alter system reset synchronous_standby_names")
            self.pg.psql("select pg_reload_conf()")
            self.pg.psql("alter database portal reset synchronous_commit")
        self.addCleanup(restore)
        self.pg.psql("alter system set synchronous_standby_names = 'nowhere'")
        self.pg.psql("select pg_reload_conf()")
        self.pg.psql("alter database portal set synchronous_commit = on")
        self.pg.psql("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                     "where datname = 'portal' and pid <> pg_backend_pid() "
                     "and backend_type = 'client backend'")
        return restore

    def last_patch_killed(self, pool, server, upload_id):
        """The last PATCH, sent from `pool`, to a server about to be killed."""
        def last_patch():
            try:
                return self.patch(self.token, upload_id, 0, self.archive, portal=server)
            except OSError:  # the server is killed under it
                return None
        return pool.submit(last_patch)

    def test_a_record_in_doubt_that_was_rolled_back_stays_resumable(self):
        # The connection is lost while the last PATCH's COMMIT runs, and the
        # transaction is rolled back: in doubt, 503. The session asks the
        # database what happened before it touches the archive (it deleted
        # the upload before: the client had to start over); rolled back,
        # the upload is kept, and the next HEAD completes it.
        server = self.own_server(PORTAL_DB_DEADLINE_MS="20000")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        # The first COMMIT that inserts an upload sleeps (a sequence, since
        # its transaction is rolled back): long enough to be cut off.
        self.pg.psql("create sequence slow_once")
        self.addCleanup(self.pg.psql, "drop sequence if exists slow_once")
        self.pg.psql("create function slow_commit() returns trigger language plpgsql as $$ begin "
                     "if nextval('slow_once') = 1 then perform pg_sleep(60); end if; "
                     "return null; end $$")
        self.addCleanup(self.pg.psql, "drop function if exists slow_commit()")
        self.pg.psql("create constraint trigger slow_commit after insert on uploads deferrable "
                     "initially deferred for each row execute function slow_commit()")
        self.addCleanup(self.pg.psql, "drop trigger if exists slow_commit on uploads")
        self.assertEqual(self.cut_off_in_commit(server, upload_id, "PgSleep"), "rolled back")
        self.completed_by_head(server, upload_id)
        self.assertEqual(self.replays(server, upload_id), [])

    def test_a_record_in_doubt_that_committed_is_the_upload(self):
        # The same loss of the connection in COMMIT, after PostgreSQL
        # committed locally (it waited for a synchronous standby): the
        # session learns that the upload is recorded, and leaves its
        # archive where the row says it is.
        server = self.own_server(PORTAL_DB_DEADLINE_MS="20000")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        restore = self.commits_wait_for_a_standby()
        self.assertEqual(self.cut_off_in_commit(server, upload_id, "SyncRep"), "committed")
        restore()
        self.completed_by_head(server, upload_id)

    def statements_ended(self):
        """No backend runs a statement: a killed server's may still hold
        locks until PostgreSQL finds its client gone."""
        wait_until(lambda: self.pg.psql(
            "select count(*) from pg_stat_activity where datname = 'portal' and "
            "pid <> pg_backend_pid() and backend_type = 'client backend' and "
            "state <> 'idle'") == "0", 30, message="the killed server's statements to end")

    def cut_off_before_the_record(self):
        """A server killed between the move into archives/ and the record's
        COMMIT (the record waited on the tus row's lock): (it, the upload id)."""
        first = self.own_server(PORTAL_DB_DEADLINE_MS="20000")
        upload_id = self.created_id(self.token, len(self.archive), portal=first)
        with self.pg.holding(f"select 1 from tus_uploads where id = '{upload_id}' for update"):
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                patched = self.last_patch_killed(pool, first, upload_id)
                wait_until(lambda: upload_id in self.dir_files("archives", first), 20,
                           message="the archive in place, its record waiting")
                first.kill()
                patched.result(timeout=30)
        self.statements_ended()
        return first, upload_id

    def test_a_kill_while_the_record_waits_keeps_the_upload(self):
        # Killed between the move into archives/ and the record's COMMIT: an
        # archive with a tus row and no upload row. Start-up moved it to
        # orphans/ (HEAD 404, the tus row still charging the quota); it goes
        # back to partials/ once start-up holds the tus row, and the next
        # HEAD completes it (review 4).
        first, upload_id = self.cut_off_before_the_record()
        second = self.restarted(first)
        self.assertIn("tus archive returned to partials: its record never committed",
                      [l.get("msg") for l in second.logs if l.get("upload_id") == upload_id])
        self.completed_by_head(second, upload_id)
        self.assertEqual(self.replays(second, upload_id), [len(self.archive)])
        self.assertEqual(self.dir_files("orphans", second), [])

    def test_an_expired_cut_off_upload_is_orphaned_not_deleted(self):
        # Review 6: returned to partials/, an expired upload was then reaped
        # by the same start, file and all. An administrator could recover
        # it from orphans/ before; so again.
        first, upload_id = self.cut_off_before_the_record()
        self.pg.psql("update tus_uploads set expires_at = now() - interval '1 minute' "
                     f"where id = '{upload_id}'")
        second = self.restarted(first)
        self.assertIn(upload_id, self.dir_files("orphans", second))
        self.assertEqual(self.tus_rows(upload_id), 0)
        with open(self.data_path("orphans", upload_id, portal=second), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                             hashlib.sha256(self.archive).hexdigest())

    def test_start_up_does_not_wait_for_a_deletion_still_committing(self):
        # Review 6: a refused upload's partial is gone and its row's DELETE
        # waits in COMMIT (a standby) when the server is killed. Start-up
        # deleted rows without a partial, and waited on that lock for good.
        first = self.own_server(PORTAL_DB_DEADLINE_MS="20000")
        upload_id = self.created_id(self.token, len(self.archive), portal=first)
        keep = self.created_id(self.token, len(self.archive), portal=first)
        self.assertEqual(self.patch(self.token, keep, 0, self.archive[:1000], portal=first)[0],
                         204)
        restore = self.commits_wait_for_a_standby()

        def refused():
            try:
                return self.patch(self.token, upload_id, 0, b"\x00junk" * 2000, portal=first)
            except OSError:  # the server is killed under it
                return None
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            patched = pool.submit(refused)
            committing = self.backend_in_commit("SyncRep")
            first.kill()
            patched.result(timeout=30)
        second = self.restarted(first)  # not held up by that COMMIT
        self.assertEqual(self.head(self.token, keep, portal=second)[0], 200)
        self.pg.psql(f"select pg_terminate_backend({committing})")
        restore()
        self.assertEqual(self.tus_rows(upload_id), 0)

    def test_a_record_still_committing_at_start_stays_the_upload(self):
        # Review 5's case against returning archives at start: the killed
        # server's COMMIT still waits (on a synchronous standby) when the new
        # one starts, and lands after. Start-up must neither move the archive
        # back (the row would name a file in partials/) nor orphan it (the
        # same, in orphans/), nor wait for that COMMIT: the archive stays.
        first = self.own_server(PORTAL_DB_DEADLINE_MS="20000")
        upload_id = self.created_id(self.token, len(self.archive), portal=first)
        restore = self.commits_wait_for_a_standby()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            patched = self.last_patch_killed(pool, first, upload_id)
            committing = self.backend_in_commit("SyncRep")
            first.kill()
            patched.result(timeout=30)
        second = self.restarted(first)  # not held up by that COMMIT
        self.assertIn("tus archive kept: its record's transaction may still commit",
                      [l.get("msg") for l in second.logs if l.get("upload_id") == upload_id])
        self.assertIn(upload_id, self.dir_files("archives", second))
        self.pg.psql(f"select pg_terminate_backend({committing})")  # committed locally
        restore()
        status, _, obj = second.get_json(f"/api/v1/uploads/{upload_id}", self.token)
        self.assertEqual(status, 200, obj)
        status, _, content = second.request("GET", f"/api/v1/uploads/{upload_id}/content",
                                            self.auth(self.token))
        self.assertEqual((status, hashlib.sha256(content).hexdigest()),
                         (200, hashlib.sha256(self.archive).hexdigest()))
        self.assertEqual(self.dir_files("orphans", second), [])

    def test_heads_past_the_idle_timeout_never_fill_the_pool(self):
        # The record cannot be taken (its tus row is locked) for longer than
        # the session lives. Each HEAD, spaced past the idle timeout, starts
        # an attempt in a new session; an attempt answered at its deadline is
        # interrupted then, and its session's expiry update does not wait on
        # the lock, so no db worker is left behind it. Before (review 4),
        # attempts piled up behind the lock, filled the pool, and HEAD
        # answered 503 (tus-js-client then starts a second upload).
        server = self.own_server(PORTAL_DB_DEADLINE_MS="1000", PORTAL_DB_POOL_SIZE="2",
                                 PORTAL_TUS_SESSION_IDLE_SECONDS="1")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        with self.last_patch_held(server, upload_id):
            statuses = []
            for _ in range(4):
                time.sleep(1.5)  # load: each gap is past the idle timeout
                statuses.append(self.head(self.token, upload_id, portal=server)[0])
            self.assertEqual(statuses, [423] * 4)
            busy = ("select count(*) from pg_stat_activity where datname = 'portal' and "
                    "wait_event_type = 'Lock'")
            wait_until(lambda: self.pg.psql(busy) == "0", 10,
                       message="no statement of the server left waiting on the lock")
        self.completed_by_head(server, upload_id)

    def test_a_kept_upload_completes_with_an_empty_patch(self):
        # The other way to retry a kept completion (docs/TUS.md): a PATCH
        # at the full offset with an empty body. Judged already, it replays
        # nothing either.
        server = self.own_server(PORTAL_DB_DEADLINE_MS="1000")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        with self.last_patch_held(server, upload_id):
            pass
        def retried():
            status, headers, body = self.patch(self.token, upload_id, len(self.archive), b"",
                                               portal=server)
            if status == 423:  # the first attempt has not settled yet
                return None
            return status, headers
        status, headers = wait_until(retried, 20, message="the empty PATCH to complete the upload")
        self.assertEqual(status, 204)
        self.assertEqual(headers["Upload-Offset"], str(len(self.archive)))
        self.completed_by_head(server, upload_id)
        self.assertEqual(self.replays(server, upload_id), [])

    def test_a_kept_upload_left_alone_still_expires(self):
        # Kept after a record the database did not take, then abandoned: its
        # session stops idle like any other, and the reaper takes row and file.
        server = self.own_server(PORTAL_DB_DEADLINE_MS="1000", PORTAL_REAPER_INTERVAL_SECONDS="1",
                                 PORTAL_TUS_SESSION_IDLE_SECONDS="1")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        with self.last_patch_held(server, upload_id):
            pass
        self.wait_session_stopped(upload_id, server)
        self.pg.psql("update tus_uploads set expires_at = now() - interval '1 second'"
                     f" where id = '{upload_id}'")
        partial = self.partial_path(upload_id, portal=server)
        wait_until(lambda: self.tus_rows(upload_id) == 0 and not os.path.exists(partial), 20,
                   message="the abandoned upload reaped, row and partial")

    def test_a_creation_answered_503_at_the_deadline_leaves_nothing(self):
        # The partial is made inside the creation's transaction: rolled back
        # at the deadline, the file goes with the row that never was.
        server = self.own_server(PORTAL_DB_DEADLINE_MS="1000")
        before, rows = self.dir_files("partials", server), self.tus_rows()
        with self.pg.holding("select 1 from users where username = 'restarter' for update"):
            status, headers, body = self.create(self.token, len(self.archive), portal=server)
            self.assert_tus_error(status, headers, body, 503, "unavailable", "creation held up")
        wait_until(lambda: any(l.get("msg") == "database request rolled back: its deadline passed"
                               and l.get("request") == "insert_tus_upload"
                               for l in server.logs), 20, message="the creation rolled back")
        self.assertEqual(self.dir_files("partials", server), before)
        self.assertEqual(self.tus_rows(), rows)

    def test_a_refused_upload_is_deleted_however_late_the_database(self):
        # Nobody is told the deletion's outcome (the PATCH answers its
        # refusal), so being late must not roll it back: a row left behind
        # would answer 404 without its partial and hold the owner's quota.
        server = self.own_server(PORTAL_DB_DEADLINE_MS="1000")
        upload_id = self.created_id(self.token, len(self.archive), portal=server)
        # Each attempt waits 250 ms on the lock and the next comes 250 ms,
        # then 500 ms, later: the third (retries 2) starts past the deadline.
        def late():
            return any(l.get("msg") == "database request waits on a lock: rolled back, to run again"
                       and l.get("request") == "delete_tus_upload" and l.get("retries", 0) >= 2
                       for l in server.logs)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            with self.pg.holding(f"select 1 from tus_uploads where id = '{upload_id}' for update"):
                answer = pool.submit(self.patch, self.token, upload_id, 0, b"not an archive" * 64,
                                     portal=server)
                wait_until(late, 30, message="the deletion held past the deadline")
            status, headers, body = answer.result(timeout=30)
        self.assert_tus_error(status, headers, body, 415, "unsupported_media_type", "refused")
        self.assertEqual(self.tus_rows(upload_id), 0)
        self.assertFalse(os.path.exists(self.partial_path(upload_id, portal=server)))
        self.assertEqual(self.head(self.token, upload_id, portal=server)[0], 404)

    def test_a_complete_partial_found_at_start_is_completed_by_a_head(self):
        # A crash after the last PATCH's fsync and before its record leaves
        # a whole partial and its row. A HEAD answering the full offset then
        # would tell tus-js-client it is done, with no upload object.
        first = self.own_server()
        upload_id = self.created_id(self.token, len(self.archive), portal=first)
        first.terminate()
        with open(self.partial_path(upload_id, portal=first), "wb") as f:
            f.write(self.archive)
        second = self.restarted(first)
        self.completed_by_head(second, upload_id)
        self.assertEqual(self.replays(second, upload_id), [len(self.archive)],
                         "after a restart, the validator is rebuilt once from the file")

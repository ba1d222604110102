"""End-to-end tests of the database going away under uploads (SPEC §5.3):
503 + Retry-After within the configured deadline, nothing half-written,
/ready says so, and uploads work again in the same process once it is back.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_database_outage        (from tests/e2e)
"""

import json
import os
import time
import unittest

import archives as A
from cancel_stall import CancelStall
from portal_harness import PortalTestCase, wait_until
from upload_checks import (NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response,
                           send_quietly, wait_ready)

MiB = 1024 * 1024


class DeadlineCase(PortalTestCase, UploadChecks):
    """A server with a short PORTAL_DB_DEADLINE_MS (DEADLINE_S), an
    uploader USER and a small archive."""

    DEADLINE_S = 1.5
    USER = "dbuser"
    SEED = 51

    @classmethod
    def setUpClass(cls):
        cls.PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_DB_DEADLINE_MS=str(int(cls.DEADLINE_S * 1000)))
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token(cls.USER, "uploader")
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=cls.SEED)))


class DatabaseGoneTest(DeadlineCase):
    """SPEC §5.3: database unavailable -> 503 + Retry-After within the
    configured deadline, nothing half-written; /ready says so; uploads work
    again once it is back, in the same process."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.big = A.gzip_bytes(A.random_tar(3 * MiB, seed=52), level=0)

    def setUp(self):
        self.addCleanup(self.pg.start)  # whatever happens, the next test has a database

    def assert_503(self, status, headers, body, context):
        self.assertEqual(status, 503, f"{context}: {body[:300]!r}")
        self.assertTrue(headers.get("Retry-After", "").strip().isdigit(),
                        f"{context}: Retry-After {headers.get('Retry-After')!r}")
        self.assert_error(status, headers, body, 503, "unavailable", context)

    def recovers(self):
        """Uploads succeed again within 30 s of the database coming back."""
        def attempt():
            status, _, body = self.put(self.token, "back.tar.gz", self.small, timeout=30)
            if status == 201:
                return json.loads(body)
            self.assertEqual(status, 503, body[:300])  # nothing but "not yet"
            return None

        obj = wait_until(attempt, 30, interval=0.5, message="an upload to succeed again")
        self.assertTrue(os.path.isfile(self.data_path("archives", obj["id"])))
        return obj

    def test_put_while_database_down(self):
        before = self.snapshot()
        self.pg.stop()
        started = time.monotonic()
        status, headers, body = self.put(self.token, "nodb.tar.gz", self.small)
        elapsed = time.monotonic() - started
        self.assert_503(status, headers, body, "database down")
        # the deadline, plus slack for a sanitizer build on a busy machine
        self.assertLess(elapsed, self.DEADLINE_S + 3, "the 503 must come within the deadline")
        self.assert_nothing_left(before, rows=False, context="database down")
        status, _, body = self.portal.request("GET", "/ready")
        self.assertEqual(status, 503, body)
        self.assertIn("database", json.loads(body)["checks"]["database"])
        pid = self.portal.proc.pid
        self.pg.start()
        self.assertEqual(self.row_count(), before["rows"])
        obj = self.recovers()
        wait_ready(self.portal)
        self.assertEqual(self.portal.proc.pid, pid)
        self.assertIsNone(self.portal.proc.poll(), "the server kept running")
        self.assertEqual(self.row_count(), before["rows"] + 1)
        self.assertEqual(self.dir_files("tmp"), [])
        self.assertIn(obj["id"], self.dir_files("archives"))

    def test_connections_dropped_while_idle(self):
        # Idle connections the database dropped (a restart, an admin's
        # pg_terminate_backend, a proxy's idle timeout) are replaced on the
        # spot: the next upload is served, not refused. Its authentication
        # is one statement without BEGIN (db_mode::autocommit), its record a
        # transaction: both find their connection dead at the first statement.
        for attempt in range(3):
            dropped = int(self.pg.psql(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid() "
                "and backend_type = 'client backend'"))
            self.assertGreater(dropped, 0, "the server holds database connections")
            status, _, body = self.put(self.token, f"idle{attempt}.tar.gz", self.small)
            self.assertEqual(status, 201, f"attempt {attempt}: {body[:300]!r}")
            status, _, body = self.portal.request(
                "GET", "/api/v1/uploads", headers={"Authorization": f"Bearer {self.token}"})
            self.assertEqual(status, 200, f"attempt {attempt}: {body[:300]!r}")

    def test_database_lost_mid_upload(self):
        before = self.snapshot()
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "midway.tar.gz", len(self.big)))
            sock.sendall(self.big[: MiB])
            wait_until(lambda: self.dir_files("tmp"), 30, message="a partial file in tmp/")
            self.pg.stop()
            send_quietly(sock, self.big[MiB:])
            status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
        self.assert_503(status, headers, body, "database lost mid-upload")
        self.assert_nothing_left(before, rows=False, context="database lost mid-upload")
        self.pg.start()
        self.assertEqual(self.row_count(), before["rows"])
        self.recovers()



class SlowDatabaseTest(DeadlineCase):
    """A request answered 503 at its deadline changed nothing: the worker that
    still held it rolls it back (db_request::claim_commit) instead of
    committing it after the caller was told otherwise. Before, an upload's
    row was committed after its archive had been removed (a row without a
    file), and a DELETE answered 503 had deleted the row."""

    DEADLINE_S = 1.0
    USER = "slowuser"
    SEED = 53

    def settled(self):
        """Every connection of the server is idle again: the request the lock
        held has ended, by COMMIT or by ROLLBACK."""
        busy_sql = ("select count(*) from pg_stat_activity where datname = current_database() "
                    "and pid <> pg_backend_pid() and backend_type = 'client backend' "
                    "and state <> 'idle'")
        wait_until(lambda: self.pg.psql(busy_sql) == "0", 30,
                   message="the server's database connections to be idle")

    def rolled_back(self, request):
        wait_until(lambda: any(l.get("msg") == "database request rolled back: its deadline passed"
                               and l.get("request") == request for l in self.portal.logs),
                   30, message=f"the worker to log the roll-back of {request}")

    def test_an_upload_answered_503_at_the_deadline_leaves_no_row(self):
        before = self.snapshot()
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            status, headers, body = self.put(self.token, "slow.tar.gz", self.small)
            self.assert_error(status, headers, body, 503, "unavailable", "record held up")
            self.assertTrue(headers.get("Retry-After", "").strip().isdigit(), headers)
        self.settled()
        self.assert_nothing_left(before, context="record held up past its deadline")
        self.rolled_back("insert_upload")

    def drop_connections(self):
        """The server's connections are replaced at their next use, and take
        the database's settings then."""
        self.pg.psql("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                     "where datname = current_database() and pid <> pg_backend_pid() "
                     "and backend_type = 'client backend'")

    def test_a_commit_waiting_on_the_database_is_interrupted_not_left_hanging(self):
        # A claimed COMMIT is answered by COMMIT, not by the deadline (it may
        # commit). One that waits for a synchronous standby that is not
        # there would wait for good: it is interrupted a second deadline
        # later, and PostgreSQL has committed it locally by then.
        def restore():
            self.pg.psql("alter system reset synchronous_standby_names")
            self.pg.psql("select pg_reload_conf()")
            self.pg.psql("alter database portal reset synchronous_commit")
            self.drop_connections()
        self.addCleanup(restore)
        self.pg.psql("alter system set synchronous_standby_names = 'nowhere'")
        self.pg.psql("select pg_reload_conf()")
        self.pg.psql("alter database portal set synchronous_commit = on")
        self.drop_connections()
        before = self.row_count()
        started = time.monotonic()
        status, _, body = self.put(self.token, "standby.tar.gz", self.small, timeout=30)
        elapsed = time.monotonic() - started
        self.assertEqual(status, 201, body[:300])
        self.assertLess(elapsed, 2 * self.DEADLINE_S + 10, "the COMMIT was interrupted")
        up = json.loads(body)
        self.assertEqual(self.row_count(), before + 1)
        self.assertIn(up["id"], self.dir_files("archives"))

    def test_a_commit_interrupted_before_it_committed_answers_503_and_leaves_nothing(self):
        # A claimed COMMIT that hangs in a wait other than a standby's (here
        # a deferred trigger) is cancelled a second deadline later, and is
        # rolled back: the answer is 503 + Retry-After, as for a deadline
        # met before COMMIT, and the archive goes. Before, it was a 500.
        self.pg.psql("create function slow_commit() returns trigger language plpgsql as $$ "
                     "begin perform pg_sleep(60); return null; end $$")
        self.addCleanup(self.pg.psql, "drop function if exists slow_commit()")
        self.pg.psql("create constraint trigger slow_commit after insert on uploads deferrable "
                     "initially deferred for each row execute function slow_commit()")
        self.addCleanup(self.pg.psql, "drop trigger if exists slow_commit on uploads")
        before = self.snapshot()
        started = time.monotonic()
        status, headers, body = self.put(self.token, "cancelled.tar.gz", self.small, timeout=30)
        elapsed = time.monotonic() - started
        self.assert_error(status, headers, body, 503, "unavailable", "COMMIT cancelled")
        self.assertTrue(headers.get("Retry-After", "").strip().isdigit(), headers)
        self.assertLess(elapsed, 2 * self.DEADLINE_S + 10, "the COMMIT was interrupted")
        self.settled()
        self.assert_nothing_left(before, context="COMMIT cancelled before it committed")
        self.rolled_back("insert_upload")

    def test_a_request_answered_at_its_deadline_frees_its_worker(self):
        # One db worker. A PUT's record waits on a lock past its deadline:
        # 503. Its statement is cancelled then (it would roll back anyway),
        # so the worker serves the next request while the lock is still
        # held. Before, the worker sat behind the lock: the next request was
        # answered 503 too, and SIGTERM did not exit until the lock went.
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_POOL_SIZE="1",
                                            PORTAL_DB_DEADLINE_MS="1000"))
        before = self.snapshot()
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            status, headers, body = self.put(self.token, "held.tar.gz", self.small, portal=server)
            self.assert_error(status, headers, body, 503, "unavailable", "record held up")
            status, _, body = server.request("GET", "/api/v1/uploads", self.auth(self.token))
            self.assertEqual(status, 200, body[:300])
        self.settled()
        self.assert_nothing_left(before, context="record held up past its deadline")
        self.assertTrue(any(l.get("msg") == "database request rolled back: its deadline passed"
                            and l.get("request") == "insert_upload" for l in server.logs))

    def test_sigterm_exits_while_a_record_waits_on_a_lock(self):
        # Review 4: the drain ended, but the process waited for the db worker
        # stuck behind the lock. The record, answered 503 at its deadline, is
        # cancelled then, and the process exits 0 at the drain deadline.
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_DEADLINE_MS="1000",
                                            PORTAL_DRAIN_SECONDS="2"))
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            with server.connect(timeout=REQUEST_TIMEOUT) as sock:
                sock.sendall(self.head_bytes(self.token, "drained.tar.gz", len(self.small)))
                sock.sendall(self.small)
                wait_until(lambda: self.pg.psql(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and wait_event_type = 'Lock'") != "0", 30,
                    message="the record to wait on the lock")
                started = time.monotonic()
                self.assertEqual(server.terminate(timeout=20), 0, server.output_tail())
                self.assertLess(time.monotonic() - started, 2 + 1 + 5,
                                "exit at the drain deadline (plus the record's deadline)")

    def test_a_connection_whose_request_ended_past_its_deadline_is_rolled_back_and_kept(self):
        # Review 7: the interrupt of a request answered 503 can cancel its
        # ROLLBACK (or its COMMIT before it began), and the session then
        # stayed "idle in transaction (aborted)": every later request on
        # that worker failed 500 (25P02). A connection whose request ended
        # past its deadline gets a ROLLBACK of its own (review 7's gdb
        # recipe, which holds the backend in the first one until the next
        # cancel lands, passes); it is replaced only if that fails too, since
        # a new connection can hang where the open one works (review 8: the
        # first fix replaced it every time).
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_POOL_SIZE="1",
                                            PORTAL_DB_DEADLINE_MS="1000"),
                                   database_url=self.pg.url + "?application_name=review7")
        backend = ("select coalesce(string_agg(pid::text, ','), '') from pg_stat_activity "
                   "where application_name = 'review7'")
        first = wait_until(lambda: self.pg.psql(backend), 10, message="the worker's connection")
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            status, headers, body = self.put(self.token, "held.tar.gz", self.small, portal=server)
            self.assert_error(status, headers, body, 503, "unavailable", "record held up")
        status, _, body = server.request("GET", "/api/v1/uploads", self.auth(self.token))
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(self.pg.psql(backend), first, "the same connection serves")
        self.assertEqual(self.pg.psql("select state from pg_stat_activity where "
                                      "application_name = 'review7'"), "idle")

    def test_a_cancel_that_cannot_reach_the_database_holds_up_no_other_request(self):
        # Review 7: the pool asked whether a worker still ran the request
        # under the lock that the cancel holds while it connects, so a
        # cancel stalled on its way blocked the pool, and every request with
        # it (18.5 s, then 503). The pool polls that request again each
        # deadline: GETs across two of them find it free.
        proxy = CancelStall(self.pg.port, stall=8)
        self.addCleanup(proxy.close)
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_POOL_SIZE="4",
                                            PORTAL_DB_DEADLINE_MS="1000"),
                                   database_url=proxy.url())
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            status, headers, body = self.put(self.token, "held.tar.gz", self.small, portal=server)
            self.assert_error(status, headers, body, 503, "unavailable", "record held up")
            wait_until(lambda: proxy.cancels > 0, 10, message="the interrupt's cancel to stall")
            answers = []
            until = time.monotonic() + 2.5  # past the pool's next poll of the request
            while time.monotonic() < until:
                started = time.monotonic()
                status, _, body = server.request("GET", "/api/v1/uploads", self.auth(self.token),
                                                 timeout=30)
                answers.append((status, round(time.monotonic() - started, 1)))
                time.sleep(0.1)  # load: a GET every tenth of a second, not a flood
        self.assertGreater(len(answers), 5)
        self.assertEqual([a for a in answers if a[0] != 200 or a[1] >= 1.5], [])

    def refusals_recorded(self, prefix):
        return int(self.pg.psql("select count(*) from audit_events where event = "
                                f"'upload.rejected' and detail->>'filename' like '{prefix}%'"))

    def audit_rows_held(self, server, n):
        """Waits until n refusals' audit rows have met the lock: each either
        waits on it now, or has waited out a lock wait and will run again."""
        def held():
            waiting = int(self.pg.psql(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                "and query like '%insert_audit_event%'"))
            retried = sum(l.get("msg") == "database request waits on a lock: rolled back, "
                          "to run again" for l in server.logs)
            return waiting + retried >= n
        wait_until(held, 10, message=f"{n} audit rows to meet the lock")

    def test_an_audit_row_held_by_a_lock_holds_no_worker_and_is_written_later(self):
        # Review 7: a refusal's audit row (written however late) waited on
        # the user's row lock, one worker each: two refusals filled a pool
        # of two and every other request answered 503. It now waits at most
        # a lock wait, and runs again later, until the lock goes.
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_POOL_SIZE="2",
                                            PORTAL_DB_DEADLINE_MS="1000"))
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            for i in range(2):
                status, headers, body = self.put(self.token, f"refused{i}.tar.gz",
                                                 b"not a gzip archive" * 64, portal=server)
                self.assert_error(status, headers, body, 415, "unsupported_media_type", "refused")
            self.audit_rows_held(server, 2)
            answers = [server.request("GET", "/api/v1/uploads", self.auth(self.token))[0]
                       for _ in range(5)]
            self.assertEqual(answers, [200] * 5)
            self.assertEqual(self.refusals_recorded("refused"), 0)
        wait_until(lambda: self.refusals_recorded("refused") == 2, 20,
                   message="the audit rows written once the lock went")

    def test_sigterm_exits_while_an_audit_row_waits_on_a_lock(self):
        # The same row, at shutdown: it no longer holds the drain until the
        # lock goes (it is dropped, as every request still queued then).
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_DEADLINE_MS="1000",
                                            PORTAL_DRAIN_SECONDS="2"))
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            status, headers, body = self.put(self.token, "refused-at-exit.tar.gz",
                                             b"not a gzip archive" * 64, portal=server)
            self.assert_error(status, headers, body, 415, "unsupported_media_type", "refused")
            self.audit_rows_held(server, 1)
            started = time.monotonic()
            self.assertEqual(server.terminate(timeout=20), 0, server.output_tail())
            self.assertLess(time.monotonic() - started, 2 + 5, "exit at the drain deadline")
        dropped = [l for l in server.logs if l.get("msg") == "audit row not written"]
        self.assertEqual([(l["event"], l["why"]) for l in dropped],
                         [("upload.rejected", "unavailable")], "dropped, and said so")

    def test_a_cancel_by_the_database_itself_is_logged_as_such(self):
        # Review 7: a statement_timeout (or an administrator's
        # pg_cancel_backend) before the deadline was logged as "its deadline
        # passed". Still 503: it was rolled back.
        def restore():
            self.pg.psql("alter database portal reset statement_timeout")
            self.drop_connections()
        self.addCleanup(restore)
        self.pg.psql("alter database portal set statement_timeout = '300ms'")
        server = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DB_DEADLINE_MS="5000"))
        with self.pg.holding("select 1 from users where username = 'slowuser' for update"):
            status, headers, body = self.put(self.token, "timed-out.tar.gz", self.small,
                                             portal=server)
            self.assert_error(status, headers, body, 503, "unavailable", "statement_timeout")
        cancelled = [l for l in server.logs if l.get("request") == "insert_upload"
                     and l.get("msg", "").startswith("database request")]
        self.assertEqual([l["msg"] for l in cancelled],
                         ["database request cancelled by the database: rolled back"])

    def test_a_delete_answered_503_at_the_deadline_deletes_nothing(self):
        status, _, body = self.put(self.token, "kept.tar.gz", self.small)
        self.assertEqual(status, 201, body[:300])
        up = json.loads(body)
        path = f"/api/v1/uploads/{up['id']}"
        with self.pg.holding(f"select 1 from uploads where id = '{up['id']}' for update"):
            status, headers, body = self.portal.request("DELETE", path, self.auth(self.token))
            self.assert_error(status, headers, body, 503, "unavailable", "delete held up")
        self.settled()
        status, _, body = self.portal.request("GET", path, self.auth(self.token))
        self.assertEqual(status, 200, f"the upload a 503 answered must still exist: {body[:300]!r}")
        status, _, content = self.portal.request("GET", path + "/content", self.auth(self.token))
        self.assertEqual((status, content), (200, self.small))
        self.rolled_back("delete_upload")


if __name__ == "__main__":
    unittest.main()

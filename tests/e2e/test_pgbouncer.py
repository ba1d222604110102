"""The server behind PgBouncer in transaction pooling mode (SPEC §3:
DATABASE_URL may point at PgBouncer in transaction mode, so no session state
across transactions).

Debian's pgbouncer runs in front of the test cluster with fewer server
connections (2) than the portal's own pool (4), so consecutive transactions
of one portal connection land on different PostgreSQL backends: anything the
server kept in a session (prepared statements, SET, session advisory locks,
temporary tables) would break here. `migrate` goes straight to PostgreSQL
through DATABASE_DIRECT_URL, as it does on Fly.

The upload API and the browser sign-in run their whole suites again behind
the pooler (the classes below reuse them). tus: when tests/e2e/test_tus.py
exists, add its class here the same way, e.g.

    class TusThroughPgBouncer(test_tus.TusTest):
        PGBOUNCER = True

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_pgbouncer        (from tests/e2e)
"""

import threading
import unittest

import archives as A
import test_sessions
import test_uploads
from portal_harness import PortalTestCase, pgbouncer_available
from test_uploads import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks

# Without pgbouncer installed these tests fail rather than skip: SPEC §3 is
# part of the contract, and deploy/install-deps.sh installs it.
MISSING = "pgbouncer is not installed (deploy/install-deps.sh installs it)"


class PooledUploadApiTest(test_uploads.UploadApiTest):
    """Every upload API test (PUT, list, download, delete, access) through PgBouncer."""
    PGBOUNCER = True


class PooledSessionTest(test_sessions.SessionTest):
    """Every sign-in test (login, CSRF, logout, lockout, audit) through PgBouncer."""
    PGBOUNCER = True


class PgBouncerTest(PortalTestCase, UploadChecks, test_sessions.SessionChecks):
    """What only a pooler can show: many portal connections on two backends."""

    PGBOUNCER = True
    # 16 requests at once queue for 2 backends, each login holding its
    # transaction through an Argon2id verification: the harness's long
    # database deadline (TEST_DB_DEADLINE_MS) keeps that queue from turning
    # into 503s that would say nothing about pooling.
    PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_DB_POOL_SIZE="8", PORTAL_LOGINS_PER_MINUTE="10000")

    @classmethod
    def setUpClass(cls):
        if not pgbouncer_available():
            raise AssertionError(MISSING)
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("pooled", "uploader")

    def pool(self):
        pools = [p for p in self.pgbouncer.show("POOLS") if p["database"] == "portal"]
        self.assertEqual(len(pools), 1, pools)
        return pools[0]

    def transactions(self):
        stats = [s for s in self.pgbouncer.show("STATS") if s["database"] == "portal"]
        return int(stats[0]["total_xact_count"])

    def test_the_server_really_talks_to_the_pooler(self):
        self.assertEqual(self.portal.env["DATABASE_URL"], self.pgbouncer.url)
        pool = self.pool()
        self.assertEqual(pool["pool_mode"], "transaction")
        # the portal's pool of 8 connections is in, on at most 2 backends
        self.assertGreaterEqual(int(pool["cl_active"]) + int(pool["cl_waiting"]), 8, pool)
        backends = int(pool["sv_active"]) + int(pool["sv_idle"]) + int(pool["sv_used"])
        self.assertLessEqual(backends, 2, pool)
        before = self.transactions()
        self.upload_ok(self.token, "counted.tar.gz", A.gzip_bytes(A.tar_bytes(
            A.sample_members(seed=301))), "pooled")
        self.assertGreater(self.transactions(), before)

    def test_concurrent_uploads_and_logins_share_two_backends(self):
        # 8 uploads and 8 sign-ins at once: their transactions interleave on
        # two backends, so each must stand on its own.
        archives = [A.gzip_bytes(A.tar_bytes(A.sample_members(seed=310 + i))) for i in range(8)]
        users = [self.add_user() for _ in range(8)]
        before = self.snapshot()
        results = {}

        def upload(i):
            results[("upload", i)] = self.put(self.token, f"c{i}.tar.gz", archives[i])

        def login(i):
            results[("login", i)] = self.post_login(*users[i])

        threads = [threading.Thread(target=f, args=(i,)) for i in range(8) for f in (upload, login)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(REQUEST_TIMEOUT)
        for i in range(8):
            status, headers, body = results[("upload", i)]
            self.assert_upload(status, headers, body, archives[i], f"c{i}.tar.gz", "pooled",
                               "tar.gz", f"upload {i}")
            status, headers, body = results[("login", i)]
            self.assertEqual(status, 303, body[:200])
            cookie = self.session_cookie(headers)
            self.assertEqual(self.me(cookie)[1]["username"], users[i][0])
        self.assertEqual(self.row_count(), before["rows"] + 8)
        self.assertEqual(self.dir_files("tmp"), [])

    def test_lockout_counts_across_backends(self):
        # the five failures land on whichever backend is free; the lock must
        # still see all of them (it lives in rows, not in a session)
        name, password = self.add_user()
        for _ in range(5):
            self.assertEqual(self.post_login(name, "wrong")[0], 401)
        status, headers, _ = self.post_login(name, password)
        self.assertEqual(status, 429)
        self.assertTrue(headers["Retry-After"].isdigit())

    def test_delete_through_the_pooler(self):
        archive = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=320)))
        obj = self.upload_ok(self.token, "gone.tar.gz", archive, "pooled")
        status, _, body = self.portal.request("DELETE", f"/api/v1/uploads/{obj['id']}",
                                              self.auth(self.token))
        self.assertEqual(status, 204, body)
        self.assertEqual(self.pg.psql(f"select count(*) from uploads where id = '{obj['id']}'"), "0")
        self.assertNotIn(obj["id"], self.dir_files("archives"))

    def test_migrate_goes_around_the_pooler(self):
        result = self.portal.run_ok("migrate")
        self.assertIn("database at version", result.stdout)
        self.assertEqual(self.portal.env["DATABASE_DIRECT_URL"], self.pg.url)


if __name__ == "__main__":
    unittest.main()

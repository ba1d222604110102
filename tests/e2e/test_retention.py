"""End-to-end test of SPEC §9 retention: with PORTAL_RETENTION_DAYS set,
uploads show expires_at (created_at + the setting in force), and the
retention_reaper (a supervised, long-lived actor) deletes the older ones:
row, file and an audit row.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_retention        (from tests/e2e)
"""

import datetime
import json
import os
import shutil
import unittest

import archives as A
from portal_harness import PortalTestCase, wait_until
from test_uploads import NO_RATE_LIMITS, UploadChecks


class RetentionCase(PortalTestCase, UploadChecks):
    """A server with retention on (2 days) and an uploader, "keeper"."""

    PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_RETENTION_DAYS="2",
                      PORTAL_REAPER_INTERVAL_SECONDS="1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("keeper", "uploader")

    def archive(self, seed):
        return A.gzip_bytes(A.tar_bytes(A.sample_members(seed=seed)))


class RetentionTest(RetentionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.portal.create_user_and_token("boss", "admin")

    def status_of(self, upload_id):
        return self.portal.request("GET", "/api/v1/uploads/" + upload_id, self.auth(self.token))[0]

    def test_expired_upload_is_reaped(self):
        old = self.upload_ok(self.token, "old.tar.gz", self.archive(71), "keeper")
        new = self.upload_ok(self.token, "new.tar.gz", self.archive(72), "keeper")
        # expires_at = created_at + 2 days
        created = datetime.datetime.fromisoformat(old["created_at"].replace("Z", "+00:00"))
        expires = datetime.datetime.fromisoformat(old["expires_at"].replace("Z", "+00:00"))
        self.assertAlmostEqual((expires - created).total_seconds(), 2 * 86400, delta=5)

        # time passes for one of them
        self.pg.psql(f"update uploads set created_at = now() - interval '2 days 1 minute'"
                     f" where id = '{old['id']}'")
        wait_until(lambda: self.status_of(old["id"]) == 404, 30, message="the expired upload reaped")
        wait_until(lambda: old["id"] not in self.dir_files("archives"), 30,
                   message="the expired upload's file removed")
        self.assertEqual(self.status_of(new["id"]), 200)
        self.assertIn(new["id"], self.dir_files("archives"))
        audit = self.pg.psql("select detail::text from audit_events where event = 'upload.expired'"
                             f" and detail->>'upload_id' = '{old['id']}'")
        self.assertEqual(json.loads(audit)["upload_id"], old["id"])


    def test_retention_follows_the_setting_in_force(self):
        # SPEC section 6: expires_at is null unless retention is on; section
        # 9: the reaper deletes older uploads. Older than the setting in
        # force, whatever it was at upload: nothing is stamped on the row.
        off = self.start_portal(env=dict(NO_RATE_LIMITS))  # retention off, its own dir
        up = self.upload_ok(self.token, "before.tar.gz", self.archive(82), "keeper", portal=off)
        self.assertIsNone(up["expires_at"])
        self.assertEqual(off.terminate(), 0, off.output_tail())
        self.pg.psql(f"update uploads set created_at = now() - interval '3 days'"
                     f" where id = '{up['id']}'")

        month = self.start_portal(env=dict(self.PORTAL_ENV, PORTAL_RETENTION_DAYS="30",
                                           PORTAL_DATA_DIR=off.data_dir))
        _, _, shown = month.get_json(f"/api/v1/uploads/{up['id']}", self.token)
        _, _, page = month.get_json("/api/v1/uploads?limit=200", self.token)
        listed = [u for u in page["uploads"] if u["id"] == up["id"]][0]
        for obj in (shown, listed):
            created = datetime.datetime.fromisoformat(obj["created_at"].replace("Z", "+00:00"))
            expires = datetime.datetime.fromisoformat(obj["expires_at"].replace("Z", "+00:00"))
            self.assertEqual((expires - created).total_seconds(), 30 * 86400, obj)
        self.assertEqual(month.terminate(), 0, month.output_tail())

        self.start_portal(env=dict(self.PORTAL_ENV, PORTAL_DATA_DIR=off.data_dir))  # 2 days
        wait_until(lambda: self.status_of(up["id"]) == 404, 30,
                   message="an upload older than the new setting reaped")
        wait_until(lambda: up["id"] not in self.dir_files("archives", off), 30,
                   message="its file removed with it")

    def test_each_volume_reaps_its_own_uploads(self):
        # Two machines on one database, each with its volume: a reaper that
        # deleted the other's rows could not remove their files, which would
        # then sit in that volume's orphans/ for good.
        other = self.start_portal(env=self.PORTAL_ENV)  # its own data dir
        theirs = self.upload_ok(self.token, "theirs.tar.gz", self.archive(74), "keeper",
                                portal=other)
        self.assertEqual(other.terminate(), 0, other.output_tail())
        mine = self.upload_ok(self.token, "mine.tar.gz", self.archive(75), "keeper")
        self.pg.psql("update uploads set created_at = now() - interval '2 days 1 minute'"
                     f" where id in ('{theirs['id']}', '{mine['id']}')")
        wait_until(lambda: self.status_of(mine["id"]) == 404, 30, message="this volume's reaped")
        # the round that reaped it saw the other expired too, and left it
        self.assertEqual(self.status_of(theirs["id"]), 200)
        self.assertIn(theirs["id"], self.dir_files("archives", other))

        self.start_portal(env=dict(self.PORTAL_ENV, PORTAL_DATA_DIR=other.data_dir))
        wait_until(lambda: self.status_of(theirs["id"]) == 404, 30,
                   message="the other volume's reaped by its own server")
        wait_until(lambda: theirs["id"] not in self.dir_files("archives", other), 30,
                   message="its file removed with it")
        self.assertEqual(self.dir_files("orphans", other), [])

    def test_a_server_reaps_only_the_archives_it_holds(self):
        # A server that started without the database cannot judge its
        # directory, and its uploads record no volume: it still reaps only
        # what its directory holds, and no other server reaps its uploads.
        other = self.start_portal(env=self.PORTAL_ENV)
        theirs = self.upload_ok(self.token, "theirs.tar.gz", self.archive(76), "keeper",
                                portal=other)
        self.assertEqual(other.terminate(), 0, other.output_tail())
        self.addCleanup(self.pg.start)
        self.pg.stop()
        unjudged = self.start_portal(env=self.PORTAL_ENV, wait="listening")
        self.pg.start()
        wait_until(lambda: unjudged.request("GET", "/ready")[0] == 200, 60,
                   message="the unjudged server ready once the database is back")
        stray = self.upload_ok(self.token, "stray.tar.gz", self.archive(77), "keeper",
                               portal=unjudged)
        self.assertEqual(self.pg.psql(
            f"select coalesce(volume_id, 'none') from uploads where id = '{stray['id']}'").strip(),
            "none")
        mine = self.upload_ok(self.token, "mine.tar.gz", self.archive(78), "keeper")

        ids = ", ".join(f"'{u['id']}'" for u in (theirs, stray, mine))
        self.pg.psql(f"update uploads set created_at = now() - interval '2 days 1 minute'"
                     f" where id in ({ids})")
        for up, holder in ((mine, self.portal), (stray, unjudged)):
            wait_until(lambda: up["id"] not in self.dir_files("archives", holder), 30,
                       message=f"{up['filename']} reaped, file and all, by the server holding it")
            self.assertEqual(self.status_of(up["id"]), 404)
        # both servers' rounds saw the other volume's upload expired, and left it
        self.assertEqual(self.status_of(theirs["id"]), 200)
        self.assertIn(theirs["id"], self.dir_files("archives", other))
        self.assertEqual(self.portal.request("DELETE", f"/api/v1/uploads/{theirs['id']}",
                                             self.auth(self.admin))[0], 204)

    def test_a_copy_of_a_volume_leaves_the_originals_expired_uploads(self):
        # A copy (a fork, a snapshot, or cp -a with its volume-id deleted, as
        # deploy/README.md section 4 advises) holds the original's archives
        # under a new id: their rows are the original's to reap.
        original = self.start_portal(env=self.PORTAL_ENV)
        theirs = self.upload_ok(self.token, "original.tar.gz", self.archive(79), "keeper",
                                portal=original)
        self.assertEqual(original.terminate(), 0, original.output_tail())
        copy_dir = os.path.join(original.tmp, "copy")
        shutil.copytree(original.data_dir, copy_dir)
        os.unlink(os.path.join(copy_dir, "volume-id"))
        copy = self.start_portal(env=dict(self.PORTAL_ENV, PORTAL_DATA_DIR=copy_dir))
        own = self.upload_ok(self.token, "copy.tar.gz", self.archive(80), "keeper", portal=copy)
        self.pg.psql(f"update uploads set created_at = now() - interval '2 days 1 minute'"
                     f" where id in ('{theirs['id']}', '{own['id']}')")
        wait_until(lambda: own["id"] not in self.dir_files("archives", copy), 30,
                   message="the copy's own upload reaped, file and all")
        self.assertEqual(self.status_of(own["id"]), 404)
        self.assertEqual(self.status_of(theirs["id"]), 200)
        self.assertIn(theirs["id"], self.dir_files("archives", copy))
        self.assertIn(theirs["id"], self.dir_files("archives", original))
        self.assertEqual(self.portal.request("DELETE", f"/api/v1/uploads/{theirs['id']}",
                                             self.auth(self.admin))[0], 204)

    def test_a_data_dir_that_cannot_be_listed_still_reaps_its_own_rows(self):
        # The listing only adds rows of no volume: without it this volume's
        # rows are still reaped, and the failure is a storage error, not a
        # database outage.
        p = self.start_portal(env=self.PORTAL_ENV)
        up = self.upload_ok(self.token, "unlisted.tar.gz", self.archive(81), "keeper", portal=p)
        archives = self.data_path("archives", portal=p)
        os.rename(archives, archives + ".away")
        self.addCleanup(lambda: os.path.isdir(archives + ".away") and
                        os.rename(archives + ".away", archives))
        self.pg.psql(f"update uploads set created_at = now() - interval '2 days 1 minute'"
                     f" where id = '{up['id']}'")
        wait_until(lambda: self.status_of(up["id"]) == 404, 30, message="its row reaped")
        messages = [line.get("msg") for line in p.logs]
        self.assertIn("retention reaper could not list the archives", messages)
        self.assertNotIn("retention reaper could not reach the database; retrying later", messages)
        os.rename(archives + ".away", archives)

    def test_reaper_is_supervised(self):
        status, _, body = self.portal.request("GET", "/admin/actors", self.auth(self.admin))
        reaper = [a for a in json.loads(body)["actors"] if a["name"] == "retention_reaper"][0]
        self.assertEqual(reaper["supervisor"], "root")
        status, _, body = self.portal.request(
            "POST", f"/admin/actors/{reaper['id']}/kill", self.auth(self.admin), b"")
        self.assertEqual(status, 202, body)

        def restarted():
            _, _, b = self.portal.request("GET", "/admin/actors", self.auth(self.admin))
            found = [a for a in json.loads(b)["actors"] if a["name"] == "retention_reaper"]
            return found[0] if found and found[0]["id"] != reaper["id"] else None

        self.assertEqual(wait_until(restarted, 30, message="the reaper restarted")["restarts"],
                         reaper["restarts"] + 1)


class ReaperRetryTest(RetentionCase):
    """The reaper's rounds are an hour apart here: only a retry can reap
    within the test (the class's own server did its one round at start)."""

    PORTAL_ENV = dict(RetentionCase.PORTAL_ENV, PORTAL_REAPER_INTERVAL_SECONDS="3600")

    def test_a_round_that_missed_the_database_is_retried_soon(self):
        # A server that starts while the database is down misses its first
        # round; the next comes within seconds of the database's return,
        # not an interval (an hour here) later.
        # (Its own data dir: one server at a time on one, storage/data_dir_lock.hpp.)
        first = self.start_portal(env=self.PORTAL_ENV)
        up = self.upload_ok(self.token, "late.tar.gz", self.archive(73), "keeper", portal=first)
        self.assertEqual(first.terminate(), 0, first.output_tail())
        self.pg.psql(f"update uploads set created_at = now() - interval '2 days 1 minute'"
                     f" where id = '{up['id']}'")
        self.addCleanup(self.pg.start)
        self.pg.stop()
        self.start_portal(env=dict(self.PORTAL_ENV, PORTAL_DATA_DIR=first.data_dir),
                          wait="listening")
        self.pg.start()
        wait_until(lambda: int(self.pg.psql(
            f"select count(*) from uploads where id = '{up['id']}'")) == 0, 60,
                   message="the expired upload reaped after the database came back")
        wait_until(lambda: not os.path.exists(self.data_path("archives", up["id"], portal=first)),
                   30, message="its archive removed with it")


if __name__ == "__main__":
    unittest.main()

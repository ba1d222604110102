"""End-to-end tests of SPEC §7's inspection of the running actor system:
/admin/actors, /admin/metrics and the PORTAL_METRICS_LISTEN scraper port,
killing actors through POST /admin/actors/{id}/kill (supervisor restarts,
audit rows, an upload right after), and who may see any of it.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_admin        (from tests/e2e)
"""

import base64
import http.client
import json
import re
import shutil
import subprocess
import unittest

import archives as A
from portal_harness import PortalTestCase, wait_until
from test_uploads import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response, wait_ready

MiB = 1024 * 1024

# SPEC §7: the metric names a dashboard may rely on.
SPEC_METRICS = [
    "portal_uploads_total", "portal_upload_bytes_total", "portal_uploads_active",
    "portal_upload_duration_seconds", "portal_http_requests_total", "portal_actor_mailbox_size",
    "portal_actor_messages_total", "portal_actor_restarts_total", "portal_db_connections",
    "portal_storage_free_bytes",
]
# tusd's counterparts (docs/METRICS.md)
TUSD_LIKE = [
    "portal_http_errors_total", "portal_uploads_created_total", "portal_uploads_finished_total",
    "portal_uploads_terminated_total", "portal_connections_open",
]
ACTOR_KEYS = {"id", "name", "kind", "supervisor", "mailbox", "messages", "restarts", "state"}
LONG_LIVED = ["db_pool", "db_worker_1", "db_workers", "db_supervisor", "storage_writer_1",
              "archive_reader_1", "storage_supervisor"]


def sample(text, name, labels=None):
    """The value of one sample in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in (labels or {}).items()):
            return float(m.group(4))
    return None


class AdminTest(PortalTestCase, UploadChecks):
    PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_METRICS_LISTEN="127.0.0.1:0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = cls.portal.create_user_and_token("root-admin", "admin")
        cls.uploader = cls.portal.create_user_and_token("up", "uploader")
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=51)))
        cls.big = A.gzip_bytes(A.random_tar(2 * MiB, seed=52), level=0)
        lines = [e for e in cls.portal.logs if e.get("msg") == "metrics listening"]
        assert lines, "no 'metrics listening' log line"
        cls.metrics_port = lines[0]["port"]

    # -- helpers

    def actors(self):
        status, _, body = self.portal.request("GET", "/admin/actors", self.auth(self.admin))
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def actor(self, name):
        for a in self.actors()["actors"]:
            if a["name"] == name:
                return a
        return None

    def admin_metrics(self):
        status, headers, body = self.portal.request("GET", "/admin/metrics", self.auth(self.admin))
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        return body.decode()

    def scrape(self, path="/metrics", method="GET"):
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def kill(self, actor_id, token=None):
        return self.portal.request("POST", f"/admin/actors/{actor_id}/kill",
                                   self.auth(token or self.admin), b"")

    def audit_rows(self, event):
        out = self.pg.psql(f"select count(*) from audit_events where event = '{event}'")
        return int(out)

    # -- who may look

    def test_admin_paths_refuse_anonymous_and_uploaders(self):
        for method, path in [("GET", "/admin/actors"), ("GET", "/admin/metrics"),
                             ("POST", "/admin/actors/1/kill"), ("GET", "/admin/audit")]:
            body = b"" if method == "POST" else None
            status, headers, answer = self.portal.request(method, path, {}, body)
            self.assert_error(status, headers, answer, 401, "unauthorized", f"anonymous {path}")
            status, headers, answer = self.portal.request(method, path, self.auth(self.uploader),
                                                          body)
            self.assert_error(status, headers, answer, 403, "forbidden", f"uploader {path}")

    # -- /admin/actors

    def test_actors_lists_the_tree(self):
        doc = self.actors()
        self.assertEqual(set(doc), {"actors", "uploads"})
        by_name = {a["name"]: a for a in doc["actors"]}
        for name in LONG_LIVED + ["root"]:
            self.assertIn(name, by_name)
        for a in doc["actors"]:
            self.assertLessEqual(ACTOR_KEYS, set(a), a)
            self.assertIn(a["state"], ("idle", "busy", "waiting"), a)
            self.assertIsInstance(a["id"], int)
        self.assertEqual(by_name["db_worker_1"]["supervisor"], "db_workers")
        self.assertEqual(by_name["db_pool"]["supervisor"], "db_supervisor")
        self.assertEqual(by_name["storage_writer_1"]["kind"], "storage_writer")
        self.assertIsNone(by_name["root"]["supervisor"])
        # the pool has handled the requests that authenticated us
        self.assertGreater(by_name["db_pool"]["messages"], 0)

    def test_live_upload_is_visible(self):
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.uploader, "watched.tar.gz", len(self.big)))
            sock.sendall(self.big[:MiB])

            def seen():
                doc = self.actors()
                ups = [u for u in doc["uploads"] if u["filename"] == "watched.tar.gz"]
                return (ups[0], doc) if ups and ups[0]["bytes_received"] > 0 else None

            upload, doc = wait_until(seen, 30, message="the upload in /admin/actors")
            self.assertEqual(upload["owner"], "up")
            self.assertGreaterEqual(upload["bytes_per_second"], 0)
            names = {a["name"]: a for a in doc["actors"]}
            session = names.get("upload_session_" + upload["id"])
            self.assertIsNotNone(session, names.keys())
            self.assertEqual(session["kind"], "upload_session")
            self.assertEqual(names["archive_validator_" + upload["id"]]["supervisor"],
                             session["name"])
            self.assertEqual(sample(self.admin_metrics(), "portal_uploads_active"), 1)

            sock.sendall(self.big[MiB:])
            status, _, body, _ = read_response(sock, REQUEST_TIMEOUT)
            self.assertEqual(status, 201, body)
        # gone from the registry once answered
        wait_until(lambda: not self.actors()["uploads"], 10, message="no live uploads")

    # -- kills

    def test_kill_each_long_lived_actor_kind(self):
        for name in LONG_LIVED:
            with self.subTest(actor=name):
                before = self.actor(name)
                kills = self.audit_rows("actor.kill")
                restarts_metric = sample(self.admin_metrics(), "portal_actor_restarts_total",
                                         {"actor": name})
                self.assertEqual(restarts_metric, before["restarts"])
                status, _, body = self.kill(before["id"])
                self.assertEqual(status, 202, body)
                self.assertEqual(json.loads(body)["killed"]["name"], name)

                def restarted():
                    a = self.actor(name)
                    return a if a and a["id"] != before["id"] else None

                after = wait_until(restarted, 30, message=f"{name} restarted")
                self.assertEqual(after["restarts"], before["restarts"] + 1)
                self.assertEqual(
                    sample(self.admin_metrics(), "portal_actor_restarts_total", {"actor": name}),
                    before["restarts"] + 1)
                self.assertEqual(self.audit_rows("actor.kill"), kills + 1)
                self.assertEqual(self.portal.request("GET", "/health")[0], 200)
                # the service works right after, through the restarted actor
                wait_ready(self.portal)
                self.upload_ok(self.uploader, f"after-kill-{name}.tar.gz", self.small, "up")

    def upload_results(self):
        """portal_uploads_total by result (SPEC §11)."""
        text = self.admin_metrics()
        return {r: sample(text, "portal_uploads_total", {"result": r})
                for r in ("completed", "rejected", "failed", "aborted")}

    def test_kill_an_upload_session_fails_that_upload_cleanly(self):
        before = self.snapshot()
        results = self.upload_results()
        crashes = sample(self.admin_metrics(), "portal_actor_crashes_total",
                         {"kind": "upload_session"})
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.uploader, "doomed.tar.gz", len(self.big)))
            sock.sendall(self.big[:MiB])
            wait_until(lambda: self.actors()["uploads"], 30, message="the live upload")
            upload = self.actors()["uploads"][0]
            session = self.actor("upload_session_" + upload["id"])
            status, _, body = self.kill(session["id"])
            self.assertEqual(status, 202, body)
            status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
            self.assert_error(status, headers, body, 500, "internal", "killed session")
        self.assert_nothing_left(before, context="killed session")
        self.assertEqual(sample(self.admin_metrics(), "portal_actor_crashes_total",
                                {"kind": "upload_session"}), crashes + 1)
        # a server-side failure: "failed", and nothing else moved
        self.assertEqual(self.upload_results(), dict(results, failed=results["failed"] + 1))
        self.upload_ok(self.uploader, "after-session-kill.tar.gz", self.small, "up")

    def abandon_an_upload(self):
        """An upload whose client goes away with half the body sent (SPEC
        §11: "aborted"); returns portal_uploads_total before and after."""
        before = self.snapshot()
        results = self.upload_results()
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.uploader, "abandoned.tar.gz", len(self.big)))
            sock.sendall(self.big[:MiB])
            wait_until(lambda: self.actors()["uploads"], 30, message="the live upload")
        self.assert_nothing_left(before, context="client gone")
        wait_until(lambda: self.upload_results()["aborted"] == results["aborted"] + 1, 10,
                   message="portal_uploads_total{result=\"aborted\"} to move")
        wait_until(lambda: not self.actors()["uploads"], 10, message="no live uploads")
        return results, self.upload_results()

    def test_client_gone_mid_upload_counts_as_aborted(self):
        results, after = self.abandon_an_upload()
        self.assertEqual(after["aborted"], results["aborted"] + 1)
        self.assertEqual(after["failed"], results["failed"])
        self.assertEqual(after["completed"], results["completed"])
        # A body cut off is a disconnect (Beast's partial_message), never a
        # 400: the upload is not counted a second time, as rejected.
        self.assertEqual(after["rejected"], results["rejected"])

    def tus(self, method, path, headers=None, body=None):
        h = dict(self.auth(self.uploader), **{"Tus-Resumable": "1.0.0"}, **(headers or {}))
        return self.portal.request(method, "/api/v1/tus/" + path, h, body, timeout=REQUEST_TIMEOUT)

    def test_tus_session_is_listed_and_survives_a_kill(self):
        half = len(self.big) // 2
        name = base64.b64encode(b"resumed-after-kill.tar.gz").decode()
        status, headers, body = self.tus("POST", "", {"Upload-Length": str(len(self.big)),
                                                      "Upload-Metadata": f"filename {name}"})
        self.assertEqual(status, 201, body)
        upload_id = headers["Location"].rsplit("/", 1)[1]
        offset_stream = {"Content-Type": "application/offset+octet-stream"}
        status, _, body = self.tus("PATCH", upload_id, dict(offset_stream, **{"Upload-Offset": "0"}),
                                   self.big[:half])
        self.assertEqual(status, 204, body)
        # the idle session is a live upload to an admin, with its progress
        live = [u for u in self.actors()["uploads"] if u["id"] == upload_id]
        self.assertEqual([(u["owner"], u["filename"], u["bytes_received"], u["bytes_expected"])
                          for u in live], [("up", "resumed-after-kill.tar.gz", half, len(self.big))])
        session = self.actor("tus_session_" + upload_id)
        self.assertEqual(session["kind"], "tus_session")
        crashes = sample(self.admin_metrics(), "portal_actor_crashes_total", {"kind": "tus_session"})
        status, _, body = self.kill(session["id"])
        self.assertEqual(status, 202, body)
        wait_until(lambda: self.actor("tus_session_" + upload_id) is None, 10,
                   message="the killed session to leave /admin/actors")
        self.assertEqual(sample(self.admin_metrics(), "portal_actor_crashes_total",
                                {"kind": "tus_session"}), crashes + 1)
        # the next request gets a new session: nothing durable was lost
        status, headers, _ = self.tus("HEAD", upload_id)
        self.assertEqual((status, headers.get("Upload-Offset")), (200, str(half)))
        status, _, body = self.tus("PATCH", upload_id,
                                   dict(offset_stream, **{"Upload-Offset": str(half)}),
                                   self.big[half:])
        self.assertEqual(status, 204, body)
        status, _, body = self.portal.request("GET", f"/api/v1/uploads/{upload_id}",
                                              self.auth(self.uploader))
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["sha256"], A.describe(self.big)["sha256"])

    def test_kill_refusals(self):
        status, headers, body = self.kill(999999999)
        self.assert_error(status, headers, body, 404, "not_found", "unknown id")
        status, headers, body = self.kill("not-a-number")
        self.assert_error(status, headers, body, 404, "not_found", "bad id")
        root = self.actor("root")
        status, headers, body = self.kill(root["id"])
        self.assert_error(status, headers, body, 409, "unsupervised", "root")
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)

    # -- audit

    def test_audit_lists_events_newest_first(self):
        obj = self.upload_ok(self.uploader, "audited.tar.gz", self.small, "up")
        reader = self.actor("archive_reader_2")
        status, headers, body = self.kill(reader["id"])
        self.assertEqual(status, 202, body)
        kill_request = headers["X-Request-Id"]
        status, _, body = self.portal.request("GET", "/admin/audit?limit=2", self.auth(self.admin))
        self.assertEqual(status, 200, body)
        events = json.loads(body)["events"]
        self.assertEqual(len(events), 2)
        for e in events:
            self.assertEqual(set(e), {"time", "event", "user", "ip", "request_id", "detail"})
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")
        kill, upload = events
        self.assertEqual((kill["event"], kill["user"], kill["ip"], kill["request_id"]),
                         ("actor.kill", "root-admin", "127.0.0.1", kill_request))
        self.assertEqual(kill["detail"], {"actor": "archive_reader_2", "id": reader["id"]})
        self.assertEqual((upload["event"], upload["user"]), ("upload.complete", "up"))
        self.assertEqual(upload["detail"]["upload_id"], obj["id"])
        self.assertGreaterEqual(kill["time"], upload["time"])
        for bad in ("0", "1001", "abc", "-1", ""):
            status, headers, body = self.portal.request("GET", f"/admin/audit?limit={bad}",
                                                        self.auth(self.admin))
            self.assert_error(status, headers, body, 400, "invalid_limit", f"limit={bad!r}")

    def test_rejected_upload_is_audited(self):
        name = "rejected-%d.tar.gz" % len(self.audit_events(self.admin, "upload.rejected"))
        status, _, body = self.portal.request("PUT", "/api/v1/uploads/" + name,
                                              self.auth(self.uploader), body=b"not gzip at all" * 100)
        self.assertEqual(status, 415, body)
        # Written beside the answer, not before it: wait for the row.
        wait_until(lambda: any(r["detail"].get("filename") == name
                               for r in self.audit_events(self.admin, "upload.rejected")),
                   timeout=10, message="the upload.rejected audit row")
        row = [r for r in self.audit_events(self.admin, "upload.rejected") if r["detail"]["filename"] == name][0]
        self.assertEqual(row["user"], "up")
        self.assertEqual((row["detail"]["status"], row["detail"]["code"]),
                         (415, "unsupported_media_type"))

    # -- metrics

    def test_metrics_listener_serves_only_metrics(self):
        status, headers, body = self.scrape()
        self.assertEqual(status, 200)
        text = body.decode()
        for name in SPEC_METRICS + TUSD_LIKE:
            self.assertIn(f"# TYPE {name} ", text, name)
        self.assertIsNotNone(sample(text, "portal_db_connections", {"state": "idle"}))
        self.assertIsNotNone(sample(text, "portal_actor_mailbox_size", {"actor": "db_pool"}))
        self.assertGreater(sample(text, "portal_storage_free_bytes"), 0)
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian package prometheus) is not installed")
        check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                               timeout=60)
        self.assertEqual(check.returncode, 0,
                         f"promtool: {check.stdout.decode()} {check.stderr.decode()}")
        # nothing else on that port, and no /metrics on the main one
        self.assertEqual(self.scrape("/admin/actors")[0], 404)
        self.assertEqual(self.scrape("/api/v1/me")[0], 404)
        self.assertEqual(self.scrape(method="POST")[0], 405)
        self.assertEqual(self.portal.request("GET", "/metrics")[0], 404)

    def test_uploads_and_requests_are_counted(self):
        text = self.admin_metrics()
        ok = sample(text, "portal_uploads_total", {"result": "completed"})
        rejected = sample(text, "portal_uploads_total", {"result": "rejected"})
        received = sample(text, "portal_upload_bytes_total")
        finished = sample(text, "portal_uploads_finished_total")
        durations = sample(text, "portal_upload_duration_seconds_count")
        obj = self.upload_ok(self.uploader, "counted.tar.gz", self.small, "up")
        status, _, _ = self.put(self.uploader, "counted.tar.gz", b"not gzip at all")
        self.assertEqual(status, 415)
        self.assertEqual(self.put(self.uploader, "counted.zip", self.small)[0], 400)
        self.assertEqual(self.put("wrong-token", "counted.tar.gz", self.small)[0], 401)
        self.assertEqual(self.put(self.uploader, "huge.tar.gz", b"",
                                  headers={"Content-Length": str(1 << 40)})[0], 413)
        status, _, _ = self.portal.request("DELETE", "/api/v1/uploads/" + obj["id"],
                                           self.auth(self.uploader))
        self.assertEqual(status, 204)
        text = self.admin_metrics()
        self.assertEqual(sample(text, "portal_uploads_total", {"result": "completed"}), ok + 1)
        # the 415, a 400 name, a 401 and a 413 before the body: rejected, each once
        self.assertEqual(sample(text, "portal_uploads_total", {"result": "rejected"}),
                         rejected + 4)
        self.assertEqual(sample(text, "portal_upload_bytes_total"),
                         received + len(self.small) + len(b"not gzip at all"))
        self.assertEqual(sample(text, "portal_uploads_finished_total"), finished + 1)
        self.assertEqual(sample(text, "portal_upload_duration_seconds_count"), durations + 5)
        self.assertGreaterEqual(sample(text, "portal_uploads_terminated_total"), 1)
        self.assertGreaterEqual(
            sample(text, "portal_http_requests_total", {"method": "PUT", "code": "415"}), 1)
        self.assertGreaterEqual(sample(text, "portal_http_errors_total", {"code": "415"}), 1)


if __name__ == "__main__":
    unittest.main()

"""End-to-end test of the web pages in a real browser (issue 13; SPEC §4, §7,
§8, §11): Debian's headless Chromium, driven by playwright-core
(tests/browser/pages_flow.js, one browser for the class), against the real
binary and PostgreSQL.

Covered here: redirects and the sign-in lockout page; the upload page's
refusals before any byte is sent; My uploads (pages, contents, copy,
download, delete with confirmation); an uploader's 403 on /admin; sign-out;
the admin dashboard while an upload runs (supervision tree, live upload,
charts, kill and restart, audit, users and tokens); no console error or CSP
violation on any page; nothing wider than a 360 px screen. Screenshots of
every page land in <build folder>/screenshots/.

The upload page's uploads themselves go over tus (/api/v1/tus/, issue 12)
and are tested once that server exists.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_browser_pages          (from tests/e2e)
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import unittest
import uuid
from datetime import datetime, timezone

import archives
from portal_harness import PortalTestCase, wait_until
from test_browser_login import BROWSER_DIR, missing_prerequisites

FLOW = os.path.join(BROWSER_DIR, "pages_flow.js")
MiB = 1 << 20
MAX_UPLOAD = 4 * MiB
QUOTA = 64 * MiB
LIVE_UPLOAD = "live-trickle.tar.gz"
KILL_ACTOR = "archive_reader_1"


class Trickle(threading.Thread):
    """A plain PUT whose body arrives slowly (4 KiB every 50 ms) until told
    to hurry, then at full speed: an upload the dashboard can watch run."""

    def __init__(self, port, token, name, body):
        super().__init__(daemon=True)
        self.port, self.token, self.name, self.body = port, token, name, body
        self.hurry = threading.Event()
        self.status = None

    def run(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=120) as sock:
            head = (f"PUT /api/v1/uploads/{self.name} HTTP/1.1\r\nHost: test\r\n"
                    f"Authorization: Bearer {self.token}\r\nContent-Length: {len(self.body)}\r\n"
                    "Connection: close\r\n\r\n")
            sock.sendall(head.encode())
            sent = 0
            while sent < len(self.body):
                piece = 4096 if not self.hurry.is_set() else 1 << 20
                sock.sendall(self.body[sent:sent + piece])
                sent += piece
                if not self.hurry.is_set():
                    self.hurry.wait(0.05)  # pacing the sender, not synchronising
            reply = b""
            while b"\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            self.status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


class BrowserPagesTest(PortalTestCase):
    PORTAL_ENV = {"PORTAL_LOGINS_PER_MINUTE": "1000", "PORTAL_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}

    @classmethod
    def setUpClass(cls):
        missing = missing_prerequisites()
        if missing:
            # A missing browser is a broken setup, not a reason to skip.
            raise AssertionError("browser tests need: " + ", ".join(missing))
        super().setUpClass()
        p = cls.portal
        wait_until(lambda: p.request("GET", "/ready")[0] == 200, 30)
        suffix = uuid.uuid4().hex[:6]
        cls.users = {}
        for role, name in (("uploader", "ulla" + suffix), ("admin", "ada" + suffix), ("uploader", "lockme" + suffix)):
            password = "pw-" + uuid.uuid4().hex
            p.run_ok("user", "add", name, "--role", role, "--password-stdin", input=password + "\n")
            token = p.run_ok("token", "create", "--user", name, "--name", "browser test").stdout.strip().splitlines()[-1]
            cls.users[name] = {"username": name, "password": password, "token": token}
        cls.uploader, cls.admin, cls.locked = (cls.users[n] for n in cls.users)
        p.run_ok("user", "quota", cls.uploader["username"], str(QUOTA))

        # The uploader's archives, oldest first, through the API.
        cls.archives = {
            "alpha.tar.gz": archives.gzip_bytes(archives.tar_bytes(archives.sample_members(seed=1))),
            "beta.tar.zst": archives.zstd_bytes(archives.tar_bytes(archives.sample_members(seed=2))),
            "gamma.tgz": archives.gzip_bytes(archives.tar_bytes(archives.sample_members(seed=3))),
        }
        cls.ids = {}
        for name, body in cls.archives.items():
            status, _, reply = p.request("PUT", f"/api/v1/uploads/{name}", body=body,
                                         headers={"Authorization": f"Bearer {cls.uploader['token']}"})
            assert status == 201, (name, status, reply)
            cls.ids[name] = json.loads(reply)["id"]

        cls.tmp = tempfile.mkdtemp(prefix="portal-pages-")
        files = {
            "wrong_name": ("notes.txt", b"not an archive\n"),
            "oversize": ("big.tar.gz", b"\x1f\x8b" + bytes(MAX_UPLOAD - 1)),
            "empty": ("empty.tar.gz", b""),
            "control": ("control.tar.gz", archives.gzip_bytes(archives.tar_bytes(archives.sample_members(seed=4)))),
            "quick": ("quick.tar.gz", archives.gzip_bytes(archives.tar_bytes(archives.sample_members(seed=5)))),
        }
        paths = {}
        for key, (name, body) in files.items():
            paths[key] = os.path.join(cls.tmp, name)
            with open(paths[key], "wb") as f:
                f.write(body)
        cls.files = files

        build_dir = os.path.dirname(os.path.abspath(p.binary))
        cls.screenshots = os.path.join(build_dir, "screenshots")
        os.makedirs(cls.screenshots, exist_ok=True)
        config = {
            "base": p.base_url,
            "screenshots": cls.screenshots,
            "max_upload_bytes": MAX_UPLOAD,
            "uploader": cls.uploader,
            "admin": cls.admin,
            "locked": cls.locked,
            "per_page": 2,
            "entries_filename": "alpha.tar.gz",
            "download_filename": "alpha.tar.gz",
            "delete_filename": "beta.tar.zst",
            "files": paths,
            "live_upload_filename": LIVE_UPLOAD,
            "kill_actor": KILL_ACTOR,
        }
        live_body = archives.gzip_bytes(archives.random_tar(MAX_UPLOAD - 64 * 1024), level=0)
        cls.trickle = Trickle(p.port, cls.admin["token"], LIVE_UPLOAD, live_body)
        cls.log_mark = len(p.logs)

        proc = subprocess.Popen(["node", FLOW, json.dumps(config)], cwd=BROWSER_DIR, text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stderr = []

        def read_stderr():
            for line in proc.stderr:
                stderr.append(line)
                # The upload the dashboard watches starts with its part.
                if line.strip() == "pages_flow: dashboard" and not cls.trickle.is_alive():
                    cls.trickle.start()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        reader.join(10)
        cls.trickle.hurry.set()
        if cls.trickle.is_alive() or cls.trickle.status is not None:
            cls.trickle.join(60)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        cls.flow_stderr = "".join(stderr)
        if not lines:
            raise AssertionError(f"pages_flow.js printed no result (exit {proc.returncode}):\n"
                                 f"stdout: {out[-2000:]}\nstderr: {cls.flow_stderr[-4000:]}")
        cls.r = json.loads(lines[-1])

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)
        super().tearDownClass()

    def part(self, key):
        if key not in self.r:
            self.fail(f"the browser flow did not get to {key!r}: {json.dumps(self.r.get('errors'), indent=1)}\n"
                      f"steps: {self.r.get('steps')}\n{self.flow_stderr[-2000:]}\n"
                      f"live upload: {self.trickle.status}; {self.r.get('dashboard', {}).get('actors_at_failure')}")
        return self.r[key]

    def requests_logged(self):
        return [e for e in self.portal.logs[self.log_mark:] if e.get("msg") == "request"]

    # -- who may see what

    def test_anonymous_pages_redirect_to_login(self):
        anonymous = self.part("anonymous")
        for path in ("/", "/uploads", "/admin"):
            with self.subTest(path):
                self.assertEqual(anonymous[path]["chain"], [path, "/login"])
                self.assertEqual(anonymous[path]["final_status"], 200)

    def test_uploader_gets_a_403_page_on_admin(self):
        seen = self.part("uploader_admin")
        self.assertEqual((seen["status"], seen["final_path"]), (403, "/admin"))
        self.assertEqual(seen["heading"], "403 Forbidden")
        self.assertEqual(seen["message"], "This page is for administrators.")
        self.assertFalse(self.part("upload_page")["admin_link_visible"])

    def test_sign_out_ends_the_session(self):
        out = self.part("sign_out")
        self.assertEqual(out["chain"], ["/uploads", "/login"])

    def test_lockout_says_how_long(self):
        lock = self.part("lockout")
        self.assertEqual(lock["statuses"], [401] * 5 + [429])
        self.assertTrue(900 - 60 < int(lock["retry_after"]) <= 900, lock)
        self.assertEqual(lock["error_text"], "Too many failed sign-ins for this name. It is locked for 15 minutes.")
        self.assertTrue(lock["clock_visible"])
        self.assertRegex(lock["clock_text"], r"^You can sign in again in 1[45] min \d\d s\.$")
        self.assertTrue(lock["submit_disabled"])

    # -- the upload page

    def test_upload_page_shows_quota_and_limit(self):
        page = self.part("upload_page")
        self.assertEqual(page["shown_username"], self.uploader["username"])
        used = sum(len(b) for b in self.archives.values())
        self.assertEqual(page["limit_text"], "Up to 4.0 MiB per file")
        self.assertRegex(page["quota_text"], r"^[\d.]+ KiB of 64\.0 MiB used · [\d.]+ MiB left$")
        self.assertIn(f"{used / 1024:.1f} KiB", page["quota_text"])
        self.assertEqual(page["current_nav"], "Upload")

    def test_wrong_name_oversize_and_empty_files_are_refused_before_a_byte_is_sent(self):
        refused = {r["name"]: r for r in self.part("refused")}
        self.assertEqual(set(refused), {"notes.txt", "big.tar.gz", "empty.tar.gz"})
        for r in refused.values():
            self.assertEqual(r["state"], "refused")
        self.assertIn("the name must end in .tar.gz, .tgz or .tar.zst", refused["notes.txt"]["message"])
        self.assertEqual(refused["big.tar.gz"]["message"],
                         "Not sent: the file is 4.0 MiB, over the limit of 4.0 MiB per file.")
        self.assertEqual(refused["empty.tar.gz"]["message"], "Not sent: the file is empty.")
        # Nothing left the browser for them, and the server heard nothing ...
        self.assertEqual(self.part("refused_requests"), [])
        start = self.part("control_started_ms") / 1000
        upload_paths = [e for e in self.requests_logged()
                        if e["path"].startswith("/api/v1/tus") or (e["method"] == "PUT" and e["path"].startswith("/api/v1/uploads/"))]
        before = [e for e in upload_paths if parse_time(e["time"]) < start]
        self.assertEqual(before, [])
        # ... while an acceptable file right after went out at once.
        control = self.part("control")
        self.assertTrue(any(q["path"].startswith("/api/v1/tus") for q in control["requests"]), control)
        self.assertTrue(any(e["path"].startswith("/api/v1/tus") and parse_time(e["time"]) >= start for e in upload_paths))

    # -- My uploads

    def test_my_uploads_pages_newest_first(self):
        mine = self.part("my_uploads")
        self.assertEqual(mine["first_page"], ["gamma.tgz", "beta.tar.zst"])
        self.assertTrue(mine["more_visible_first"])
        self.assertEqual(mine["after_more"], ["gamma.tgz", "beta.tar.zst", "alpha.tar.gz"])
        self.assertFalse(mine["more_visible_after"])
        self.assertEqual(mine["current_nav"], "My uploads")

    def test_entries_viewer_shows_the_tree(self):
        mine = self.part("my_uploads")
        facts = archives.describe(self.archives["alpha.tar.gz"])
        self.assertTrue(mine["entries_head"].startswith(f"{facts['entries']} entries"), mine["entries_head"])
        self.assertEqual(mine["contents_expanded"], "true")
        tree = {(n["name"], n["depth"]): n for n in mine["tree"]}
        self.assertEqual(tree[("project/", 0)]["type"], "dir")
        self.assertEqual(tree[("src/", 1)]["type"], "dir")
        self.assertEqual((tree[("data.bin", 2)]["type"], tree[("data.bin", 2)]["meta"]), ("file", "2.9 KiB"))
        self.assertEqual((tree[("empty.txt", 1)]["type"], tree[("empty.txt", 1)]["meta"]), ("file", "0 bytes"))
        self.assertEqual(tree[("readme-link", 1)]["type"], "symlink")
        self.assertEqual(tree[("up", 2)]["type"], "symlink")
        self.assertEqual(tree[("main-copy.c", 1)]["type"], "hardlink")
        self.assertEqual(len(mine["tree"]), facts["entries"])

    def test_copy_and_download_give_the_archive(self):
        mine = self.part("my_uploads")
        body = self.archives["alpha.tar.gz"]
        self.assertEqual(mine["clipboard"], hashlib.sha256(body).hexdigest())
        self.assertEqual(mine["download"],
                         {"suggested": "alpha.tar.gz", "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)})

    def test_delete_asks_first_then_removes_file_and_row(self):
        mine = self.part("my_uploads")
        self.assertIn("beta.tar.zst will be deleted from the server", mine["dialog_text"])
        self.assertTrue(mine["kept_after_escape"])
        self.assertEqual(mine["after_delete"], ["gamma.tgz", "alpha.tar.gz"])
        self.assertEqual(mine["notice"], "Deleted beta.tar.zst.")
        beta = self.ids["beta.tar.zst"]
        self.assertEqual(mine["delete_requests"],
                         [{"path": f"/api/v1/uploads/{beta}", "csrf_header": mine["csrf_meta"], "status": 204}])
        status, _, _ = self.portal.request("GET", f"/api/v1/uploads/{beta}",
                                           headers={"Authorization": f"Bearer {self.uploader['token']}"})
        self.assertEqual(status, 404)
        stored = [n for _, _, names in os.walk(self.portal.data_dir) for n in names]
        self.assertFalse([n for n in stored if beta in n], stored)

    # -- the dashboard

    def test_dashboard_draws_the_supervision_tree(self):
        tree = self.part("dashboard")["tree"]
        rows = {r["name"]: r for r in tree if "name" in r}
        self.assertEqual(tree[0]["name"], "root")
        self.assertEqual(tree[0]["branch"], "")
        self.assertFalse(tree[0]["has_kill"])  # nothing would restart the root
        self.assertEqual(rows["db_supervisor"]["branch"], "├─ ")
        self.assertEqual(rows["storage_supervisor"]["branch"], "└─ ")
        self.assertEqual(rows["db_pool"]["branch"], "│  ├─ ")
        self.assertEqual(rows[KILL_ACTOR]["branch"], "   ├─ ")
        self.assertTrue(rows[KILL_ACTOR]["has_kill"])
        names = [r.get("name") for r in tree]
        self.assertLess(names.index("db_supervisor"), names.index("db_pool"))
        self.assertLess(names.index("db_workers"), names.index("db_worker_1"))

    def test_dashboard_follows_a_running_upload(self):
        d = self.part("dashboard")
        self.assertNotEqual(d["live_first"], d["live_second"])
        self.assertIn(LIVE_UPLOAD, d["live_row"])
        self.assertIn(self.admin["username"], d["live_row"])
        self.assertIn("of 3.9 MiB", d["live_second"])
        self.assertTrue(d["session_rows"], "no upload_session actor in the tree while an upload ran")
        self.assertRegex(d["throughput_now"], r"^[\d.]+ (bytes|KiB|MiB)/s$")
        self.assertNotRegex(d["throughput_now"], r"^0 bytes")
        self.assertEqual(d["quick_put_status"], 201)
        self.assertRegex(d["upm_now"], r"^[1-9]\d* completed")
        self.assertEqual(self.trickle.status, 201)

    def test_kill_asks_first_and_shows_the_restart(self):
        d = self.part("dashboard")
        self.assertIn(f"Kill {KILL_ACTOR}?", d["kill_dialog"])
        self.assertIn("its supervisor storage_supervisor restarts it", d["kill_dialog"])
        self.assertEqual(d["kill_requests_after_cancel"], 0)
        self.assertEqual(d["kill_requests"], [f"/admin/actors/{d['kill_id_before']}/kill"])
        self.assertEqual(int(d["kill_restarts_after"]), int(d["kill_restarts_before"]) + 1)
        self.assertNotEqual(d["kill_id_after"], d["kill_id_before"])
        self.assertRegex(d["kill_notice"], rf"^{KILL_ACTOR} was restarted by its supervisor: restarts "
                                           rf"{d['kill_restarts_before']} → {d['kill_restarts_after']}, new id \d+\.$")
        self.assertIn("actor.kill", d["audit_events"])
        self.assertIn("login.ok", d["audit_events"])
        self.assertTrue(d["live_text"].startswith("Live · updated"))

    def test_users_and_tokens_overview_without_secrets(self):
        d = self.part("dashboard")
        users = {row[0]: row for row in d["users"]}
        ulla = users[self.uploader["username"]]
        self.assertEqual(ulla[1], "uploader")
        self.assertEqual(ulla[2], "2")  # alpha and gamma left
        self.assertTrue(ulla[3].endswith("of 64.0 MiB"), ulla)
        self.assertEqual(ulla[4], "1")
        self.assertNotEqual(users[self.admin["username"]][5], "never")
        token_users = sorted(row[1] for row in d["tokens"])
        self.assertEqual(token_users, sorted(u["username"] for u in self.users.values()))
        hashes = self.pg.psql("SELECT secret_hash FROM api_tokens").split()
        self.assertTrue(hashes)
        # Tokens are "upt_<id>_<secret>": ids may show, secrets never.
        for secret in [u["token"][21:] for u in self.users.values()] + hashes:
            self.assertNotIn(secret, d["body_text"])

    # -- every page

    def test_no_console_error_page_error_or_csp_violation(self):
        self.part("dashboard")
        # The only errors a page may log are the statuses its step expects:
        # the refused sign-ins and the uploader's 403.
        expected = {"lockout": ("401", "429"), "uploader on /admin": ("403",)}
        unexpected = [e for e in self.r["console_errors"]
                      if not (e["step"] in expected
                              and re.search(r"status of (\d+)", e["text"])
                              and re.search(r"status of (\d+)", e["text"]).group(1) in expected[e["step"]])]
        self.assertEqual(unexpected, [])
        self.assertEqual(self.r["page_errors"], [])
        self.assertEqual(self.r["csp_violations"], [])

    def test_every_page_fits_a_phone_and_labels_its_controls(self):
        pages = self.part("pages")
        self.assertEqual(set(pages), {"login", "login-locked", "upload", "upload-files", "uploads", "forbidden", "admin"})
        for name, page in pages.items():
            with self.subTest(name):
                self.assertLessEqual(page["phone_scroll_width"], 360, page)
                self.assertEqual(page["phone_wide_elements"], [])
                self.assertEqual(page["unlabeled"], [])
                for variant in ("desktop", "desktop-dark", "phone"):
                    self.assertTrue(os.path.getsize(os.path.join(self.screenshots, f"{name}-{variant}.png")) > 1000)

    def test_the_flow_ran_to_the_end(self):
        self.assertEqual(self.r["errors"], {}, self.flow_stderr[-3000:])


if __name__ == "__main__":
    unittest.main()

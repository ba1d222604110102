"""End-to-end tests of the server skeleton: the real binary over real sockets
against a real PostgreSQL (SPEC §4 tokens, §7 health, §8 headers and limits,
§9 lifecycle, §11 precise answers).

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_skeleton        (from tests/e2e)
"""

import base64
import json
import signal
import socket
import threading
import time
import unittest
import uuid

import archives as A
from portal_harness import PortalTestCase, parse_http_response, read_until_closed, token_secret, wait_until
from upload_checks import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response

MiB = 1024 * 1024

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy", "Permissions-Policy")


class Checks:
    """Assertions shared by the test classes (mixed into PortalTestCase)."""

    def assert_json_error(self, headers, body, status=None):
        """The SPEC's error shape: {"error": {"code": "snake_case", "message": "..."}}."""
        content_type = headers.get("Content-Type", "")
        self.assertTrue(content_type.startswith("application/json"),
                        f"Content-Type {content_type!r} for error body {body[:200]!r}")
        try:
            doc = json.loads(body)
        except ValueError:
            self.fail(f"error body is not JSON: {body[:200]!r}")
        self.assertIsInstance(doc, dict)
        self.assertEqual(set(doc), {"error"}, doc)
        err = doc["error"]
        self.assertIsInstance(err, dict, doc)
        self.assertIsInstance(err.get("code"), str, doc)
        self.assertRegex(err["code"], r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$", doc)
        self.assertIsInstance(err.get("message"), str, doc)
        self.assertTrue(err["message"].strip(), doc)
        return err

    def assert_security_headers(self, headers, context=""):
        for name in SECURITY_HEADERS:
            self.assertTrue(headers.get(name), f"{context}: missing {name} in {dict(headers)}")
        csp = headers["Content-Security-Policy"]
        self.assertIn("frame-ancestors 'none'", csp, context)
        directives = {}
        for part in csp.split(";"):
            words = part.split()
            if words:
                directives[words[0].lower()] = words[1:]
        scripts = directives.get("script-src", directives.get("default-src"))
        self.assertIsNotNone(scripts, f"{context}: CSP has neither script-src nor default-src: {csp}")
        self.assertNotIn("'unsafe-inline'", scripts, f"{context}: {csp}")
        self.assertEqual(headers["X-Content-Type-Options"].strip().lower(), "nosniff", context)
        self.assertEqual(headers["X-Frame-Options"].strip().upper(), "DENY", context)
        # development: no HSTS (it would pin a plain-http localhost)
        self.assertIsNone(headers.get("Strict-Transport-Security"), context)

    def assert_request_id(self, headers, context=""):
        rid = headers.get("X-Request-Id")
        self.assertTrue(rid and rid.strip(), f"{context}: no X-Request-Id in {dict(headers)}")
        return rid

    def auth(self, token):
        return {"Authorization": f"Bearer {token}"}


class SkeletonTest(PortalTestCase, Checks):
    """Tokens, health, headers, request ids, access log and protocol limits."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("alice", "uploader")
        cls.admin_token = cls.portal.create_user_and_token("root-admin", "admin")

    # -- authentication (SPEC §4)

    def test_me_with_token(self):
        status, headers, body = self.portal.request("GET", "/api/v1/me", self.auth(self.token))
        self.assertEqual(status, 200, body)
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"))
        me = json.loads(body)
        self.assertEqual(me["username"], "alice")
        self.assertEqual(me["role"], "uploader")

    def test_me_admin(self):
        status, _, body = self.portal.request("GET", "/api/v1/me", self.auth(self.admin_token))
        self.assertEqual(status, 200, body)
        me = json.loads(body)
        self.assertEqual((me["username"], me["role"]), ("root-admin", "admin"))

    def check_401(self, headers_to_send, context):
        status, headers, body = self.portal.request("GET", "/api/v1/me", headers_to_send)
        self.assertEqual(status, 401, f"{context}: {body[:200]!r}")
        self.assertTrue(headers.get("WWW-Authenticate", "").startswith("Bearer"),
                        f"{context}: WWW-Authenticate {headers.get('WWW-Authenticate')!r}")
        self.assert_json_error(headers, body)
        self.assert_security_headers(headers, context)
        self.assert_request_id(headers, context)

    def test_wrong_token(self):
        self.check_401(self.auth("upt_AAAAAAAAAAAAAAAA_" + "b" * 43), "well-formed unknown token")
        self.check_401(self.auth(self.token + "x"), "valid token plus a character")
        self.check_401(self.auth(self.token[:-1]), "valid token minus a character")

    def test_no_authorization(self):
        self.check_401({}, "no Authorization")

    def test_malformed_authorization(self):
        cases = {
            "scheme only": "Bearer",
            "scheme and space": "Bearer ",
            "basic": "Basic abc",
            "basic with the token": "Basic " + self.token,
            "token without scheme": self.token,
            "10 KiB token": "Bearer " + "a" * 10240,
            "two tokens": f"Bearer {self.token} {self.token}",
            "unicode": "Bearer tökén✓🔑".encode("utf-8"),
            "latin-1 bytes": b"Bearer \xff\xfe\xfd",
            "empty": "",
        }
        for name, value in cases.items():
            with self.subTest(case=name):
                self.check_401({"Authorization": value}, name)
        # and the server is still fine
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)

    # -- health (SPEC §7, §11)

    def test_health(self):
        status, headers, body = self.portal.request("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"))

    def test_ready(self):
        status, _, body = self.portal.request("GET", "/ready")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"status": "ok", "checks": {"database": "ok", "storage": "ok"}})

    def test_the_first_request_after_listening_is_served(self):
        # The server listens only once its actor tree has started: a request
        # in its first milliseconds may wait for the pool's first connection
        # but must find the pool (without it, 503 at once).
        portal = self.start_portal(wait="listening")
        status, _, body = portal.request("GET", "/api/v1/me", self.auth(self.token))
        self.assertEqual(status, 200, body)

    # -- headers on every kind of response (SPEC §8, §11)

    def test_security_headers_and_request_ids(self):
        responses = {
            "200 /health": ("GET", "/health", {}, 200),
            "200 /api/v1/me": ("GET", "/api/v1/me", self.auth(self.token), 200),
            "404 /api/v1/nope": ("GET", "/api/v1/nope", self.auth(self.token), 404),
            "405 DELETE /api/v1/me": ("DELETE", "/api/v1/me", self.auth(self.token), 405),
            "405 POST /health": ("POST", "/health", {}, 405),
        }
        seen_ids = set()
        for name, (method, path, headers, want) in responses.items():
            with self.subTest(case=name):
                status, got, body = self.portal.request(method, path, headers, body=b"" if method == "POST" else None)
                self.assertEqual(status, want, body[:200])
                self.assert_security_headers(got, name)
                seen_ids.add(self.assert_request_id(got, name))
                if path.startswith("/api/"):
                    if status != 200:
                        self.assert_json_error(got, body)
                if status == 405:
                    allow = [m.strip() for m in got.get("Allow", "").split(",")]
                    self.assertIn("GET", allow, f"Allow: {got.get('Allow')!r}")
                    self.assertNotIn(method, allow)
        self.assertEqual(len(seen_ids), len(responses), "request ids are not unique")

    def test_404_without_token_is_401(self):
        # anonymous requests never learn which API paths exist (SPEC §4)
        status, headers, body = self.portal.request("GET", "/api/v1/nope")
        self.assertEqual(status, 401, body)
        self.assert_json_error(headers, body)

    def test_unknown_method(self):
        for path, headers in (("/api/v1/me", self.auth(self.token)), ("/health", {})):
            with self.subTest(path=path):
                status, got, body = self.portal.request("BREW", path, headers)
                # an unknown method is 501 (RFC 9110 §15.6.2); 405 is for a
                # known method a path does not allow
                self.assertEqual(status, 501, body[:200])
                self.assert_security_headers(got, f"BREW {path}")
                self.assert_request_id(got, f"BREW {path}")
                if path.startswith("/api/"):
                    self.assertEqual(self.assert_json_error(got, body)["code"], "not_implemented")

    # -- access log (SPEC §9, §11)

    def test_access_log_line_per_request(self):
        path = f"/api/v1/nope-{uuid.uuid4().hex}"
        status, headers, _ = self.portal.request("GET", path, self.auth(self.token))
        self.assertEqual(status, 404)
        rid = self.assert_request_id(headers)

        def logged():
            return [e for e in self.portal.logs
                    if e.get("msg") == "request" and str(e.get("path", "")).startswith(path)]

        entries = wait_until(logged, 5, message=f"an access-log line for {path}")
        self.assertEqual(len(entries), 1, entries)
        entry = entries[0]
        self.assertEqual(entry.get("method"), "GET", entry)
        self.assertEqual(entry.get("status"), 404, entry)
        self.assertEqual(entry.get("request_id"), rid, entry)
        for key in ("time", "level"):
            self.assertIn(key, entry)
        # no log line ever carries a token
        output = self.portal.output()
        self.assertNotIn(self.token, output)
        self.assertNotIn(token_secret(self.token), output)

    def test_every_stdout_line_is_json(self):
        self.portal.request("GET", "/health")
        with self.portal._lock:
            lines = list(self.portal.raw_lines)
        self.assertTrue(lines)
        for line in lines:
            doc = json.loads(line)
            self.assertIsInstance(doc, dict, line)
            for key in ("time", "level", "msg"):
                self.assertIn(key, doc, line)

    # -- protocol limits (SPEC §8, §11)

    def test_header_too_large(self):
        heads = {
            "one 20 KiB header": b"X-Big: " + b"a" * 20480 + b"\r\n",
            "many headers, 20 KiB in all": b"".join(
                b"X-H%d: %s\r\n" % (i, b"b" * 500) for i in range(40)),
        }
        for name, extra in heads.items():
            with self.subTest(case=name):
                request = (b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Authorization: Bearer " + self.token.encode() + b"\r\n" + extra + b"\r\n")
                status, headers, body = parse_http_response(self.portal.raw(request, read_timeout=10))
                self.assertEqual(status, 431, body[:200])
                self.assert_json_error(headers, body)
                self.assert_security_headers(headers, name)
                self.assert_request_id(headers, name)
        # a 12 KiB head is within the 16 KiB limit
        status, _, body = self.portal.request("GET", "/health", {"X-Fine": "c" * 12288})
        self.assertEqual(status, 200, body[:200])

    def test_slow_and_silent_clients(self):
        """Four clients at once, so the 10 s deadline is waited for only once."""
        results = {}

        def trickle_head(s, name, started):
            # a header line every second: the 10 s deadline is for the whole
            # head (the 1 s pauses pace the client; nothing waits on them)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            try:
                for i in range(25):
                    s.settimeout(1.0)
                    try:
                        data = s.recv(65536)
                    except socket.timeout:
                        s.sendall(b"X-Slow-%d: y\r\n" % i)
                        continue
                    # answered (or closed): collect the rest
                    data += read_until_closed(s, 5)
                    results[name] = (data, time.monotonic() - started)
                    return
            except (BrokenPipeError, ConnectionResetError):
                results[name] = (b"", time.monotonic() - started)
                return
            results[name] = (None, time.monotonic() - started)

        def half_request_line():
            with self.portal.connect(timeout=20) as s:
                s.sendall(b"GET /hea")
                started = time.monotonic()
                data = read_until_closed(s, 20)
                results["half"] = (data, time.monotonic() - started)

        def slow_headers():
            with self.portal.connect(timeout=20) as s:
                trickle_head(s, "slow", time.monotonic())

        def kept_alive():
            # SPEC §11: on a kept-alive connection the deadline runs from the
            # end of the previous request, not from the next head's first
            # byte: 6 s of quiet, then a trickled head, gets its 408 about
            # 10 s after the first answer (16 s if the clock restarted at
            # the first byte, never if there were no deadline)
            with self.portal.connect(timeout=20) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                status, _, _, rest = read_response(s, 10)
                answered = time.monotonic()
                results["kept_first"] = (status, rest)
                time.sleep(6)  # the client's pace, as above
                trickle_head(s, "kept", answered)

        def silent():
            with self.portal.connect(timeout=20) as s:
                started = time.monotonic()
                data = read_until_closed(s, 20)
                results["silent"] = (data, time.monotonic() - started)

        threads = [threading.Thread(target=f)
                   for f in (half_request_line, slow_headers, kept_alive, silent)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)

        data, elapsed = results["half"]
        status, headers, _ = parse_http_response(data)
        self.assertEqual(status, 408, data[:300])
        self.assertGreater(elapsed, 8, "408 came before the 10 s header deadline")
        self.assertLess(elapsed, 15, "the connection was not closed after the 408")
        self.assert_security_headers(headers, "408")

        data, elapsed = results["slow"]
        self.assertIsNotNone(data, "a slow-header client was never cut off")
        status, _, _ = parse_http_response(data)
        self.assertEqual(status, 408, data[:300])
        self.assertLess(elapsed, 15, "the header deadline is not a total deadline")

        self.assertEqual(results["kept_first"], (200, b""))
        data, elapsed = results["kept"]
        self.assertIsNotNone(data, "a slow head on a kept-alive connection was never cut off")
        status, _, _ = parse_http_response(data)
        self.assertEqual(status, 408, data[:300])
        self.assertGreater(elapsed, 8, "408 before the deadline")
        self.assertLess(elapsed, 14, "the kept-alive deadline did not run from the previous answer")

        data, elapsed = results["silent"]
        self.assertEqual(data, b"", "a silent connection got a response")
        self.assertLess(elapsed, 15, "a silent connection was not closed")

        self.assertEqual(self.portal.request("GET", "/health")[0], 200)

    def test_garbage_request(self):
        for name, raw in {
            "binary": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
            "no version": b"GET /health\r\n\r\n",
            "bad header": b"GET /health HTTP/1.1\r\nHost x\r\n\r\n",
        }.items():
            with self.subTest(case=name):
                data = self.portal.raw(raw, read_timeout=12)
                if data:
                    status, _, _ = parse_http_response(data)
                    self.assertEqual(status, 400, data[:300])
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)


class DatabaseOutageTest(PortalTestCase, Checks):
    """PostgreSQL goes away and comes back while the server keeps running."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("olga", "uploader")

    def ready(self):
        status, _, body = self.portal.request("GET", "/ready", timeout=10)
        return status, json.loads(body)

    def test_outage_and_recovery(self):
        self.assertEqual(self.ready(), (200, {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}))
        self.assertEqual(self.portal.request("GET", "/api/v1/me", self.auth(self.token))[0], 200)

        self.pg.stop()
        try:
            status, doc = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(self.ready()), 15,
                                     message="/ready to answer 503")
            self.assertEqual(doc["status"], "unavailable", doc)
            self.assertEqual(set(doc), {"status", "checks"}, doc)
            self.assertIsInstance(doc["checks"]["database"], str, doc)
            self.assertNotEqual(doc["checks"]["database"], "ok", doc)
            self.assertEqual(doc["checks"]["storage"], "ok", doc)

            # liveness is not readiness
            self.assertEqual(self.portal.request("GET", "/health")[0], 200)

            # an authenticated request answers 503 fast instead of hanging
            for _ in range(2):
                started = time.monotonic()
                status, headers, body = self.portal.request("GET", "/api/v1/me", self.auth(self.token), timeout=10)
                elapsed = time.monotonic() - started
                self.assertEqual(status, 503, body[:200])
                self.assertLess(elapsed, 5, "503 took too long")
                self.assertRegex(headers.get("Retry-After", ""), r"^\d+$")
                self.assert_json_error(headers, body)
                self.assert_request_id(headers)
                self.assert_security_headers(headers, "503")

            # the login form says so too, as a page
            status, headers, body = self.portal.request(
                "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
                b"username=someone&password=pw")
            self.assertEqual(status, 503, body[:200])
            self.assertTrue(headers["Content-Type"].startswith("text/html"), headers)
            self.assertRegex(headers.get("Retry-After", ""), r"^\d+$")
            self.assert_security_headers(headers, "503 login page")
        finally:
            self.pg.start()

        wait_until(lambda: self.ready()[0] == 200, 30, interval=0.2, message="/ready to recover")
        self.assertEqual(self.ready(), (200, {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}))
        status, _, body = self.portal.request("GET", "/api/v1/me", self.auth(self.token))
        self.assertEqual(status, 200, body)


class ShutdownTest(PortalTestCase, Checks, UploadChecks):
    """SIGTERM / SIGINT: the listener closes at once, in-flight uploads finish
    within the drain deadline or are aborted cleanly after it, and the
    process exits 0 (SPEC §9, §11)."""

    PORTAL_ENV = {"PORTAL_DRAIN_SECONDS": "5"}

    def refused(self, port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True

    def check_shutdown(self, portal, sig):
        self.assertEqual(portal.request("GET", "/health")[0], 200)
        port = portal.port
        portal.proc.send_signal(sig)
        # the listener closes at once (SPEC §11), even before the process exits
        wait_until(lambda: self.refused(port), 5, message="new connections to be refused")
        code = portal.wait_exit(5 + 10)
        self.assertIsNotNone(code, f"no exit within the drain deadline:\n{portal.output_tail()}")
        self.assertEqual(code, 0, portal.output_tail())
        self.assertTrue(self.refused(port))
        self.assertEqual(portal.sanitizer_reports(), [])

    def test_sigterm(self):
        import signal
        self.check_shutdown(self.portal, signal.SIGTERM)

    def test_sigint(self):
        import signal
        portal = self.start_portal(env={"PORTAL_DRAIN_SECONDS": "5"})
        self.check_shutdown(portal, signal.SIGINT)

    def test_sigterm_with_idle_keepalive_connection(self):
        import signal
        portal = self.start_portal(env={"PORTAL_DRAIN_SECONDS": "5"})
        s = portal.connect()
        self.addCleanup(s.close)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first[:100])
        started = time.monotonic()
        self.check_shutdown(portal, signal.SIGTERM)
        # an idle kept-alive connection does not hold the drain for its deadline
        self.assertLess(time.monotonic() - started, 5)

    def test_sigterm_after_finished_requests_waits_for_no_connection(self):
        # A finished request must not keep the connection it came on, which
        # the client has closed, through anything its database work captured
        # (an exchange, an upload link), with a database deadline longer than
        # the drain's: the drain must not wait its deadline out for them.
        portal = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DRAIN_SECONDS="10",
                                            PORTAL_DB_DEADLINE_MS="60000"))
        token = portal.create_user_and_token("finished", "uploader")
        archive = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=81)))
        self.assertEqual(self.put(token, "stored.tar.gz", archive, portal=portal)[0], 201)
        # refused by the validator, after the body was handed to the upload
        unsafe = A.gzip_bytes(A.tar_bytes([A.file("../escape", b"x")]))
        self.assertEqual(self.put(token, "refused.tar.gz", unsafe, portal=portal)[0], 422)
        # the same over tus: the refused upload's deletion commits however late
        tus = dict(self.auth(token), **{"Tus-Resumable": "1.0.0"})
        status, headers, _ = portal.request("POST", "/api/v1/tus/", dict(tus, **{
            "Upload-Length": str(len(unsafe)),
            "Upload-Metadata": "filename " + base64.b64encode(b"refused.tar.gz").decode()}))
        self.assertEqual(status, 201)
        self.assertEqual(portal.request("PATCH", headers["Location"], dict(tus, **{
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}),
            unsafe)[0], 422)
        form = b"username=finished&password=wrong"
        self.assertEqual(portal.request("POST", "/login", {
            "Content-Type": "application/x-www-form-urlencoded"}, form)[0], 401)
        portal.proc.send_signal(signal.SIGTERM)
        code = portal.wait_exit(10 + 20)
        self.assertEqual(code, 0, portal.output_tail())
        self.assertEqual([l for l in portal.logs if l.get("msg", "").startswith("drain deadline")], [],
                         "the drain waited for connections that had ended")

    def start_upload(self, drain_seconds):
        """A server with that drain deadline and an upload in flight on it
        (1 MiB of 3 sent, its partial file on disk): (portal, socket, archive, snapshot)."""
        portal = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_DRAIN_SECONDS=str(drain_seconds)))
        token = portal.create_user_and_token(f"drain{drain_seconds}", "uploader")
        archive = A.gzip_bytes(A.random_tar(3 * MiB, seed=80 + drain_seconds), level=0)
        before = self.snapshot(portal)
        sock = portal.connect(timeout=REQUEST_TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(self.head_bytes(token, "inflight.tar.gz", len(archive)))
        sock.sendall(archive[:MiB])
        wait_until(lambda: self.dir_files("tmp", portal), 30, message="a partial file in tmp/")
        return portal, sock, archive, before

    def sigterm(self, portal):
        port = portal.port
        portal.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: self.refused(port), 5, message="new connections to be refused")

    def test_sigterm_lets_an_inflight_upload_finish(self):
        portal, sock, archive, before = self.start_upload(drain_seconds=30)
        self.sigterm(portal)
        self.assertIsNone(portal.proc.poll(), "exited with an upload in flight")
        # the rest of the body after SIGTERM: still received, stored, recorded
        sock.sendall(archive[MiB:])
        status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
        obj = self.assert_upload(status, headers, body, archive, "inflight.tar.gz", "drain30",
                                 "tar.gz", "upload in flight at SIGTERM", portal=portal)
        code = portal.wait_exit(30)
        self.assertEqual(code, 0, portal.output_tail())
        self.assertEqual(self.row_count(), before["rows"] + 1)
        self.assertEqual(self.pg.psql(f"select filename from uploads where id = '{obj['id']}'"),
                         "inflight.tar.gz")
        self.assertEqual(self.dir_files("tmp", portal), [])

    def test_upload_past_the_drain_deadline_is_aborted_cleanly(self):
        portal, sock, archive, before = self.start_upload(drain_seconds=2)
        started = time.monotonic()
        self.sigterm(portal)
        # the client never sends the rest: the drain deadline ends it
        code = portal.wait_exit(30)
        self.assertEqual(code, 0, portal.output_tail())
        self.assertLess(time.monotonic() - started, 2 + 10, "the drain deadline was not applied")
        # SPEC §9 asks for a clean abort, not for an answer: the server
        # closes the connection without one (the client sees the upload fail)
        self.assertEqual(read_until_closed(sock, 10), b"", "closed without a response")
        self.assert_nothing_left(before, portal=portal, context="aborted by the drain")


if __name__ == "__main__":
    unittest.main()

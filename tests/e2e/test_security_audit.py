"""deploy/security-audit.sh against local servers (issue 15, SPEC §4, §7, §8).

    a production server behind a trusted proxy (plain http, --proxied) and one
    speaking native TLS both pass every check;
    a development server (no HSTS, no redirect) and a deliberately leaky
    stand-in server (versioned Server header, no CSP, an open /admin, public
    /metrics) fail exactly the checks they should.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_security_audit        (from tests/e2e)
"""

import http.server
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unittest

from portal_harness import PortalTestCase

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
AUDIT = os.path.join(ROOT, "deploy", "security-audit.sh")
LINE = re.compile(r"^(PASS|FAIL|SKIP) (\S+): .+$")
PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY_BASE": "s" * 64,
    "PORTAL_DB_ALLOW_INSECURE": "1",  # the throwaway cluster has no TLS
    "PORTAL_METRICS_LISTEN": "127.0.0.1:0",
}
# Checks every audit runs, whatever the URL.
COMMON = {"health", "csp(login)", "csp(me)", "x-frame-options(login)", "x-content-type-options(me)",
          "referrer-policy(login)", "permissions-policy(me)", "server-header", "cors", "admin-page",
          "admin-api", "admin-audit", "admin-metrics", "api-list", "api-www-authenticate", "api-upload",
          "api-bad-token", "tus-create", "metrics-not-public"}


def run_audit(*args):
    """Runs the script; returns (exit code, {check: [verdicts]}, stdout)."""
    result = subprocess.run(["bash", AUDIT, *args], capture_output=True, text=True, timeout=120)
    verdicts = {}
    lines = result.stdout.splitlines()
    for line in lines[:-1]:
        m = LINE.match(line)
        if not m:
            raise AssertionError(f"not a verdict line: {line!r}\n{result.stdout}{result.stderr}")
        verdicts.setdefault(m.group(2), []).append(m.group(1))
    if not lines or not lines[-1].startswith("summary: "):
        raise AssertionError(f"no summary line:\n{result.stdout}{result.stderr}")
    return result.returncode, verdicts, result.stdout


def metrics_port(portal):
    return next(e["port"] for e in portal.logs if e.get("msg") == "metrics listening")


class ProxiedProductionTest(PortalTestCase):
    """As on Fly: plain http behind the platform's TLS proxy, trusted."""

    PORTAL_ENV = dict(PRODUCTION, PORTAL_TRUST_PROXY="true")

    def test_every_check_passes(self):
        code, verdicts, out = run_audit("--proxied", "--metrics-url",
                                        f"http://127.0.0.1:{metrics_port(self.portal)}",
                                        self.portal.base_url)
        self.assertEqual(code, 0, out)
        self.assertTrue(COMMON <= set(verdicts), out)
        for name in ("https-redirect", "health-not-redirected", "hsts", "metrics-listener"):
            self.assertEqual(verdicts.get(name), ["PASS"], out)
        self.assertEqual(verdicts["tls-version"], ["SKIP"], out)
        self.assertNotIn("FAIL", {v for vs in verdicts.values() for v in vs}, out)


class NativeTlsProductionTest(PortalTestCase):
    """Without a proxy: the server's own TLS."""

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="portal-audit-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, True)
        cls.cert = os.path.join(cls.certs, "server.crt")
        key = os.path.join(cls.certs, "server.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cls.cert,
             "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60)
        cls.PORTAL_ENV = dict(PRODUCTION, PORTAL_TLS_CERT=cls.cert, PORTAL_TLS_KEY=key)
        super().setUpClass()

    def test_every_check_passes(self):
        code, verdicts, out = run_audit("--cacert", self.cert, f"https://127.0.0.1:{self.portal.port}")
        self.assertEqual(code, 0, out)
        self.assertTrue(COMMON <= set(verdicts), out)
        self.assertEqual(verdicts["tls-version"], ["PASS"], out)
        self.assertEqual(verdicts["tls-old-refused"], ["PASS", "PASS"], out)
        self.assertEqual(verdicts["hsts"], ["PASS"], out)
        self.assertRegex(out, r"PASS tls-version: negotiated TLSv1\.[23], certificate verified")
        # a non-default port: where plain HTTP would be is unknown
        self.assertEqual(verdicts["https-redirect"], ["SKIP"], out)

    def test_an_untrusted_certificate_fails(self):
        code, verdicts, out = run_audit(f"https://127.0.0.1:{self.portal.port}")
        self.assertEqual(code, 1, out)
        self.assertEqual(verdicts["health"], ["FAIL"], out)


class DevelopmentServerTest(PortalTestCase):
    """Development mode sends no HSTS and redirects nothing: the audit says so."""

    PORTAL_ENV = {"PORTAL_TRUST_PROXY": "true"}

    def test_missing_redirect_and_hsts_fail(self):
        code, verdicts, out = run_audit("--proxied", self.portal.base_url)
        self.assertEqual(code, 1, out)
        self.assertEqual(verdicts["https-redirect"], ["FAIL"], out)
        self.assertEqual(verdicts["hsts"], ["FAIL"], out)
        self.assertEqual(verdicts["csp(login)"], ["PASS"], out)

    def test_plain_http_without_proxy_fails(self):
        code, verdicts, out = run_audit(self.portal.base_url)
        self.assertEqual(code, 1, out)
        self.assertEqual(verdicts["https-redirect"], ["FAIL"], out)


class _LeakyHandler(http.server.BaseHTTPRequestHandler):
    """Everything the audit must catch: a versioned Server header, no security
    headers, /admin and /metrics open to anyone, CORS for any origin."""

    server_version = "Boost.Beast/330"
    sys_version = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = b'{"status":"ok"}' if self.path == "/health" else b"portal_uploads_active 0\n"
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST = do_GET

    def log_message(self, *args):
        pass


class LeakyServerTest(unittest.TestCase):
    def test_each_leak_is_a_failure(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LeakyHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        code, verdicts, out = run_audit("--proxied", f"http://127.0.0.1:{server.server_address[1]}")
        self.assertEqual(code, 1, out)
        for name in ("server-header", "csp(login)", "x-frame-options(login)", "cors", "admin-page",
                     "admin-api", "api-list", "api-upload", "metrics-not-public", "https-redirect", "hsts"):
            self.assertIn("FAIL", verdicts[name], f"{name}\n{out}")
        self.assertEqual(verdicts["health"], ["PASS"], out)


if __name__ == "__main__":
    unittest.main()

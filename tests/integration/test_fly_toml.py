"""Integration test: deploy/fly.toml agrees with the binary it deploys (SPEC §9, §10).

The file is read with tomllib; the binary is asked for its effective
configuration under fly.toml's [env] (`upload-portal check-config`, whose
output is TOML too), and then run with that environment against a real
PostgreSQL to try the release command, the health check and the metrics
scrape exactly as Fly would issue them.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_fly_toml        (from tests/integration)
"""

import http.client
import json
import os
import re
import shlex
import tomllib
import unittest

from portal_harness import Portal, PostgresCluster

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FLY_TOML = os.path.join(ROOT, "deploy", "fly.toml")

# Fly's limit for kill_timeout (seconds).
FLY_MAX_KILL_TIMEOUT = 300
# Production refuses to start without these; they stand in for the Fly secrets.
FAKE_SECRETS = {
    "SECRET_KEY_BASE": "k" * 64,
    "DATABASE_URL": "postgresql://portal@db.internal:5432/portal?sslmode=verify-full",
}
SECRET_NAMES = ("SECRET_KEY_BASE", "DATABASE_URL", "DATABASE_DIRECT_URL", "PORTAL_TLS_KEY")


def load_fly():
    with open(FLY_TOML, "rb") as f:
        return tomllib.load(f)


def seconds(value):
    """A Fly duration: an integer (seconds) or a string such as "45s" / "2m"."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(\d+)(s|m)", value)
    if not m:
        raise AssertionError(f"not a Fly duration: {value!r}")
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def host_port(address):
    host, _, port = address.rpartition(":")
    return host, int(port)


class FlyTomlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fly = load_fly()
        cls.env = {k: str(v) for k, v in cls.fly.get("env", {}).items()}
        probe = Portal(env={**cls.env, **FAKE_SECRETS})
        cls.addClassCleanup(probe.cleanup)
        result = probe.run_cli("check-config")
        if result.returncode != 0:
            raise AssertionError(f"check-config under fly.toml's [env] failed: {result.stderr}")
        cls.effective = tomllib.loads(result.stdout)

    # -- the file against the binary's effective configuration

    def test_production_behind_fly_proxy(self):
        self.assertEqual(self.effective["env"], "production")
        self.assertIs(self.effective["trust_proxy"], True)

    def test_no_secret_in_env(self):
        for name in SECRET_NAMES:
            self.assertNotIn(name, self.env, f"{name} belongs in `fly secrets`, not fly.toml")

    def test_http_service_is_the_listener(self):
        service = self.fly["http_service"]
        host, port = host_port(self.effective["listen"])
        self.assertEqual(host, "0.0.0.0", "Fly's proxy reaches the machine on its external interface")
        self.assertEqual(service["internal_port"], port)
        self.assertIs(service["force_https"], True)

    def test_mount_is_the_data_dir(self):
        mounts = self.fly["mounts"]
        mounts = mounts[0] if isinstance(mounts, list) else mounts
        self.assertEqual(mounts["destination"], self.effective["data_dir"])

    def test_kill_timeout_outlasts_the_drain(self):
        self.assertEqual(self.fly["kill_signal"], "SIGTERM")
        timeout = seconds(self.fly["kill_timeout"])
        drain = self.effective["drain_seconds"]
        self.assertGreater(timeout, drain, "Fly would SIGKILL uploads that are still draining")
        self.assertLessEqual(timeout, FLY_MAX_KILL_TIMEOUT)

    def test_metrics_port_is_the_metrics_listener(self):
        metrics = self.fly["metrics"]
        self.assertIn("metrics_listen", self.effective, "fly.toml [env] must set PORTAL_METRICS_LISTEN")
        _, port = host_port(self.effective["metrics_listen"])
        self.assertEqual(metrics["port"], port)
        self.assertNotEqual(metrics["port"], self.fly["http_service"]["internal_port"],
                            "/metrics must not be on the public port")
        self.assertEqual(metrics["path"], "/metrics")

    def test_concurrency_admits_the_servers_own_limits(self):
        concurrency = self.fly["http_service"]["concurrency"]
        limits = self.effective["limits"]
        # Each upload is one request however long it runs; kept-alive idle
        # connections must not count against it.
        self.assertEqual(concurrency["type"], "requests")
        self.assertGreaterEqual(concurrency["soft_limit"], limits["uploads_total"])
        self.assertGreater(concurrency["hard_limit"], limits["uploads_total"],
                           "at full upload load a download, page or /health must still get through")
        self.assertGreaterEqual(concurrency["hard_limit"], concurrency["soft_limit"])

    def test_release_command_is_migrate(self):
        words = shlex.split(self.fly["deploy"]["release_command"])
        self.assertEqual(words, ["upload-portal", "migrate"])

    def test_health_check_path(self):
        checks = self.fly["http_service"]["checks"]
        self.assertEqual([c["path"] for c in checks], ["/health"])
        self.assertEqual(checks[0].get("method", "GET").upper(), "GET")
        self.assertLess(seconds(checks[0]["timeout"]), seconds(checks[0]["interval"]))


class FlyTomlLiveTest(unittest.TestCase):
    """The release command, health check and metrics scrape against the real
    binary, started with fly.toml's [env] (addresses moved to loopback)."""

    @classmethod
    def setUpClass(cls):
        cls.fly = load_fly()
        cls.pg = PostgresCluster()
        cls.addClassCleanup(cls.pg.destroy)
        env = {k: str(v) for k, v in cls.fly.get("env", {}).items()}
        env.update(
            {
                "PORTAL_LISTEN": "127.0.0.1:0",
                "PORTAL_METRICS_LISTEN": "127.0.0.1:0",
                "PORTAL_DATA_DIR": None,  # the harness's temporary one
                "SECRET_KEY_BASE": FAKE_SECRETS["SECRET_KEY_BASE"],
                "PORTAL_DB_ALLOW_INSECURE": "1",  # the throwaway cluster has no TLS
            }
        )
        cls.portal = Portal(cls.pg.url, env=env)
        cls.addClassCleanup(cls.portal.cleanup)

    def test_release_command_then_checks(self):
        words = shlex.split(self.fly["deploy"]["release_command"])
        self.assertEqual(words[0], "upload-portal")
        self.portal.run_ok(*words[1:])
        self.assertEqual(self.pg.psql("select count(*) > 0 from schema_migrations"), "t")

        self.portal.start()
        check = self.fly["http_service"]["checks"][0]
        # Fly's checks reach the machine directly; through the proxy a plain
        # http request carries X-Forwarded-Proto: http and must not be
        # redirected either, or force_https would fail the check.
        for headers in ({}, {"X-Forwarded-Proto": "http"}):
            status, _, body = self.portal.request(check.get("method", "GET"), check["path"], headers=headers)
            self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}), headers)

        metrics_port = next(e["port"] for e in self.portal.logs if e.get("msg") == "metrics listening")
        conn = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=10)
        try:
            conn.request("GET", self.fly["metrics"]["path"])
            resp = conn.getresponse()
            body = resp.read().decode()
        finally:
            conn.close()
        self.assertEqual(resp.status, 200)
        self.assertIn("portal_uploads_active", body)

        # ... and not on the public port (SPEC §7: admin only there).
        status, _, _ = self.portal.request("GET", self.fly["metrics"]["path"])
        self.assertIn(status, (401, 404))
        self.assertEqual(self.portal.terminate(), 0)


if __name__ == "__main__":
    unittest.main()

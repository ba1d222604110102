"""Integration tests: the database subcommands and configuration rules of the
real binary against a real PostgreSQL 15 cluster (SPEC §2, §3).

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_migrate        (from tests/integration)
"""

import glob
import json
import os
import re
import secrets
import subprocess
import unittest

from portal_harness import Portal, PostgresCluster, token_secret, wait_until

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "db", "migrations")


def expected_versions():
    """The NNNN prefixes of db/migrations/*.sql, the binary embeds them all."""
    versions = []
    for path in glob.glob(os.path.join(MIGRATIONS_DIR, "*.sql")):
        m = re.match(r"^(\d+)_", os.path.basename(path))
        if m:
            versions.append(int(m.group(1)))
    return sorted(versions)


def project_version():
    """The VERSION in the top-level CMakeLists.txt's project()."""
    with open(os.path.join(MIGRATIONS_DIR, "..", "..", "CMakeLists.txt")) as f:
        m = re.search(r"project\(\S+\s+VERSION\s+([0-9.]+)", f.read())
    return m.group(1)


def one_line(text):
    """True when text is exactly one non-empty line (a trailing newline is fine)."""
    stripped = text.rstrip("\n")
    return bool(stripped.strip()) and "\n" not in stripped


class MigrateTest(unittest.TestCase):
    """`migrate` on fresh databases: idempotent and safe when run concurrently."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresCluster()
        cls.addClassCleanup(cls.pg.destroy)
        cls.versions = expected_versions()
        cls.counter = 0

    def fresh_database(self):
        type(self).counter += 1
        return self.pg.create_database(f"m{type(self).counter}")

    def portal(self, url):
        p = Portal(url)
        self.addCleanup(p.cleanup)
        return p

    def recorded(self, url):
        database = url.rsplit("/", 1)[1]
        out = self.pg.psql("select version from schema_migrations order by version", database=database)
        return [int(v) for v in out.split()] if out else []

    def test_migrations_exist(self):
        self.assertTrue(self.versions, f"no db/migrations/NNNN_*.sql in {MIGRATIONS_DIR}")

    def test_migrate_empty_database_then_again(self):
        url = self.fresh_database()
        p = self.portal(url)

        first = p.run_cli("migrate")
        self.assertEqual(first.returncode, 0, f"stdout: {first.stdout}\nstderr: {first.stderr}")
        self.assertEqual(self.recorded(url), self.versions)
        # the schema really is there
        database = url.rsplit("/", 1)[1]
        self.assertEqual(
            self.pg.psql("select count(*) from users", database=database), "0"
        )
        applied_at = self.pg.psql("select * from schema_migrations order by version", database=database)

        second = p.run_cli("migrate")
        self.assertEqual(second.returncode, 0, f"stdout: {second.stdout}\nstderr: {second.stderr}")
        self.assertEqual(self.recorded(url), self.versions)
        # nothing was re-applied: every row (with its timestamps) unchanged
        self.assertEqual(
            self.pg.psql("select * from schema_migrations order by version", database=database),
            applied_at,
        )

    def test_a_database_behind_the_server_is_not_ready_until_migrated(self):
        # A binary started before `migrate` ran (a deploy without its release
        # command): its statements may call what only its newest migration
        # makes (0005: the identity lookups), so it is not ready, and says
        # what to run, until the database catches up; no restart needed.
        url = self.fresh_database()
        database = url.rsplit("/", 1)[1]
        p = self.portal(url)
        p.migrate()
        latest, before = self.versions[-1], self.versions[-2]
        name, checksum = self.pg.psql(
            f"select name, checksum from schema_migrations where version = {latest}",
            database=database).split("|")
        self.pg.psql(f"delete from schema_migrations where version = {latest}", database=database)
        p.start(wait="listening")

        def ready():
            status, _, body = p.request("GET", "/ready")
            return status, json.loads(body)["checks"]["database"]

        expected = (503, f"database schema at version {before}, this server needs {latest}: "
                         "run upload-portal migrate")
        wait_until(lambda: ready() == expected, 20, message=f"/ready answering {expected}")
        logged = [e for e in p.logs if e.get("msg") == "the database schema is behind this server: "
                                                      "run upload-portal migrate"]
        self.assertEqual([(e["schema_version"], e["needs"]) for e in logged], [(before, latest)])

        # What `migrate` records (its schema change is still there).
        self.pg.psql("insert into schema_migrations (version, name, checksum) "
                     f"values ({latest}, '{name}', '{checksum}')", database=database)
        wait_until(lambda: ready() == (200, "ok"), 20, message="/ready answering 200")

    def test_a_database_never_migrated_is_not_ready_and_says_so(self):
        # The first deploy's server started before its first `migrate`: no
        # schema_migrations at all is version 0, not a failing statement
        # (review 10: "database error" and an error line per probe).
        url = self.fresh_database()
        p = self.portal(url)
        p.start(wait="listening")
        expected = (503, f"database schema at version 0, this server needs {self.versions[-1]}: "
                         "run upload-portal migrate")

        def ready():
            status, _, body = p.request("GET", "/ready")
            return status, json.loads(body)["checks"]["database"]

        for _ in range(3):
            wait_until(lambda: ready() == expected, 20, message=f"/ready answering {expected}")
        self.assertEqual([e.get("schema_version") for e in p.logs if e.get("msg") ==
                          "the database schema is behind this server: run upload-portal migrate"], [0])
        self.assertEqual([e for e in p.logs if e.get("msg") == "database request failed"
                          and e.get("request") == "schema_version"], [])

    def test_concurrent_migrate_runs(self):
        for round_ in range(3):
            with self.subTest(round=round_):
                url = self.fresh_database()
                p = self.portal(url)
                env = dict(p.env)
                procs = [
                    subprocess.Popen(
                        [p.binary, "migrate"],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        cwd=p.tmp,
                    )
                    for _ in range(2)
                ]
                outputs = []
                for proc in procs:
                    try:
                        out, err = proc.communicate(timeout=60)
                    except subprocess.TimeoutExpired:
                        for q in procs:
                            q.kill()
                        self.fail("concurrent migrate did not finish within 60 s")
                    outputs.append((proc.returncode, out, err))
                for code, out, err in outputs:
                    self.assertEqual(code, 0, f"stdout: {out}\nstderr: {err}")
                # each migration recorded exactly once
                self.assertEqual(self.recorded(url), self.versions)

    def test_migrate_without_database_url(self):
        p = self.portal(None)
        result = p.run_cli("migrate")
        self.assertNotEqual(result.returncode, 0)
        self.assertTrue(one_line(result.stderr), repr(result.stderr))
        self.assertIn("DATABASE_URL", result.stderr)

    def test_migrate_missing_database(self):
        # the database does not exist: a clear one-line failure, not a hang
        p = self.portal(f"postgresql://portal@127.0.0.1:{self.pg.port}/does_not_exist")
        result = p.run_cli("migrate", timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertTrue(one_line(result.stderr), repr(result.stderr))


class UsersAndTokensTest(unittest.TestCase):
    """`user add` and `token create` on a migrated database."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresCluster()
        cls.addClassCleanup(cls.pg.destroy)
        cls.p = Portal(cls.pg.url)
        cls.addClassCleanup(cls.p.cleanup)
        cls.p.migrate()

    def test_user_add_twice_fails_second_time(self):
        first = self.p.run_cli("user", "add", "alice")
        self.assertEqual(first.returncode, 0, first.stderr)
        second = self.p.run_cli("user", "add", "alice")
        self.assertNotEqual(second.returncode, 0)
        self.assertTrue(one_line(second.stderr), f"want one line on stderr, got {second.stderr!r}")
        self.assertEqual(self.pg.psql("select count(*) from users where username = 'alice'"), "1")

    def test_user_add_roles(self):
        self.assertEqual(self.p.run_cli("user", "add", "carol").returncode, 0)
        self.assertEqual(self.p.run_cli("user", "add", "dave", "--role", "admin").returncode, 0)
        self.assertEqual(self.pg.psql("select role from users where username = 'carol'"), "uploader")
        self.assertEqual(self.pg.psql("select role from users where username = 'dave'"), "admin")
        bad = self.p.run_cli("user", "add", "erin", "--role", "root")
        self.assertNotEqual(bad.returncode, 0)
        self.assertTrue(one_line(bad.stderr), repr(bad.stderr))
        self.assertEqual(self.pg.psql("select count(*) from users where username = 'erin'"), "0")

    def test_user_add_password_is_hashed(self):
        password = "correct horse battery " + secrets.token_hex(8)
        result = self.p.run_cli("user", "add", "frank", "--password-stdin", input=password + "\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn(password, self.pg.dump())
        self.assertTrue(
            self.pg.psql("select password_hash from users where username = 'frank'").startswith("$argon2id$")
        )

    def test_token_create_prints_token_alone_on_last_line(self):
        self.assertEqual(self.p.run_cli("user", "add", "bob").returncode, 0)
        result = self.p.run_cli("token", "create", "--user", "bob")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.endswith("\n"), repr(result.stdout))
        last = result.stdout.rstrip("\n").split("\n")[-1]
        self.assertRegex(last, r"^[A-Za-z0-9._~+/=-]{20,}$", f"last line is not a bare token: {last!r}")
        # only a hash is stored
        dump = self.pg.dump()
        self.assertNotIn(last, dump)
        self.assertNotIn(token_secret(last), dump)
        # two tokens differ
        again = self.p.run_cli("token", "create", "--user", "bob")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertNotEqual(again.stdout.rstrip("\n").split("\n")[-1], last)

    def test_token_create_unknown_user(self):
        result = self.p.run_cli("token", "create", "--user", "nobody")
        self.assertNotEqual(result.returncode, 0)
        self.assertTrue(one_line(result.stderr), repr(result.stderr))
        self.assertEqual(result.stdout.strip(), "")


class ConfigRulesTest(unittest.TestCase):
    """check-config redaction and the production refusals of `serve` (SPEC §3)."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresCluster()
        cls.addClassCleanup(cls.pg.destroy)
        # a password in the URL: trust auth ignores it, so the URL still works
        cls.password = "pw" + secrets.token_hex(12)
        cls.secret_url = f"postgresql://portal:{cls.password}@127.0.0.1:{cls.pg.port}/portal"
        cls.secret_key = "skb" + secrets.token_hex(40)  # 83 chars
        migrator = Portal(cls.pg.url)
        cls.addClassCleanup(migrator.cleanup)
        migrator.migrate()

    def server(self, env):
        p = Portal(env.pop("DATABASE_URL", self.pg.url), env=env)
        self.addCleanup(p.cleanup)
        return p

    def wait_refused(self, p, timeout=20):
        """Starts serve expecting it to refuse: returns (exit code, all output)."""
        p.start(wait=False)
        code = p.wait_exit(timeout)
        if code is None:
            p.kill()
            self.fail(f"serve did not refuse to start within {timeout}s:\n{p.output_tail()}")
        return code, p.output()

    def test_check_config_redacts_secrets(self):
        p = self.server({"DATABASE_URL": self.secret_url, "SECRET_KEY_BASE": self.secret_key})
        result = p.run_cli("check-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.strip(), "check-config printed no configuration")
        everything = result.stdout + result.stderr
        self.assertNotIn(self.password, everything)
        self.assertNotIn(self.secret_key, everything)
        self.assertNotIn(self.secret_key[:32], everything)

    def test_check_config_production_redacts_secrets(self):
        p = self.server(
            {
                "DATABASE_URL": self.secret_url + "?sslmode=verify-full",
                "SECRET_KEY_BASE": self.secret_key,
                "PORTAL_ENV": "production",
            }
        )
        result = p.run_cli("check-config")
        everything = result.stdout + result.stderr
        self.assertNotIn(self.password, everything)
        self.assertNotIn(self.secret_key, everything)

    def test_check_config_rejects_bad_values(self):
        p = self.server({"PORTAL_MAX_UPLOAD_BYTES": "lots", "PORTAL_ENV": "staging"})
        result = p.run_cli("check-config")
        self.assertNotEqual(result.returncode, 0)
        self.assertTrue(result.stderr.strip(), "no reason given on stderr")

    def test_production_without_secret_key_base_refuses(self):
        p = self.server({"PORTAL_ENV": "production", "PORTAL_DB_ALLOW_INSECURE": "1"})
        code, output = self.wait_refused(p)
        self.assertNotEqual(code, 0)
        self.assertIn("SECRET_KEY_BASE", output)
        self.assertIsNone(p.port)

    def test_production_with_short_secret_key_base_refuses(self):
        short = "s" * 40
        p = self.server(
            {"PORTAL_ENV": "production", "PORTAL_DB_ALLOW_INSECURE": "1", "SECRET_KEY_BASE": short}
        )
        code, output = self.wait_refused(p)
        self.assertNotEqual(code, 0)
        self.assertIn("SECRET_KEY_BASE", output)
        self.assertNotIn(short, output)

    def test_production_without_verified_tls_refuses(self):
        for suffix in ("", "?sslmode=require", "?sslmode=disable"):
            with self.subTest(url_suffix=suffix):
                p = self.server(
                    {
                        "PORTAL_ENV": "production",
                        "SECRET_KEY_BASE": self.secret_key,
                        "DATABASE_URL": self.secret_url + suffix,
                    }
                )
                code, output = self.wait_refused(p)
                self.assertNotEqual(code, 0)
                self.assertIn("sslmode", output)
                self.assertNotIn(self.password, output)
                self.assertNotIn(self.secret_key, output)

    def test_production_insecure_database_allowed_with_warning(self):
        p = self.server(
            {
                "PORTAL_ENV": "production",
                "SECRET_KEY_BASE": self.secret_key,
                "DATABASE_URL": self.secret_url,
                "PORTAL_DB_ALLOW_INSECURE": "1",
            }
        )
        p.start()
        warnings = [
            entry for entry in p.logs
            if entry.get("level") == "warn" and "insecure" in json_text(entry).lower()
        ]
        self.assertTrue(warnings, f"no warn line containing 'insecure':\n{p.output_tail()}")
        status, headers, body = p.request("GET", "/health")
        self.assertEqual(status, 200)
        # production: HSTS on every response (SPEC §8)
        self.assertIsNotNone(headers.get("Strict-Transport-Security"), dict(headers))
        self.assertEqual(p.terminate(), 0)
        output = p.output()
        self.assertNotIn(self.password, output)
        self.assertNotIn(self.secret_key, output)


def json_text(entry):
    return json.dumps(entry)


class SubcommandsTest(unittest.TestCase):
    """Subcommands that need no database."""

    def setUp(self):
        self.p = Portal(None)
        self.addCleanup(self.p.cleanup)

    def test_backup_without_a_database(self):
        # The backup drills are tests/e2e/test_backup_restore.py.
        result = self.p.run_cli("backup", "x.tar.zst")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr, "upload-portal: DATABASE_URL is not set\n")
        self.assertEqual([f for f in os.listdir(self.p.tmp) if f.startswith("x.tar.zst")], [])

    def test_unknown_subcommand(self):
        result = self.p.run_cli("frobnicate")
        self.assertNotEqual(result.returncode, 0)
        self.assertTrue(result.stderr.strip(), "no reason on stderr")

    def test_version(self):
        result = self.p.run_cli("version")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(project_version(), result.stdout)


if __name__ == "__main__":
    unittest.main()

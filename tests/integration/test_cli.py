"""Integration tests of the command line itself (SPEC §2, issue 11 §7), on the
real binary: a malformed command line is ONE line on stderr naming the
problem and pointing at --help, exit 2, for the program and for every
subcommand; the usage goes to stdout only when asked for (--help, help);
`version` names the linked libraries; `check-config` in production redacts
every secret; `--config FILE` is honoured; `migrate` goes to
DATABASE_DIRECT_URL when it is set, while the other commands keep
DATABASE_URL.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_cli        (from tests/integration)
"""

import os
import re
import secrets
import shutil
import subprocess
import unittest

from portal_harness import Portal, PostgresCluster, free_port

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CliChecks:
    def portal(self, database_url=None, env=None):
        p = Portal(database_url, env=env)
        self.addCleanup(p.cleanup)
        return p

    def one_line_error(self, result, code, context, contains=()):
        """Exit `code`, nothing on stdout, exactly one line on stderr
        starting with "upload-portal: ". Returns the line."""
        self.assertEqual(result.returncode, code,
                         f"{context}: stdout {result.stdout!r} stderr {result.stderr!r}")
        self.assertEqual(result.stdout, "", context)
        self.assertTrue(result.stderr.endswith("\n"), f"{context}: {result.stderr!r}")
        lines = result.stderr[:-1].split("\n")
        self.assertEqual(len(lines), 1, f"{context}: stderr is not one line: {result.stderr!r}")
        self.assertTrue(lines[0].startswith("upload-portal: "), f"{context}: {lines[0]!r}")
        for text in contains:
            self.assertIn(text, lines[0], context)
        return lines[0]

    def usage_error(self, p, args, names, help_of=None):
        """A malformed command line: exit 2, one line naming `names` and
        pointing at the right --help."""
        result = p.run_cli(*args)
        line = self.one_line_error(result, EXIT_USAGE, f"upload-portal {args!r}", contains=names)
        where = "upload-portal --help" if help_of is None else f"upload-portal {help_of} --help"
        self.assertTrue(line.endswith(f"(see {where})"), f"{args!r}: {line!r}")
        return line

    def usage_on_stdout(self, p, args, first_line_contains):
        result = p.run_cli(*args)
        context = f"upload-portal {args!r}"
        self.assertEqual(result.returncode, EXIT_OK, f"{context}: {result.stderr!r}")
        self.assertEqual(result.stderr, "", context)
        self.assertTrue(result.stdout.startswith("usage: upload-portal"), f"{context}: {result.stdout!r}")
        self.assertIn(first_line_contains, result.stdout.split("\n")[0], context)
        return result.stdout


class CommandLineTest(unittest.TestCase, CliChecks):
    """Everything that needs no database: nothing here may reach one, so the
    configuration points at a port where nothing listens."""

    def setUp(self):
        self.p = self.portal(f"postgresql://portal@127.0.0.1:{free_port()}/portal")

    def test_unknown_command(self):
        for word in ("frobnicate", "users", "Serve", "help-me", "backups"):
            with self.subTest(word=word):
                self.usage_error(self.p, [word], ["unknown command " + word])
        # after --config too
        self.usage_error(self.p, ["--config", "x.toml", "frobnicate"], ["unknown command frobnicate"])

    def test_no_command(self):
        self.usage_error(self.p, [], ["missing command"])
        self.usage_error(self.p, ["--config", "x.toml"], ["missing command"])

    def test_unknown_program_option(self):
        for option in ("--frob", "--conf", "-x", "-", "--verbose", "--config-file=x"):
            with self.subTest(option=option):
                self.usage_error(self.p, [option, "version"], ["unknown option " + option.split("=")[0]])
        self.usage_error(self.p, ["--config"], ["--config needs a FILE"])
        self.usage_error(self.p, ["--config", "a.toml", "--config", "b.toml", "version"],
                         ["--config given twice"])

    def test_unknown_option_of_each_command(self):
        cases = {
            "serve": ["serve", "--port", "8080"],
            "migrate": ["migrate", "--dry-run"],
            "check-config": ["check-config", "--verbose"],
            "version": ["version", "--short"],
            "user": ["user", "add", "alice", "--colour", "blue"],
            "token": ["token", "list", "--all"],
        }
        for command, args in cases.items():
            with self.subTest(command=command):
                option = next(a for a in args if a.startswith("--"))
                self.usage_error(self.p, args, ["unknown option " + option], help_of=command)
        # a switch given a value, an option of another subcommand
        self.usage_error(self.p, ["user", "add", "alice", "--password-stdin=yes"],
                         ["--password-stdin takes no value"], help_of="user")
        self.usage_error(self.p, ["token", "revoke", "--name", "x"], ["unknown option --name"],
                         help_of="token")

    def test_extra_arguments_are_refused_not_ignored(self):
        for args in (["serve", "now"], ["migrate", "all"], ["check-config", "portal.toml"],
                     ["version", "--", "x"], ["user", "list", "extra"]):
            with self.subTest(args=args):
                command = args[0]
                self.usage_error(self.p, args, ["unexpected argument"], help_of=command)

    def test_unknown_subcommand(self):
        for command in ("user", "token"):
            with self.subTest(command=command):
                self.usage_error(self.p, [command, "frob"], ["unknown subcommand frob"], help_of=command)
                self.usage_error(self.p, [command], ["missing subcommand"], help_of=command)
                self.usage_error(self.p, [command, "--frob"], ["unknown option --frob"],
                                 help_of=command)

    def test_a_malformed_command_line_goes_before_the_configuration(self):
        broken = self.portal(env={"PORTAL_MAX_UPLOAD_BYTES": "lots"})
        self.usage_error(broken, ["check-config", "--verbose"], ["unknown option --verbose"],
                         help_of="check-config")
        # and a well-formed one meets the configuration problem: exit 1, one line
        self.one_line_error(broken.run_cli("check-config"), EXIT_FAILURE, "bad value",
                            contains=["PORTAL_MAX_UPLOAD_BYTES"])

    def test_help_goes_to_stdout(self):
        for args in (["--help"], ["-h"], ["help"], ["help", "help"],
                     ["--config", "x.toml", "--help"]):
            with self.subTest(args=args):
                text = self.usage_on_stdout(self.p, args, "[--config FILE] COMMAND")
                for command in ("serve", "migrate", "user add", "token create", "check-config",
                                "version"):
                    self.assertIn(command, text)
        for command, first in (("serve", "serve"), ("migrate", "migrate"),
                               ("check-config", "check-config"), ("version", "version"),
                               ("user", "user add NAME"), ("token", "token create --user NAME")):
            with self.subTest(command=command):
                own = self.usage_on_stdout(self.p, [command, "--help"], first)
                self.assertEqual(self.usage_on_stdout(self.p, ["help", command], first), own)
        # --help anywhere among a subcommand's options, even after a bad one's place
        self.usage_on_stdout(self.p, ["user", "add", "alice", "--help"], "user add NAME")
        self.usage_on_stdout(self.p, ["token", "help"], "token create")
        # after "--" it is an argument, not a request for help
        self.usage_error(self.p, ["version", "--", "--help"], ["unexpected argument --help"],
                         help_of="version")

    def test_version_names_the_linked_libraries(self):
        result = self.p.run_cli("version")
        self.assertEqual((result.returncode, result.stderr), (EXIT_OK, ""))
        for alias in ("--version", "-V"):
            with self.subTest(alias=alias):
                self.assertEqual(self.p.run_cli(alias).stdout, result.stdout)
        lines = dict(line.split(" ", 1) for line in result.stdout.strip().split("\n"))
        version = re.compile(r"^\d+\.\d+(\.\d+)?")
        for library in ("upload-portal", "caf", "boost", "libpqxx", "libarchive", "zstd",
                        "openssl", "libsodium"):
            with self.subTest(library=library):
                self.assertIn(library, lines, result.stdout)
                text = lines[library]
                if library == "libarchive":
                    text = text.removeprefix("libarchive ")
                self.assertRegex(text, version)
        # The numbers are the libraries' own, as their packages state them (libpqxx has
        # no run-time version, and Debian's headers say 6.4.4 in the 6.4.5 package).
        for library, package in (("libsodium", "libsodium"), ("zstd", "libzstd"),
                                 ("libarchive", "libarchive")):
            if shutil.which("pkg-config") is None:
                break
            expected = subprocess.run(["pkg-config", "--modversion", package], capture_output=True,
                                      text=True).stdout.strip()
            if expected:
                with self.subTest(package=package):
                    self.assertIn(expected, lines[library])


class ConfigFileTest(unittest.TestCase, CliChecks):
    """check-config in production, and --config FILE."""

    def setUp(self):
        self.db_password = "dbpw" + secrets.token_hex(12)
        self.direct_password = "direct" + secrets.token_hex(12)
        self.secret_key = "skb" + secrets.token_hex(40)
        self.url = (f"postgresql://portal:{self.db_password}@db.internal:5432/portal"
                    "?sslmode=verify-full")
        self.direct_url = (f"host=db-direct.internal user=portal password={self.direct_password}"
                           " sslmode=verify-ca")

    def secrets_absent(self, text):
        for secret in (self.db_password, self.direct_password, self.secret_key,
                       self.secret_key[:24], self.secret_key[-24:]):
            self.assertNotIn(secret, text)

    def test_check_config_in_production_redacts_every_secret(self):
        p = self.portal(self.url, env={"PORTAL_ENV": "production",
                                       "SECRET_KEY_BASE": self.secret_key,
                                       "DATABASE_DIRECT_URL": self.direct_url})
        result = p.run_cli("check-config")
        self.assertEqual((result.returncode, result.stderr), (EXIT_OK, ""))
        self.secrets_absent(result.stdout)
        out = result.stdout
        self.assertIn("env = 'production'", out)
        self.assertIn("secret_key_base = '[redacted]'", out)
        self.assertIn("password=[redacted]", out)
        self.assertIn("host=db.internal", out)      # the rest is still shown
        self.assertIn("sslmode=verify-full", out)
        self.assertIn("host=db-direct.internal", out)
        self.assertEqual(out.count("[redacted]"), 3, out)

    def test_check_config_in_production_warns_or_refuses_like_serve(self):
        insecure = self.url.replace("verify-full", "require")
        p = self.portal(insecure, env={"PORTAL_ENV": "production", "SECRET_KEY_BASE": self.secret_key,
                                       "PORTAL_DB_ALLOW_INSECURE": "1"})
        result = p.run_cli("check-config")
        self.assertEqual(result.returncode, EXIT_OK, result.stderr)
        warnings = result.stderr.rstrip("\n").split("\n")
        self.assertEqual(len(warnings), 1, result.stderr)
        self.assertTrue(warnings[0].startswith("warning: DATABASE_URL has sslmode=require"), warnings)
        self.secrets_absent(result.stdout + result.stderr)
        # Without the secret: refused, one line, nothing printed.
        p = self.portal(self.url, env={"PORTAL_ENV": "production"})
        line = self.one_line_error(p.run_cli("check-config"), EXIT_FAILURE, "no SECRET_KEY_BASE",
                                   contains=["SECRET_KEY_BASE is required"])
        self.secrets_absent(line)

    def write(self, name, text):
        p = self.portal()
        path = os.path.join(p.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_config_file_is_honoured_and_the_environment_wins(self):
        path = self.write("portal.toml", f"""
listen = "127.0.0.1:9999"
secret_key_base = "{self.secret_key}"
[database]
url = "{self.url}"
[limits]
max_upload_bytes = 12345
chunk_bytes = 4096
""")
        p = self.portal(env={"PORTAL_CHUNK_BYTES": "8192", "PORTAL_LISTEN": None})
        for args in (["--config", path, "check-config"], [f"--config={path}", "check-config"]):
            with self.subTest(args=args):
                result = p.run_cli(*args)
                self.assertEqual((result.returncode, result.stderr), (EXIT_OK, ""))
                self.assertIn("listen = '127.0.0.1:9999'", result.stdout)
                self.assertIn("max_upload_bytes = 12345", result.stdout)
                self.assertIn("chunk_bytes = 8192", result.stdout)  # the environment wins
                self.assertIn("host=db.internal", result.stdout)
                self.secrets_absent(result.stdout)
        # Without --config the file is not read.
        result = p.run_cli("check-config", env={"DATABASE_URL": "host=elsewhere"})
        self.assertEqual(result.returncode, EXIT_OK, result.stderr)
        self.assertIn("listen = '127.0.0.1:8080'", result.stdout)
        self.assertNotIn("12345", result.stdout)

    def test_config_file_problems_are_one_line(self):
        missing = os.path.join(self.portal().tmp, "nowhere.toml")
        p = self.portal()
        self.one_line_error(p.run_cli("--config", missing, "check-config"), EXIT_FAILURE,
                            "missing file", contains=[missing])
        bad = self.write("bad.toml", "[limits]\nmax_upload_bytes = -1\n")
        self.one_line_error(p.run_cli("--config", bad, "check-config"), EXIT_FAILURE,
                            "negative value", contains=["bad.toml:2", "max_upload_bytes"])
        unknown = self.write("typo.toml", "max_upload_bytes = 1\n")
        self.one_line_error(p.run_cli("--config", unknown, "check-config"), EXIT_FAILURE,
                            "key in the wrong table", contains=["did you mean limits.max_upload_bytes"])


class DatabaseCommandsTest(unittest.TestCase, CliChecks):
    """Which database each command uses (SPEC §3), against a real cluster."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresCluster()
        cls.addClassCleanup(cls.pg.destroy)
        cls.counter = 0

    def fresh_database(self):
        type(self).counter += 1
        return self.pg.create_database(f"cli{type(self).counter}")

    def dead_url(self):
        return f"postgresql://portal@127.0.0.1:{free_port()}/portal"

    def versions(self, url):
        database = url.rsplit("/", 1)[1]
        out = self.pg.psql("select count(*) from schema_migrations", database=database)
        return int(out)

    def test_migrate_uses_database_direct_url_when_set(self):
        direct = self.fresh_database()
        p = self.portal(self.dead_url(), env={"DATABASE_DIRECT_URL": direct})
        result = p.run_cli("migrate")
        self.assertEqual(result.returncode, EXIT_OK, result.stderr)
        self.assertEqual(result.stderr, "")
        self.assertRegex(result.stdout, r"database at version [1-9][0-9]*\n$")
        self.assertGreater(self.versions(direct), 0)
        # The account commands stay on DATABASE_URL (a pooler is fine for them).
        self.one_line_error(p.run_cli("user", "list"), EXIT_FAILURE, "user list on DATABASE_URL",
                            contains=["cannot reach the database"])

    def test_migrate_without_direct_url_uses_database_url(self):
        p = self.portal(self.dead_url())
        self.one_line_error(p.run_cli("migrate"), EXIT_FAILURE, "dead DATABASE_URL",
                            contains=["cannot reach the database"])
        url = self.fresh_database()
        p = self.portal(url)
        self.assertEqual(p.run_cli("migrate").returncode, EXIT_OK)
        self.assertGreater(self.versions(url), 0)

    def test_migrate_without_any_url_is_refused(self):
        p = self.portal()
        self.one_line_error(p.run_cli("migrate"), EXIT_FAILURE, "no URL",
                            contains=["DATABASE_URL is not set"])

    def test_config_file_database_is_used_by_migrate(self):
        url = self.fresh_database()
        p = self.portal()
        path = os.path.join(p.tmp, "portal.toml")
        with open(path, "w") as f:
            f.write(f'[database]\nurl = "{self.dead_url()}"\ndirect_url = "{url}"\n')
        result = p.run_cli("--config", path, "migrate")
        self.assertEqual(result.returncode, EXIT_OK, result.stderr)
        self.assertGreater(self.versions(url), 0)


if __name__ == "__main__":
    unittest.main()

"""End-to-end tests of accounts and API tokens: the `user` and `token`
subcommands (SPEC §2, §11 durations / token list / revoke --all), what the
server makes of their tokens on the very next request (SPEC §4: unknown,
revoked, expired and disabled-user tokens answer 401 + WWW-Authenticate:
Bearer) and the audit rows they leave (SPEC §7, §11 /admin/audit).

The real binary against a real PostgreSQL. Every test makes its own users
(unique names), so the tests do not depend on each other or on their order;
the one that revokes every token of every user gets its own database.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_accounts        (from tests/e2e)
"""

import datetime
import json
import re
import time
import unittest
import uuid

from portal_harness import Portal, PortalTestCase, token_secret, wait_until

TOKEN_RE = re.compile(r"^upt_([A-Za-z0-9_-]{16})_[A-Za-z0-9_-]{43}$")
EXIT_REFUSED = 1  # a refusal: unknown user, duplicate name, ...
EXIT_USAGE = 2    # a malformed command line: invalid name, duration, label
DURATIONS = {"1s": 1, "30s": 30, "15m": 15 * 60, "12h": 12 * 3600, "30d": 30 * 86400}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


class AccountChecks:
    """CLI and HTTP helpers (mixed into a PortalTestCase); `portal` may be
    another server than the class's one."""

    # -- the CLI

    def refused(self, args, code, input=None, portal=None, contains=None):
        """Runs a command that must fail: exact exit code, nothing on stdout,
        exactly one line on stderr. Returns that line."""
        result = (portal or self.portal).run_cli(*args, input=input)
        context = f"upload-portal {args!r}"
        self.assertEqual(result.returncode, code,
                         f"{context}: stdout {result.stdout!r} stderr {result.stderr!r}")
        self.assertEqual(result.stdout, "", context)
        self.assertTrue(result.stderr.endswith("\n"), f"{context}: {result.stderr!r}")
        lines = result.stderr[:-1].split("\n")
        self.assertEqual(len(lines), 1, f"{context}: stderr is not one line: {result.stderr!r}")
        self.assertTrue(lines[0].startswith("upload-portal: "), f"{context}: {lines[0]!r}")
        if contains is not None:
            self.assertIn(contains, lines[0], context)
        return lines[0]

    def add_user(self, name, role=None, password=None, portal=None):
        args = ["user", "add", name]
        if role:
            args += ["--role", role]
        if password is not None:
            args.append("--password-stdin")
        result = (portal or self.portal).run_ok(
            *args, input=None if password is None else password + "\n")
        self.assertEqual(result.stderr, "")
        return result.stdout

    def create_token(self, user, *extra, portal=None):
        """`token create --user USER EXTRA...`; returns (id, token, stdout)."""
        result = (portal or self.portal).run_ok("token", "create", "--user", user, *extra)
        self.assertEqual(result.stderr, "")
        self.assertTrue(result.stdout.endswith("\n"), result.stdout)
        lines = result.stdout[:-1].split("\n")
        token = lines[-1]
        match = TOKEN_RE.match(token)
        self.assertIsNotNone(match, f"last line of stdout is not a token alone: {token!r}")
        token_id = match.group(1)
        # the token appears once, alone on its line; the lines before name it by id
        self.assertEqual(result.stdout.count(token_secret(token)), 1, result.stdout)
        self.assertTrue(lines[0].startswith(f"created token {token_id} for {user}"), lines)
        return token_id, token, result.stdout

    def token_list(self, user=None, portal=None):
        """`token list [--user USER]` parsed: a list of dicts, in printed order."""
        args = ["token", "list"] + (["--user", user] if user else [])
        result = (portal or self.portal).run_ok(*args)
        self.assertEqual(result.stderr, "")
        rows = []
        for line in result.stdout.split("\n")[:-1]:
            fields = line.split("\t")
            self.assertEqual(len(fields), 6, f"token list line {line!r}")
            rows.append(dict(zip(("id", "user", "name", "created", "expires", "state"), fields)))
        self.assertTrue(result.stdout == "" or result.stdout.endswith("\n"))
        return rows, result.stdout

    def token_row(self, token_id, portal=None):
        rows = [r for r in self.token_list(portal=portal)[0] if r["id"] == token_id]
        self.assertEqual(len(rows), 1, f"token {token_id} listed {len(rows)} times")
        return rows[0]

    def users(self, portal=None):
        """`user list` parsed: {name: (id, role, state)}."""
        result = (portal or self.portal).run_ok("user", "list")
        self.assertEqual(result.stderr, "")
        out = {}
        for line in result.stdout.split("\n")[:-1]:
            fields = line.split("\t")
            self.assertEqual(len(fields), 4, f"user list line {line!r}")
            self.assertRegex(fields[0], r"^[1-9][0-9]*$")
            self.assertNotIn(fields[1], out, "a user listed twice")
            out[fields[1]] = (int(fields[0]), fields[2], fields[3])
        return out

    def counts(self, pg=None):
        """Row counts of the tables these commands write."""
        pg = pg or self.pg
        return {table: int(pg.psql(f"select count(*) from {table}"))
                for table in ("users", "api_tokens", "audit_events", "sessions")}

    # -- HTTP

    def auth(self, token):
        return {"Authorization": f"Bearer {token}"}

    def me(self, token, portal=None):
        return (portal or self.portal).request("GET", "/api/v1/me", self.auth(token))

    def assert_works(self, token, username, role="uploader", portal=None):
        status, _, body = self.me(token, portal)
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual((doc["username"], doc["role"]), (username, role))

    def assert_401(self, token, portal=None, context=""):
        status, headers, body = self.me(token, portal)
        self.assertEqual(status, 401, f"{context}: {body[:200]!r}")
        self.assertTrue(headers.get("WWW-Authenticate", "").startswith("Bearer"),
                        f"{context}: WWW-Authenticate {headers.get('WWW-Authenticate')!r}")
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"), context)
        self.assertEqual(json.loads(body)["error"]["code"], "unauthorized", context)

    def is_401(self, token, portal=None):
        return self.me(token, portal)[0] == 401

    def audit(self, limit, token=None, portal=None):
        status, _, body = (portal or self.portal).request(
            "GET", f"/admin/audit?limit={limit}", self.auth(token or self.admin))
        self.assertEqual(status, 200, body)
        events = json.loads(body)["events"]
        for e in events:
            self.assertEqual(set(e), {"time", "event", "user", "ip", "request_id", "detail"}, e)
        times = [e["time"] for e in events]
        self.assertEqual(times, sorted(times, reverse=True), "audit events not newest first")
        return events


class AccountsTest(PortalTestCase, AccountChecks):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_name = unique("acc-admin")
        cls.admin = cls.portal.create_user_and_token(cls.admin_name, "admin")

    # -- user add / list

    def test_user_add_roles_password_and_list(self):
        plain, admin, uploader, pw = (unique("plain"), unique("Admin"), unique("up"),
                                      unique("pw"))
        before = self.counts()
        out = self.add_user(plain)
        self.assertRegex(out, rf"^created user {plain} \(id [0-9]+, uploader, "
                              r"no password: token-only\)\n$")
        self.assertRegex(self.add_user(admin, role="admin"),
                         rf"^created user {admin} \(id [0-9]+, admin, no password: token-only\)\n$")
        self.add_user(uploader, role="uploader")
        password = "correct horse " + uuid.uuid4().hex
        self.assertRegex(self.add_user(pw, password=password),
                         rf"^created user {pw} \(id [0-9]+, uploader\)\n$")
        after = self.counts()
        self.assertEqual(after["users"], before["users"] + 4)
        self.assertEqual(after["audit_events"], before["audit_events"] + 4)
        self.assertEqual(after["api_tokens"], before["api_tokens"])

        listed = self.users()
        self.assertEqual(listed[plain][1:], ("uploader", "enabled"))
        self.assertEqual(listed[admin][1:], ("admin", "enabled"))
        self.assertEqual(listed[uploader][1:], ("uploader", "enabled"))
        self.assertEqual(listed[pw][1:], ("uploader", "enabled"))
        ids = [listed[n][0] for n in (plain, admin, uploader, pw)]
        self.assertEqual(ids, sorted(ids), "user list is not in creation order")
        self.assertIn(self.admin_name, listed)

        # only --password-stdin stores a (hashed) password
        stored = self.pg.psql(f"select username, coalesce(password_hash, 'NULL') from users"
                              f" where username in ('{plain}', '{pw}') order by id")
        rows = dict(line.split("|", 1) for line in stored.splitlines())
        self.assertEqual(rows[plain], "NULL")
        self.assertTrue(rows[pw].startswith("$argon2id$"), rows[pw])
        self.assertNotIn(password, self.pg.dump())

        # the roles are the ones given
        _, admin_token, _ = self.create_token(admin)
        self.assert_works(admin_token, admin, "admin")
        self.assertEqual(len(self.audit(1, token=admin_token)), 1)
        _, up_token, _ = self.create_token(uploader)
        self.assert_works(up_token, uploader)
        status, _, body = self.portal.request("GET", "/admin/audit?limit=1", self.auth(up_token))
        self.assertEqual(status, 403, body)

    def test_user_add_refusals_create_nothing(self):
        name = unique("refused")
        before = self.counts()
        self.refused(["user", "add", name, "--role", "root"], EXIT_USAGE, contains="role")
        self.refused(["user", "add", name, "--role", ""], EXIT_USAGE)
        self.refused(["user", "add", name, "--password-stdin"], EXIT_REFUSED, input="\n",
                     contains="empty password")
        self.refused(["user", "add", name, "--password-stdin"], EXIT_REFUSED, input="")
        self.refused(["user", "add"], EXIT_USAGE)
        self.refused(["user", "add", name, "extra"], EXIT_USAGE)
        self.refused(["user", "add", name, "--colour", "blue"], EXIT_USAGE)
        self.assertEqual(self.counts(), before)
        self.assertNotIn(name, self.users())

    def test_duplicate_names_refused(self):
        name = unique("Dup")
        self.add_user(name, role="admin")
        before = self.counts()
        for again in (name, name.lower(), name.upper(), name.swapcase()):
            for role in ("uploader", "admin"):
                with self.subTest(name=again, role=role):
                    line = self.refused(["user", "add", again, "--role", role], EXIT_REFUSED)
                    self.assertIn("already exists", line)
                    self.assertIn(name, line)  # names the existing user
        self.assertEqual(self.counts(), before)
        listed = [n for n in self.users() if n.lower() == name.lower()]
        self.assertEqual(listed, [name])

    def test_invalid_user_names_refused(self):
        names = {
            "too long": "a" * 65,
            "empty": "",
            "space": "two words",
            "leading space": " lead",
            "unicode": "jürgen",
            "emoji": "user🔑",
            "sql": "a';drop table users;--",
            "sql 2": "x' or '1'='1",
            "quote": 'say"hi',
            "slash": "a/b",
            "newline": "a\nb",
            "carriage return": "a\rb",
            "escape sequence": "a\x1b[31mred",
            "percent": "100%",
            "at": "me@example.com",
        }
        before = self.counts()
        users_before = self.users()
        for what, name in names.items():
            with self.subTest(what=what):
                self.refused(["user", "add", name], EXIT_USAGE, contains="invalid user name")
                self.refused(["user", "disable", name], EXIT_USAGE, contains="invalid user name")
                self.refused(["token", "create", "--user", name], EXIT_USAGE,
                             contains="invalid user name")
                self.refused(["token", "list", "--user", name], EXIT_USAGE)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.users(), users_before)
        # the users table is intact and the limits are where they say
        for name in ("b" * 64, "-dash", "x.y_z-1", "Z"):
            name = name if name != "Z" else unique("Z")
            with self.subTest(accepted=name):
                self.add_user(name)
                self.assertIn(name, self.users())

    # -- token create

    def test_token_create_and_use(self):
        user = unique("tok")
        self.add_user(user)
        before = self.counts()
        token_id, token, stdout = self.create_token(user, "--name", "laptop (ci)")
        self.assertIn("never expires", stdout.split("\n")[0])
        after = self.counts()
        self.assertEqual(after["api_tokens"], before["api_tokens"] + 1)
        self.assertEqual(after["audit_events"], before["audit_events"] + 1)
        self.assertEqual(after["users"], before["users"])
        self.assert_works(token, user)
        row = self.token_row(token_id)
        self.assertEqual((row["user"], row["name"], row["expires"], row["state"]),
                         (user, "laptop (ci)", "never", "active"))
        # --flag=value works too, an empty label is listed as "-"
        token_id2, token2, _ = self.create_token(user, "--name=", "--expires-in=12h")
        self.assertEqual(self.token_row(token_id2)["name"], "-")
        self.assert_works(token2, user)
        self.assertNotEqual(token_secret(token), token_secret(token2))
        # only a hash of the secret is stored
        dump = self.pg.dump()
        self.assertNotIn(token_secret(token), dump)
        self.assertNotIn(token_secret(token2), dump)
        self.assertIn(token_id, dump)

    def test_expires_in_units(self):
        user = unique("units")
        self.add_user(user)
        for text, seconds in DURATIONS.items():
            with self.subTest(duration=text):
                token_id, _, stdout = self.create_token(user, "--expires-in", text)
                row = self.token_row(token_id)
                # the 1 s token may be over by now
                self.assertIn(row["state"], ("active",) if seconds > 1 else ("active", "expired"))
                lifetime = parse_time(row["expires"]) - parse_time(row["created"])
                self.assertEqual(lifetime.total_seconds(), seconds, row)
                self.assertIn(f"expires {row['expires']}", stdout.split("\n")[0])

    def test_invalid_durations_refused(self):
        user = unique("dur")
        self.add_user(user)
        before = self.counts()
        for text in ("0s", "0d", "-5m", "+5m", "5x", "", "5", "s", "1.5h", "5 m", " 5m", "5M",
                     "5w", "10d5h", "1e3s", "99999999999999999999s", "999999999d"):
            with self.subTest(duration=text):
                self.refused(["token", "create", "--user", user, "--expires-in", text],
                             EXIT_USAGE)
        self.refused(["token", "create", "--user", user, "--expires-in"], EXIT_USAGE)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.token_list(user)[0], [])

    def test_invalid_labels_refused(self):
        user = unique("label")
        self.add_user(user)
        before = self.counts()
        labels = {
            "tab": "a\tb",
            "newline": "first\nsecond",
            "carriage return": "a\rb",
            "escape sequence": "\x1b[31mred",
            "bell": "ding\x07",
            "DEL": "a\x7fb",
            "201 characters": "x" * 201,
            "201 two-byte characters": "é" * 201,
            "C1 next line (U+0085)": "a\u0085b",
            "C1 control sequence introducer (U+009B)": "a\u009b31mred",
            "invalid UTF-8": "a\udcffb",  # surrogateescape: the byte 0xff
        }
        for what, label in labels.items():
            with self.subTest(label=what):
                self.refused(["token", "create", "--user", user, "--name", label], EXIT_USAGE,
                             contains="invalid --name")
        self.assertEqual(self.counts(), before)
        # the limit counts characters, not bytes
        for label in ("x" * 200, "é" * 200, "日本語のラベル", "ci: deploy / prod #1 'quoted'"):
            with self.subTest(accepted=label[:20]):
                token_id, token, _ = self.create_token(user, "--name", label)
                self.assertEqual(self.token_row(token_id)["name"], label)
                self.assert_works(token, user)

    def test_token_for_unknown_or_disabled_user_refused(self):
        user, disabled = unique("Known"), unique("gone")
        self.add_user(user)
        self.add_user(disabled)
        self.portal.run_ok("user", "disable", disabled)
        before = self.counts()
        self.refused(["token", "create", "--user", unique("nobody")], EXIT_REFUSED,
                     contains="no user named")
        # names are unique regardless of case, but a lookup is exact (as `user disable`)
        self.refused(["token", "create", "--user", user.lower()], EXIT_REFUSED,
                     contains="no user named")
        self.refused(["token", "create", "--user", disabled], EXIT_REFUSED, contains="disabled")
        self.refused(["token", "create", "--user", disabled, "--expires-in", "30d"],
                     EXIT_REFUSED, contains="disabled")
        self.refused(["token", "create"], EXIT_USAGE, contains="--user")
        self.refused(["token", "create", "--name", "x"], EXIT_USAGE, contains="--user")
        self.refused(["token", "create", "--user", user, "--user", user], EXIT_USAGE)
        self.refused(["token", "create", "--user", user, "stray"], EXIT_USAGE)
        self.assertEqual(self.counts(), before)

    # -- expiry

    def test_expiring_token_stops_working(self):
        user = unique("exp")
        self.add_user(user)
        lifetime = 3
        started = time.monotonic()
        token_id, token, _ = self.create_token(user, "--expires-in", f"{lifetime}s")
        other_id, other, _ = self.create_token(user, "--expires-in", "30d")
        self.assert_works(token, user)
        self.assertEqual(self.token_row(token_id)["state"], "active")
        wait_until(lambda: self.is_401(token), lifetime + 20,
                   message="the expiring token to answer 401")
        # not before its time: expires_at = (a moment after `started`) + lifetime
        self.assertGreaterEqual(time.monotonic() - started, lifetime - 0.2)
        self.assert_401(token, context="expired token")
        self.assertEqual(self.token_row(token_id)["state"], "expired")
        # the other token of the same user is unaffected
        self.assert_works(other, user)
        self.assertEqual(self.token_row(other_id)["state"], "active")

    # -- list and revoke

    def test_token_list(self):
        a, b = unique("list-a"), unique("list-b")
        self.add_user(a)
        self.add_user(b)
        a1, t_a1, _ = self.create_token(a, "--name", "first")
        b1, t_b1, _ = self.create_token(b)
        a2, t_a2, _ = self.create_token(a, "--name", "second", "--expires-in", "15m")
        rows, text = self.token_list(a)
        self.assertEqual([r["id"] for r in rows], [a1, a2])  # oldest first, only a's
        self.assertEqual([(r["user"], r["name"], r["state"]) for r in rows],
                         [(a, "first", "active"), (a, "second", "active")])
        self.assertEqual([r["id"] for r in self.token_list(b)[0]], [b1])
        everyone, all_text = self.token_list()
        ids = [r["id"] for r in everyone]
        for token_id in (a1, a2, b1):
            self.assertEqual(ids.count(token_id), 1)
        self.assertLess(ids.index(a1), ids.index(b1))
        self.assertLess(ids.index(b1), ids.index(a2))
        for token in (t_a1, t_a2, t_b1):
            self.assertNotIn(token_secret(token), text + all_text)
        # unknown users are refused, not an empty list
        self.refused(["token", "list", "--user", unique("nobody")], EXIT_REFUSED,
                     contains="no user named")
        self.refused(["token", "list", "stray"], EXIT_USAGE)
        # a user without tokens: nothing printed
        c = unique("list-c")
        self.add_user(c)
        self.assertEqual(self.token_list(c), ([], ""))

    def test_revoke_one_token(self):
        a, b = unique("rev-a"), unique("rev-b")
        self.add_user(a)
        self.add_user(b)
        a1, t_a1, _ = self.create_token(a)
        a2, t_a2, _ = self.create_token(a)
        b1, t_b1, _ = self.create_token(b)
        for token, user in ((t_a1, a), (t_a2, a), (t_b1, b)):
            self.assert_works(token, user)
        before = self.counts()
        result = self.portal.run_ok("token", "revoke", a1)
        self.assertEqual((result.stdout, result.stderr), (f"revoked token {a1}\n", ""))
        # the very next request: no waiting
        self.assert_401(t_a1, context="revoked token")
        self.assert_works(t_a2, a)
        self.assert_works(t_b1, b)
        self.assert_works(self.admin, self.admin_name, "admin")
        states = {r["id"]: r["state"] for r in self.token_list()[0]}
        self.assertEqual((states[a1], states[a2], states[b1]), ("revoked", "active", "active"))
        after = self.counts()
        self.assertEqual(after["audit_events"], before["audit_events"] + 1)
        self.assertEqual(after["api_tokens"], before["api_tokens"])  # revoked, not deleted

        # again: idempotent, says so, audits nothing
        result = self.portal.run_ok("token", "revoke", a1)
        self.assertEqual(result.stdout, f"already revoked: {a1}\n")
        self.assertEqual(self.counts(), after)
        self.assert_401(t_a1, context="revoked twice")

        # unknown ids; what is not an id is refused without being echoed
        self.refused(["token", "revoke", "AAAAAAAAAAAAAAAA"], EXIT_REFUSED,
                     contains="no token with id AAAAAAAAAAAAAAAA")
        for bad in ("nonexistent", "' or '1'='1", "a" * 17, "AAAAAAAAAAAAAAA\udcff", ""):
            with self.subTest(id=bad):
                self.refused(["token", "revoke", bad], EXIT_REFUSED, contains="not a token id")
        # a whole token pasted instead of its id: its secret must not be printed
        line = self.refused(["token", "revoke", t_a2], EXIT_REFUSED, contains=a2)
        self.assertNotIn(token_secret(t_a2), line)
        self.refused(["token", "revoke"], EXIT_USAGE)
        self.refused(["token", "revoke", a2, b1], EXIT_USAGE)
        self.refused(["token", "revoke", "--user", a, a2], EXIT_USAGE)
        self.assertEqual(self.counts(), after)
        self.assert_works(t_a2, a)
        self.assert_works(t_b1, b)

    def test_revoke_all_of_one_user(self):
        a, b = unique("all-a"), unique("all-b")
        self.add_user(a)
        self.add_user(b)
        a1, t_a1, _ = self.create_token(a)
        a2, t_a2, _ = self.create_token(a, "--expires-in", "30d")
        a3, t_a3, _ = self.create_token(a)
        b1, t_b1, _ = self.create_token(b)
        self.portal.run_ok("token", "revoke", a3)  # already revoked: not counted again
        before = self.counts()
        result = self.portal.run_ok("token", "revoke", "--all", "--user", a)
        self.assertEqual((result.stdout, result.stderr), (f"revoked 2 tokens of {a}\n", ""))
        self.assert_401(t_a1, context="revoked by --all --user")
        self.assert_401(t_a2, context="revoked by --all --user")
        self.assert_works(t_b1, b)
        self.assert_works(self.admin, self.admin_name, "admin")
        self.assertEqual({r["state"] for r in self.token_list(a)[0]}, {"revoked"})
        self.assertEqual([r["state"] for r in self.token_list(b)[0]], ["active"])
        self.assertEqual(self.counts()["audit_events"], before["audit_events"] + 2)
        events = self.audit(2)
        self.assertEqual({e["event"] for e in events}, {"token.revoke"})
        self.assertEqual({e["user"] for e in events}, {"cli"})
        self.assertEqual(sorted(e["detail"]["token_id"] for e in events), sorted([a1, a2]))
        self.assertEqual({e["detail"]["user"] for e in events}, {a})

        after = self.counts()
        result = self.portal.run_ok("token", "revoke", "--all", "--user", a)
        self.assertEqual(result.stdout, f"revoked 0 tokens of {a}\n")
        self.refused(["token", "revoke", "--all", "--user", unique("nobody")], EXIT_REFUSED,
                     contains="no user named")
        self.refused(["token", "revoke", "--all", "--user", "bad name"], EXIT_USAGE)
        self.refused(["token", "revoke", "--all", b1], EXIT_USAGE)
        self.assertEqual(self.counts(), after)
        self.assert_works(t_b1, b)
        # a new token after the incident works
        _, fresh, _ = self.create_token(a)
        self.assert_works(fresh, a)

    def test_revoke_all_of_everyone(self):
        # every token of every user: a database of its own, so the other
        # tests' tokens survive
        url = self.pg.create_database("revoke_all_" + uuid.uuid4().hex[:8])
        portal = Portal(url)
        self.addCleanup(portal.cleanup)
        portal.migrate()
        portal.start()
        boss, a, b = unique("boss"), unique("ev-a"), unique("ev-b")
        self.add_user(boss, role="admin", portal=portal)
        self.add_user(a, portal=portal)
        self.add_user(b, portal=portal)
        tokens = {}
        for user in (boss, a, a, b):
            token_id, token, _ = self.create_token(user, portal=portal)
            tokens[token_id] = (token, user)
            self.assert_works(token, user, "admin" if user == boss else "uploader", portal)

        result = portal.run_ok("token", "revoke", "--all")
        self.assertEqual((result.stdout, result.stderr), ("revoked 4 tokens\n", ""))
        for token_id, (token, user) in tokens.items():
            self.assert_401(token, portal, context=f"{user}'s token after revoke --all")
        rows = self.token_list(portal=portal)[0]
        self.assertEqual(sorted(r["id"] for r in rows), sorted(tokens))
        self.assertEqual({r["state"] for r in rows}, {"revoked"})
        self.assertEqual(portal.run_ok("token", "revoke", "--all").stdout, "revoked 0 tokens\n")

        # the admin gets a new token and reads what happened
        _, new_admin, _ = self.create_token(boss, portal=portal)
        events = self.audit(5, token=new_admin, portal=portal)
        self.assertEqual([e["event"] for e in events], ["token.create"] + ["token.revoke"] * 4)
        revoked = events[1:]
        self.assertEqual(sorted(e["detail"]["token_id"] for e in revoked), sorted(tokens))
        for e in revoked:
            self.assertEqual(e["user"], "cli")
            self.assertEqual(e["detail"]["user"], tokens[e["detail"]["token_id"]][1])
            self.assertIs(e["detail"].get("all"), True)
        self.assertEqual(portal.terminate(), 0)

    # -- user disable

    def test_disable_user(self):
        a, b = unique("dis-a"), unique("dis-b")
        self.add_user(a)
        self.add_user(b)
        a1, t_a1, _ = self.create_token(a)
        a2, t_a2, _ = self.create_token(a, "--expires-in", "30d")
        a3, t_a3, _ = self.create_token(a)
        b1, t_b1, _ = self.create_token(b)
        self.portal.run_ok("token", "revoke", a3)
        for token in (t_a1, t_a2):
            self.assert_works(token, a)
        before = self.counts()
        result = self.portal.run_ok("user", "disable", a)
        self.assertEqual((result.stdout, result.stderr), (f"disabled user {a}\n", ""))
        # the very next request
        self.assert_401(t_a1, context="disabled user's token")
        self.assert_401(t_a2, context="disabled user's expiring token")
        self.assert_401(t_a3, context="disabled user's revoked token")
        self.assert_works(t_b1, b)
        self.assert_works(self.admin, self.admin_name, "admin")
        self.assertEqual(self.users()[a][1:], ("uploader", "disabled"))
        self.assertEqual(self.users()[b][1:], ("uploader", "enabled"))
        states = {r["id"]: r["state"] for r in self.token_list()[0]}
        # revoked wins over user-disabled
        self.assertEqual((states[a1], states[a2], states[a3], states[b1]),
                         ("user-disabled", "user-disabled", "revoked", "active"))
        after = self.counts()
        self.assertEqual(after["audit_events"], before["audit_events"] + 1)
        self.assertEqual((after["users"], after["api_tokens"]),
                         (before["users"], before["api_tokens"]))

        result = self.portal.run_ok("user", "disable", a)
        self.assertEqual(result.stdout, f"already disabled: {a}\n")
        self.refused(["user", "disable", unique("nobody")], EXIT_REFUSED, contains="no user named")
        self.refused(["user", "disable", a.upper()], EXIT_REFUSED, contains="no user named")
        self.refused(["user", "disable"], EXIT_USAGE)
        self.refused(["user", "disable", a, b], EXIT_USAGE)
        self.assertEqual(self.counts(), after)
        self.assert_works(t_b1, b)
        self.assert_401(t_a1, context="disabled twice")
        # revoking a disabled user's tokens still works and is counted
        result = self.portal.run_ok("token", "revoke", "--all", "--user", a)
        self.assertEqual(result.stdout, f"revoked 2 tokens of {a}\n")

    def test_disabled_admin_loses_admin_access(self):
        boss = unique("boss")
        self.add_user(boss, role="admin")
        _, token, _ = self.create_token(boss)
        self.assertEqual(len(self.audit(1, token=token)), 1)
        self.portal.run_ok("user", "disable", boss)
        status, headers, body = self.portal.request("GET", "/admin/audit?limit=1",
                                                    self.auth(token))
        self.assertEqual(status, 401, body)
        self.assertTrue(headers.get("WWW-Authenticate", "").startswith("Bearer"))

    # -- the audit trail

    def test_audit_rows_for_each_event(self):
        user = unique("audited")
        self.add_user(user, password="pw-" + uuid.uuid4().hex)
        token_id, token, _ = self.create_token(user, "--name", "ci", "--expires-in", "15m")
        self.portal.run_ok("token", "revoke", token_id)
        self.portal.run_ok("user", "disable", user)
        events = self.audit(4)
        self.assertEqual([e["event"] for e in events],
                         ["user.disable", "token.revoke", "token.create", "user.create"])
        for e in events:
            self.assertEqual((e["user"], e["ip"], e["request_id"]), ("cli", None, None), e)
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")
        disable, revoke, create, add = events
        self.assertEqual(disable["detail"], {"user": user, "sessions_ended": 0})
        self.assertEqual(revoke["detail"], {"user": user, "token_id": token_id})
        expires = self.token_row(token_id)["expires"]
        self.assertEqual(create["detail"], {"user": user, "token_id": token_id, "name": "ci",
                                            "expires_at": expires})
        self.assertEqual(add["detail"], {"user": user, "role": "uploader", "password": True})
        # reading the audit trail is not itself an event, and refusals leave none
        self.refused(["user", "add", user], EXIT_REFUSED)
        self.refused(["token", "create", "--user", user], EXIT_REFUSED)
        self.refused(["user", "disable", unique("nobody")], EXIT_REFUSED)
        self.refused(["token", "revoke", "AAAAAAAAAAAAAAAA"], EXIT_REFUSED)
        self.assertEqual(self.audit(4), events)
        # a never-expiring token is audited with expires_at null
        other = unique("audited")
        self.add_user(other, role="admin")
        other_id, _, _ = self.create_token(other)
        create, add = self.audit(2)
        self.assertEqual(create["detail"], {"user": other, "token_id": other_id, "name": "",
                                            "expires_at": None})
        self.assertEqual(add["detail"], {"user": other, "role": "admin", "password": False})

    def test_no_secret_in_audit_logs_or_lists(self):
        user = unique("secret")
        password = "hunter2-" + uuid.uuid4().hex
        self.add_user(user, password=password)
        made = [self.create_token(user, *extra)
                for extra in ((), ("--name", "laptop"), ("--expires-in", "12h"))]
        tokens = [t for _, t, _ in made]
        for token in tokens:
            self.assert_works(token, user)
        # used after revocation, and with a wrong secret: neither may be logged
        self.portal.run_ok("token", "revoke", made[0][0])
        self.assert_401(tokens[0])
        forged = tokens[1][:-4] + ("AAAA" if not tokens[1].endswith("AAAA") else "BBBB")
        self.assert_401(forged)
        self.portal.run_ok("token", "revoke", "--all", "--user", user)
        self.portal.run_ok("user", "disable", user)
        self.assert_401(tokens[2])
        secrets = [token_secret(t) for t in tokens + [forged]] + [password]

        events_text = json.dumps(self.audit(1000))
        list_text = self.token_list()[1]
        wait_until(lambda: any(e.get("status") == 401 for e in self.portal.logs), 10,
                   message="the access log of the 401s")
        server_output = self.portal.output()
        dump = self.pg.dump()
        for secret in secrets:
            self.assertNotIn(secret, events_text, "a secret in the audit trail")
            self.assertNotIn(secret, list_text, "a secret in token list")
            self.assertNotIn(secret, server_output, "a secret in the server's output")
            self.assertNotIn(secret, dump, "a secret stored in the database")


if __name__ == "__main__":
    unittest.main()

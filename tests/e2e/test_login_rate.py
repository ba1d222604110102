"""End-to-end tests of the login rate per client address (issue 11 §6): only
FAILED sign-ins count against an address (fail2ban's rule), so a team behind
one NAT or office proxy signs in as often as it likes, while guessing from
one address is cut off after PORTAL_LOGINS_PER_MINUTE failures, even with the
right password. The per-name lockout of SPEC §4 stays as it is
(test_sessions.py), and every failure is still audited.

The server trusts the proxy headers, so each test speaks from its own
documentation address (RFC 5737) through X-Forwarded-For, and one server's
buckets keep the tests apart.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_login_rate        (from tests/e2e)
"""

import concurrent.futures
import itertools
import uuid

from portal_harness import PortalTestCase
from test_sessions import SessionChecks, form

LIMIT = 3
ADDRESS_REFUSAL = b"from this address"
NAME_REFUSAL = b"for this name"
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


class LoginRateTest(PortalTestCase, SessionChecks):
    # The harness's long database deadline (TEST_DB_DEADLINE_MS) keeps
    # Argon2id on a loaded machine from turning a counted failure into an
    # uncounted 503.
    PORTAL_ENV = {"PORTAL_LOGINS_PER_MINUTE": str(LIMIT), "PORTAL_TRUST_PROXY": "1"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin_token = cls.portal.create_user_and_token("rate-admin", "admin")

    def address(self):
        return next(_addresses)

    def attempt(self, address, username, password):
        """POST /login from `address`; returns (status, headers, body)."""
        return self.post_login(username, password, headers={"X-Forwarded-For": address})

    def assert_signed_in(self, answer, context):
        status, headers, body = answer
        self.assertEqual(status, 303, f"{context}: {body[:200]!r}")
        self.assertEqual(headers["Location"], "/", context)
        self.session_cookie(headers)

    def assert_wrong_password(self, answer, context):
        status, headers, body = answer
        self.assertEqual(status, 401, f"{context}: {body[:200]!r}")
        self.assertIsNone(headers.get("Set-Cookie"), context)

    def assert_address_refused(self, answer, context):
        """429 from the address's bucket: Retry-After within the minute, no
        cookie, and the page says why."""
        status, headers, body = answer
        self.assertEqual(status, 429, f"{context}: {body[:200]!r}")
        self.assertTrue(1 <= int(headers["Retry-After"]) <= 60, headers["Retry-After"])
        self.assertIsNone(headers.get("Set-Cookie"), context)
        self.assertIn(ADDRESS_REFUSAL, body, context)

    def failures_audited_from(self, address):
        return [e for e in self.audit_events(self.admin_token, limit=1000)
                if e["event"] == "login.failed" and e["ip"] == address]

    # -- successes do not count

    def test_many_successful_logins_from_one_address_never_get_429(self):
        name, password = self.add_user()
        office = self.address()
        for i in range(4 * LIMIT):
            self.assert_signed_in(self.attempt(office, name, password), f"login {i + 1}")
        # The address's whole budget of failures is still there.
        for i in range(LIMIT):
            self.assert_wrong_password(self.attempt(office, name, "wrong"), f"failure {i + 1}")
        self.assert_address_refused(self.attempt(office, name, password), "after the failures")

    def test_successes_between_failures_do_not_reset_them(self):
        name, password = self.add_user()
        office = self.address()
        for i in range(LIMIT - 1):
            self.assert_wrong_password(self.attempt(office, name, "wrong"), f"failure {i + 1}")
        for i in range(LIMIT + 1):
            self.assert_signed_in(self.attempt(office, name, password), f"login {i + 1}")
        self.assert_wrong_password(self.attempt(office, name, "wrong"), "last failure")
        self.assert_address_refused(self.attempt(office, name, password), "right password")

    # -- failures do

    def test_failures_from_one_address_then_429_even_with_the_right_password(self):
        name, password = self.add_user()
        guesser, colleague = self.address(), self.address()
        # Different names (unknown ones too): the address counts, not the name.
        for i, who in enumerate([name, "nobody-" + uuid.uuid4().hex[:8], name]):
            self.assert_wrong_password(self.attempt(guesser, who, "wrong"), f"failure {i + 1}")
        self.assert_address_refused(self.attempt(guesser, name, password), "right password")
        self.assert_address_refused(self.attempt(guesser, name, "wrong"), "another guess")
        # Another address is unaffected, for the same account.
        self.assert_signed_in(self.attempt(colleague, name, password), "other address")
        # Each failure was audited with its address; the refusals reached no account.
        failures = self.failures_audited_from(guesser)
        self.assertEqual(len(failures), LIMIT, failures)

    def test_answers_of_a_locked_name_count_as_failures(self):
        # Lock a name (5 failures in 15 min, SPEC §4) from addresses of their own.
        name, password = self.add_user()
        for i in range(5):
            self.assert_wrong_password(self.attempt(self.address(), name, "wrong"), f"failure {i + 1}")
        other, other_password = self.add_user()
        prober = self.address()
        for i in range(LIMIT):
            status, _, body = self.attempt(prober, name, password)
            self.assertEqual(status, 429, f"locked name, attempt {i + 1}")
            self.assertIn(NAME_REFUSAL, body)
        self.assert_address_refused(self.attempt(prober, other, other_password), "another account")

    def test_requests_that_are_no_guess_do_not_count(self):
        name, password = self.add_user()
        office = self.address()
        headers = {"X-Forwarded-For": office, "Content-Type": "application/x-www-form-urlencoded"}
        for i in range(2 * LIMIT):
            # no password field, a field twice, not a form, over the size limit
            status, _, _ = self.portal.request("POST", "/login", headers=headers,
                                               body=form(username=name))
            self.assertEqual(status, 400, f"missing password {i + 1}")
            status, _, _ = self.portal.request("POST", "/login", headers=headers,
                                               body=form(username=name, password="x") + b"&password=y")
            self.assertEqual(status, 400, f"password twice {i + 1}")
            status, _, _ = self.portal.request("POST", "/login",
                                               headers=dict(headers, **{"Content-Type": "text/plain"}),
                                               body=b"username=a&password=b")
            self.assertEqual(status, 415, f"not a form {i + 1}")
            status, _, _ = self.portal.request("POST", "/login", headers=headers,
                                               body=form(username=name, password="x" * 5000))
            self.assertEqual(status, 413, f"form too large {i + 1}")
        self.assertEqual(self.failures_audited_from(office), [])
        self.assert_signed_in(self.attempt(office, name, password), "after the malformed forms")

    def test_parallel_guesses_cannot_overshoot(self):
        """An attempt holds its token while its password is checked: of 10
        simultaneous guesses from one address exactly LIMIT reach a password
        check (the bucket refills one token per 20 s)."""
        guesser = self.address()
        names = ["nobody-" + uuid.uuid4().hex[:8] for _ in range(10)]  # no per-name queue
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(lambda name: self.attempt(guesser, name, "wrong"), names))
        statuses = sorted(status for status, _, _ in answers)
        self.assertEqual(statuses, [401] * LIMIT + [429] * (10 - LIMIT))
        self.assertEqual(len(self.failures_audited_from(guesser)), LIMIT)


if __name__ == "__main__":
    import unittest

    unittest.main()

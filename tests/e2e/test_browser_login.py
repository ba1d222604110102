"""End-to-end test of browser sessions in a real browser (SPEC §4, §8, §11):
Debian's headless Chromium, driven by playwright-core (tests/browser), signs
in through the login form, signs out with the page's own script, and is
attacked by pages on other origins, against the real binary and PostgreSQL.

The browser part is tests/browser/login_flow.js, run once for the class; it
prints what it saw as JSON, and the tests here assert on it.

Needs /usr/bin/chromium and tests/browser/node_modules (deploy/install-deps.sh
and `bash deploy/dev.sh test` install both; by hand:
`cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci`).

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_browser_login        (from tests/e2e)
"""

import json
import os
import re
import shutil
import subprocess
import uuid

from portal_harness import PortalTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.normpath(os.path.join(HERE, "..", "browser"))
FLOW = os.path.join(BROWSER_DIR, "login_flow.js")
CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")


def missing_prerequisites():
    missing = []
    if not shutil.which("node"):
        missing.append("node")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        missing.append("tests/browser/node_modules (npm ci)")
    return missing


class BrowserLoginTest(PortalTestCase):
    # The flow signs in three times and fails once: far below any limit, but
    # a shared address must not make the test depend on other tests' logins.
    PORTAL_ENV = {"PORTAL_LOGINS_PER_MINUTE": "1000"}

    @classmethod
    def setUpClass(cls):
        missing = missing_prerequisites()
        if missing:
            # A missing browser is a broken setup, not a reason to skip: CI
            # must not go green without having run this.
            raise AssertionError(
                "browser tests need: " + ", ".join(missing)
                + " (deploy/install-deps.sh, then bash deploy/dev.sh test or npm ci in tests/browser)")
        super().setUpClass()
        cls.username = "u" + uuid.uuid4().hex[:10]
        cls.password = "pw-" + uuid.uuid4().hex
        cls.portal.run_ok("user", "add", cls.username, "--password-stdin", input=cls.password + "\n")
        # The login-CSRF pages sign in as the attacker's own (valid) account.
        cls.attacker = "mallory" + uuid.uuid4().hex[:6]
        cls.attacker_password = "pw-" + uuid.uuid4().hex
        cls.portal.run_ok("user", "add", cls.attacker, "--password-stdin", input=cls.attacker_password + "\n")

        cls.base = cls.flow_base_url()
        config = {
            "base": cls.base,
            "username": cls.username,
            "password": cls.password,
            "wrong_password": cls.password + "-wrong",
            "attacker_username": cls.attacker,
            "attacker_password": cls.attacker_password,
        }
        proc = subprocess.run(
            ["node", FLOW, json.dumps(config)],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if not lines:
            raise AssertionError(
                f"login_flow.js printed no result (exit {proc.returncode}):\n"
                f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}")
        cls.r = json.loads(lines[-1])
        cls.flow_stderr = proc.stderr

    @classmethod
    def flow_base_url(cls):
        """Where the browser finds the portal (a subclass may put a proxy there)."""
        return cls.portal.base_url

    def part(self, key):
        """One part of the flow's results; fails (with the browser's error)
        when the flow broke off before it."""
        if key not in self.r:
            self.fail(f"the browser flow did not get to {key!r}: {json.dumps(self.r.get('errors'), indent=1)}\n"
                      f"steps: {self.r.get('steps')}\n{self.flow_stderr[-2000:]}")
        return self.r[key]

    # -- the cycle

    def test_anonymous_home_redirects_to_login(self):
        home = self.part("anonymous_home")
        self.assertEqual(home["chain"], ["/", "/login"])
        self.assertEqual(home["first_status"], 303)
        self.assertEqual((home["final_status"], home["final_path"]), (200, "/login"))
        self.assertTrue(home["has_form"])

    def test_sign_in_shows_the_user(self):
        s = self.part("sign_in")
        self.assertEqual((s["post_status"], s["post_location"]), (303, "/"))
        self.assertEqual(s["final_path"], "/")
        self.assertEqual(s["shown_username"], self.username)
        self.assertEqual(self.part("login_page_error_text"), "")  # no error on a plain GET /login

    def test_session_cookie_is_httponly_and_samesite_strict(self):
        s = self.part("sign_in")
        self.assertIsNotNone(s["cookie"], "no session cookie after signing in")
        self.assertTrue(s["cookie"]["http_only"])
        self.assertEqual(s["cookie"]["same_site"], "Strict")
        self.assertEqual(s["cookie"]["path"], "/")
        # document.cookie works (the probe shows) yet does not show the session.
        self.assertIn("probe=visible", s["document_cookie"])
        self.assertNotIn("portal_session", s["document_cookie"])
        self.assertNotIn(self.part("cookie_value"), s["document_cookie"])

    def test_no_console_errors_or_csp_violations(self):
        victim = self.part("victim")
        self.assertEqual(self.part("console_errors_on_login_and_home"), [])
        self.assertEqual(self.part("console_errors_on_logout"), [])
        portal_pages = [v for v in victim["csp_violations"] if v["page"].startswith("/")]
        self.assertEqual(portal_pages, [])
        self.assertEqual(victim["page_errors"], [])
        # Stylesheet and scripts came from the portal itself, by their
        # content-hashed names (cached as immutable, so never asked twice).
        static = self.part("static_responses")
        names = set()
        for r in static:
            m = re.fullmatch(r"/static/([a-z.]+)\.[0-9a-f]{12}\.(css|js)", r["url"])
            self.assertIsNotNone(m, r)
            names.add(f"{m.group(1)}.{m.group(2)}")
            self.assertEqual(r["status"], 200, r)
        self.assertEqual(names, {"portal.css", "login.js", "portal.js", "tus.min.js", "upload.js"}, static)

    def test_page_script_runs_under_the_csp_and_inline_script_does_not(self):
        self.assertTrue(self.part("sign_in")["session_js_ran"])
        control = self.part("csp_control")
        self.assertFalse(control["inline_ran"], "an injected inline script ran: the CSP allows it")
        self.assertTrue(control["violations"])
        self.assertTrue(control["violations"][0]["directive"].startswith("script-src"), control)

    def test_sign_out_posts_the_csrf_token_and_ends_the_session(self):
        out = self.part("sign_out")
        self.assertRegex(out["csrf_meta"] or "", r"^[A-Za-z0-9_-]{32,}$")
        self.assertEqual(out["request_csrf_header"], out["csrf_meta"])
        self.assertEqual(out["status"], 303)
        self.assertEqual(out["final_path"], "/login")
        self.assertFalse(out["cookie_left"], "the browser kept the session cookie")
        after = self.part("after_sign_out")
        self.assertEqual(after["chain"], ["/", "/login"])
        self.assertTrue(after["has_form"])
        # The server ended it: the value the browser held is refused outright.
        old = self.part("cookie_value")
        self.assertRegex(old or "", r"^[A-Za-z0-9_-]+$")
        status, _, _ = self.portal.request("GET", "/api/v1/me", headers={"Cookie": f"portal_session={old}"})
        self.assertEqual(status, 401)
        status, headers, _ = self.portal.request("GET", "/", headers={"Cookie": f"portal_session={old}"})
        self.assertEqual((status, headers["Location"]), (303, "/login"))

    def test_wrong_password_shows_the_form_with_an_error(self):
        w = self.part("wrong_password")
        self.assertEqual(w["status"], 401)
        self.assertEqual(w["final_path"], "/login")
        self.assertTrue(w["has_form"])
        self.assertNotEqual(w["error_text"], "")
        self.assertFalse(w["cookie"])

    # -- other origins

    def test_login_csrf_from_other_origins_is_refused(self):
        csrf = self.part("login_csrf")
        for name in ("same_site", "cross_site"):
            with self.subTest(name):
                a = csrf[name]
                self.assertEqual(a["method"], "POST")
                self.assertIsNotNone(a["origin_header"])
                self.assertNotEqual(a["origin_header"], self.base)  # the attack came from elsewhere
                self.assertEqual(a["status"], 403, a)
                self.assertIsNone(a["set_cookie"], a)
        self.assertEqual(csrf["opaque_origin"]["origin_header"], "null")
        self.assertEqual(csrf["opaque_origin"]["status"], 403, csrf["opaque_origin"])
        self.assertIsNone(csrf["opaque_origin"]["set_cookie"])
        self.assertFalse(csrf["cookie_after"], "a foreign page signed the browser in")
        self.assertEqual(csrf["home_after"]["chain"], ["/", "/login"])

    def test_cross_origin_logout_leaves_the_session_alone(self):
        attacks = self.part("attacks_signed_in")
        # The server tells whether the cookie arrived: a POST /logout with a
        # session but no CSRF token is 403, one without a session 303.
        # (For the forms the browser's request headers tell it too; for the
        # no-cors fetch Chromium does not report them, so the status must.)
        # Another port on the same host is the same site: the cookie goes
        # along, and only the missing CSRF token stops the request.
        same = attacks["form_logout_same_site"]
        self.assertTrue(same["cookie_sent"], same)
        self.assertEqual(same["status"], 403, same)
        fetched = attacks["fetch_logout_same_site"]
        self.assertEqual(fetched["status"], 403, fetched)
        # From another site SameSite=Strict keeps the cookie home: the
        # server sees an anonymous request ...
        for name in ("form_logout_cross_site", "fetch_logout_cross_site"):
            with self.subTest(name):
                self.assertEqual(attacks[name]["status"], 303, attacks[name])
        self.assertFalse(attacks["form_logout_cross_site"]["cookie_sent"])
        # ... even for a plain link, where SameSite=Lax would send it.
        link = attacks["link_cross_site"]
        self.assertFalse(link["cookie_sent"], link)
        self.assertEqual(link["status"], 303, link)
        # And the session lives on, in the browser and on the server.
        after = self.part("after_attacks")
        self.assertTrue(after["cookie_unchanged"], after)
        self.assertEqual((after["home_status"], after["final_path"]), (200, "/"))
        self.assertEqual(after["shown_username"], self.username)
        self.assertEqual((after["me_status"], after["me_username"]), (200, self.username))


if __name__ == "__main__":
    import unittest

    unittest.main()

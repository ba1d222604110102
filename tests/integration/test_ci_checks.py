"""CI's security checks (issue 15): deploy/secret-scan.sh and deploy/npm-audit.sh.

    secret-scan.sh catches this project's tokens, private keys, SECRET_KEY_BASE
    values, database passwords and Fly tokens planted in a throwaway
    repository: in the tree, and in the history after the file was deleted;
    a clean repository passes, and so do the look-alikes the project's own
    tests and docs contain;
    npm-audit.sh tells "vulnerable", "clean" and "could not ask" apart (npm
    replaced by a stub that answers as the registry would).

Run: PYTHONPATH=tests/support python3 -m unittest -v test_ci_checks   (from tests/integration)
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCAN = os.path.join(ROOT, "deploy", "secret-scan.sh")
NPM_AUDIT = os.path.join(ROOT, "deploy", "npm-audit.sh")

# Fake secrets, assembled at run time so this file itself holds none.
FAKES = {
    "token": "upt_" + "A1b2C3d4E5f6G7h8" + "_" + "s3cr3t-" * 6 + "x",
    "private key": "-----BEGIN " + "PRIVATE KEY-----",
    "rsa key": "-----BEGIN RSA " + "PRIVATE KEY-----",
    "secret key base": "SECRET_KEY_BASE" + "=" + "f" * 128,
    "database password": "postgresql://portal:" + "hunter2-hunter2" + "@db.internal:5432/portal",
    "libpq password": "host=db user=portal " + "password=" + "hunter2-hunter2",
    "fly token": "FlyV1 fm2_" + "lJPECAAAAAAAAMPf" * 3,
}
# What the project's own tests and docs contain: must not be reported.
LOOK_ALIKES = [
    'token = "upt_" + token_id + "_" + secret',
    "self.add_user(user, password=password)",
    "user=u password=[redacted] dbname=x host=db",
    'postgresql://portal:{cls.password}@127.0.0.1/portal',
    "postgres://u:p@db/x?sslmode=verify-ca",
    '"SECRET_KEY_BASE": "k" * 64,',
]


def git(repo, *args):
    subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True)


def scan(*args):
    return subprocess.run(["bash", SCAN, *args], capture_output=True, text=True, timeout=120)


@unittest.skipUnless(shutil.which("git-secrets"), "git-secrets is not installed")
class SecretScanTest(unittest.TestCase):
    def make_repo(self, files):
        repo = tempfile.mkdtemp(prefix="portal-secrets-")
        self.addCleanup(shutil.rmtree, repo, True)
        git(repo, "init", "-q")
        git(repo, "config", "user.email", "test@example.invalid")
        git(repo, "config", "user.name", "test")
        for name, text in files.items():
            with open(os.path.join(repo, name), "w") as f:
                f.write(text + "\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "first")
        return repo

    def test_a_clean_repository_passes(self):
        repo = self.make_repo({"app.py": "\n".join(LOOK_ALIKES)})
        result = scan("--repo", repo)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("no secrets found", result.stdout)

    def test_each_planted_secret_is_caught_in_the_tree(self):
        for kind, secret in FAKES.items():
            with self.subTest(kind=kind):
                repo = self.make_repo({"config.txt": f"x = 1\n{secret}\n"})
                result = scan("--repo", repo)
                self.assertEqual(result.returncode, 1, f"{kind} not caught:\n{result.stdout}{result.stderr}")
                self.assertIn("config.txt:2:", result.stderr)

    def test_a_secret_deleted_later_is_caught_in_the_history(self):
        repo = self.make_repo({"deploy.env": FAKES["token"]})
        os.unlink(os.path.join(repo, "deploy.env"))
        git(repo, "commit", "-qam", "remove the token again")
        result = scan("--repo", repo)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        first = subprocess.run(["git", "-C", repo, "rev-list", "--max-parents=0", "HEAD"],
                               capture_output=True, text=True, check=True).stdout.strip()
        self.assertIn(f"{first}:deploy.env:1:", result.stderr)

    def test_an_untracked_file_is_scanned(self):
        repo = self.make_repo({"README": "hello"})
        with open(os.path.join(repo, "notes.txt"), "w") as f:
            f.write(FAKES["secret key base"] + "\n")
        result = scan("--repo", repo)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("notes.txt:1:", result.stderr)

    def test_paths_mode_scans_a_directory(self):
        tree = tempfile.mkdtemp(prefix="portal-secrets-fs-")
        self.addCleanup(shutil.rmtree, tree, True)
        os.makedirs(os.path.join(tree, "etc"))
        with open(os.path.join(tree, "etc", "ok.conf"), "w") as f:
            f.write("listen = 0.0.0.0:8080\n")
        self.assertEqual(scan("--paths", tree).returncode, 0)
        with open(os.path.join(tree, "etc", "server.key"), "w") as f:
            f.write(FAKES["private key"] + "\nMIIE...\n")
        result = scan("--paths", tree)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("server.key", result.stderr)


class NpmAuditTest(unittest.TestCase):
    """npm-audit.sh's verdicts, with `npm` replaced by a stub printing what the
    registry would have answered (this machine's registry mirror cannot
    answer audits, so the real endpoint is out of reach here)."""

    def run_with_npm_answer(self, answer):
        bin_dir = tempfile.mkdtemp(prefix="portal-npm-stub-")
        self.addCleanup(shutil.rmtree, bin_dir, True)
        stub = os.path.join(bin_dir, "npm")
        with open(stub, "w") as f:
            f.write("#!/bin/sh\ncat <<'EOF'\n" + answer + "\nEOF\nexit 1\n")
        os.chmod(stub, 0o755)
        env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
        return subprocess.run(["bash", NPM_AUDIT], capture_output=True, text=True, env=env, timeout=60)

    @staticmethod
    def report(**counts):
        v = {k: counts.get(k, 0) for k in ("info", "low", "moderate", "high", "critical")}
        v["total"] = sum(v.values())
        return json.dumps({"auditReportVersion": 2, "vulnerabilities": {}, "metadata": {"vulnerabilities": v}})

    def test_high_or_critical_fails(self):
        for level in ("high", "critical"):
            with self.subTest(level=level):
                result = self.run_with_npm_answer(self.report(**{level: 1}))
                self.assertEqual(result.returncode, 1, result.stdout)
                self.assertIn("FAIL", result.stdout)

    def test_low_and_moderate_pass(self):
        result = self.run_with_npm_answer(self.report(low=2, moderate=1))
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertIn("tests/browser/package-lock.json: ok", result.stdout)

    def test_an_unreachable_advisory_endpoint_is_not_a_pass(self):
        answer = '{"message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk", "statusCode": 405, "error": {"summary": "", "detail": ""}}'
        result = self.run_with_npm_answer(answer)
        self.assertEqual(result.returncode, 3, result.stdout)
        self.assertIn("NOT CHECKED: 405 Method Not Allowed", result.stdout)


if __name__ == "__main__":
    unittest.main()

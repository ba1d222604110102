"""The official tus-js-client (node; tests/tus-client, pinned by its
package-lock.json, the version web/package.json embeds) against the real
server (SPEC §5.2, issue 12): a 64 MiB archive with an abort and a resume;
then a run interrupted by SIGKILLing the server, a restart, and a resume from
the same URL to a correct sha256, with the server's own byte counts (the
access log's bytes_received) proving the durable prefix was not sent again.

Needs node and tests/tus-client/node_modules (`npm ci` there; deploy/dev.sh
test prepares it).

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_tus_client        (from tests/e2e)
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading

import archives as A
from portal_harness import PortalTestCase, wait_until

from upload_checks import NO_RATE_LIMITS, UploadChecks

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.normpath(os.path.join(HERE, "..", "tus-client"))
UPLOAD_JS = os.path.join(CLIENT_DIR, "upload.js")
MiB = 1 << 20


def missing_prerequisites():
    missing = []
    if not shutil.which("node"):
        missing.append("node")
    if not os.path.isdir(os.path.join(CLIENT_DIR, "node_modules", "tus-js-client")):
        missing.append("tests/tus-client/node_modules (npm ci there)")
    return missing


class Client:
    """One `node upload.js` run; its JSON event lines, read as they come."""

    def __init__(self, portal, token, path, *extra):
        self.events = []
        self.proc = subprocess.Popen(
            ["node", UPLOAD_JS, portal.base_url + "/api/v1/tus/", token, path, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "noise", "line": line})

    def event(self, name):
        return next((e for e in self.events if e["event"] == name), None)

    def wait(self, timeout=300):
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code, self.proc.stderr.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


class TusClientTest(PortalTestCase, UploadChecks):
    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        missing = missing_prerequisites()
        if missing:
            # a broken setup, not a reason to skip: CI must not go green without it
            raise AssertionError("tus client tests need: " + ", ".join(missing))
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("tusjs", "uploader")
        cls.tmp = tempfile.mkdtemp(prefix="tus-client-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        # 64 MiB of random tar, gzip level 0: no CPU spent compressing
        cls.archive = A.gzip_bytes(A.random_tar(64 * MiB, seed=131), level=0)
        cls.path = os.path.join(cls.tmp, "big-64.tar.gz")
        with open(cls.path, "wb") as f:
            f.write(cls.archive)
        cls.sha256 = hashlib.sha256(cls.archive).hexdigest()

    def run_client(self, portal, *extra):
        client = Client(portal, self.token, self.path, *extra)
        self.addCleanup(client.kill)
        return client

    def patch_bytes(self, portal):
        """bytes_received of every PATCH in the server's access log."""
        return sum(line.get("bytes_received", 0) for line in portal.logs
                   if line.get("msg") == "request" and line.get("method") == "PATCH")

    def assert_stored(self, portal, url):
        upload_id = url.rsplit("/", 1)[1]
        status, _, obj = portal.get_json(f"/api/v1/uploads/{upload_id}", self.token)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["size"], len(self.archive))
        self.assertEqual(obj["sha256"], self.sha256)
        self.assertFalse(os.path.exists(self.data_path("partials", upload_id + ".part", portal=portal)))

    def test_abort_and_resume(self):
        before = self.patch_bytes(self.portal)
        client = self.run_client(self.portal, "--abort-after", str(24 * MiB))
        code, err = client.wait()
        self.assertEqual(code, 0, f"{client.events} {err}")
        aborted = client.event("aborted")
        self.assertIsNotNone(aborted, client.events)
        url = client.event("success")["url"]
        self.assertEqual(url, aborted["url"])
        self.assert_stored(self.portal, url)
        # The resume sent only what was not durable yet. Sent twice at most:
        # what was between the socket and the disk when the connection broke,
        # the chunk being filled and the credit window's chunks in flight to
        # the session (4 + 1 chunks of 256 KiB by default), never the prefix.
        sent = wait_until(lambda: self.patch_bytes(self.portal) - before, 10)
        self.assertGreaterEqual(sent, len(self.archive))
        self.assertLess(sent, len(self.archive) + 5 * 256 * 1024)

    def test_resume_after_the_server_was_killed(self):
        # a server of its own, on a port it keeps across the restart (the URL
        # the client resumes names it)
        first = self.start_portal(env=dict(NO_RATE_LIMITS))
        port = first.port
        client = self.run_client(first)
        url = wait_until(lambda: client.event("url"), 30, message="the upload's URL")["url"]
        upload_id = url.rsplit("/", 1)[1]
        partial = self.data_path("partials", upload_id + ".part", portal=first)
        wait_until(lambda: os.path.getsize(partial) >= 20 * MiB, 120,
                   message="20 MiB to reach the server")
        first.kill()
        code, _ = client.wait()
        self.assertEqual(code, 1, client.events)  # the client saw the server go

        second = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_LISTEN=f"127.0.0.1:{port}",
                                            PORTAL_DATA_DIR=first.data_dir))
        status, headers, _ = second.request("HEAD", f"/api/v1/tus/{upload_id}",
                                            {"Tus-Resumable": "1.0.0", **self.auth(self.token)})
        self.assertEqual(status, 200)
        offset = int(headers["Upload-Offset"])
        self.assertGreater(offset, 0)
        with open(partial, "rb") as f:
            self.assertEqual(f.read(), self.archive[:offset], "the partial is exactly the prefix")

        client = self.run_client(second, "--resume", url)
        code, err = client.wait()
        self.assertEqual(code, 0, f"{client.events} {err}")
        self.assertEqual(client.event("success")["url"], url)
        self.assert_stored(second, url)
        # the restarted server received exactly what was not durable
        received = wait_until(lambda: self.patch_bytes(second), 10)
        self.assertEqual(received, len(self.archive) - offset)

    def test_resume_of_a_whole_partial_found_at_start(self):
        # A crash between the last fsync and the record leaves every byte in
        # the partial and no upload object. The client resuming it must end
        # with that upload, completed by the server, and send nothing again:
        # a HEAD error other than 423 would make it start a second upload.
        first = self.start_portal(env=dict(NO_RATE_LIMITS))
        name = base64.b64encode(os.path.basename(self.path).encode()).decode()
        status, headers, body = first.request(
            "POST", "/api/v1/tus/", {"Tus-Resumable": "1.0.0", **self.auth(self.token),
                                     "Upload-Length": str(len(self.archive)),
                                     "Upload-Metadata": f"filename {name}"})
        self.assertEqual(status, 201, body)
        url = first.base_url + headers["Location"]
        upload_id = url.rsplit("/", 1)[1]
        self.assertEqual(first.terminate(), 0, first.output_tail())
        with open(self.data_path("partials", upload_id + ".part", portal=first), "wb") as f:
            f.write(self.archive)
        second = self.start_portal(env=dict(NO_RATE_LIMITS, PORTAL_LISTEN=f"127.0.0.1:{first.port}",
                                            PORTAL_DATA_DIR=first.data_dir))
        # retries on, as the web page has them
        client = self.run_client(second, "--resume", url, "--retry-delays", "0,500,1000,2000,4000")
        code, err = client.wait()
        self.assertEqual(code, 0, f"{client.events} {err}")
        self.assertEqual(client.event("success")["url"], url)
        self.assert_stored(second, url)
        self.assertEqual(self.patch_bytes(second), 0)
        self.assertFalse(any(l.get("method") == "POST" for l in second.logs
                             if l.get("msg") == "request"), "no second upload was created")


if __name__ == "__main__":
    import unittest
    unittest.main()

"""tus on several Fly machines (SPEC §5.2, issue 12): two servers on one
database with different FLY_MACHINE_IDs and their own data dirs. Creation
answers carry Portal-Instance; a bodiless request for another machine's
partial is answered 409 wrong_instance with fly-replay: instance=<owner>; a
PATCH that reaches the wrong machine is answered 409 without its body being
read; a machine's start-up reconciliation leaves the other's partials alone.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_tus_machines        (from tests/e2e)
"""

import os

import archives as A
from portal_harness import PortalTestCase

from test_tus_protocol import OFFSET_STREAM, TUS, TusChecks
from upload_checks import NO_RATE_LIMITS, read_to_eof


class TusMachinesTest(PortalTestCase, TusChecks):
    PORTAL_ENV = dict(NO_RATE_LIMITS, FLY_MACHINE_ID="machine-a")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("flyer", "uploader")
        cls.archive = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=151, big=300_000)), level=0)

    def other_machine(self):
        return self.start_portal(env=dict(NO_RATE_LIMITS, FLY_MACHINE_ID="machine-b"))

    def test_instance_rules(self):
        status, headers, body = self.create(self.token, len(self.archive))
        self.assertEqual(status, 201, body)
        self.assertEqual(headers["Portal-Instance"], "machine-a")
        upload_id = headers["Location"].rsplit("/", 1)[1]
        self.assertEqual(self.patch(self.token, upload_id, 0, self.archive[:1000])[0], 204)
        b = self.other_machine()

        # bodiless requests: 409 + fly-replay to the owner
        for method in ("HEAD", "GET", "DELETE"):
            status, headers, body = b.request(method, TUS + upload_id, self.tus_headers(self.token))
            self.assertEqual(status, 409, method)
            self.assertEqual(headers["fly-replay"], "instance=machine-a", method)
            if method != "HEAD":
                self.assert_tus_error(status, headers, body, 409, "wrong_instance", method)
        self.assertEqual(self.tus_rows(upload_id), 1)

        # a PATCH with a body: 409 without reading it, the connection closes
        head = (f"PATCH {TUS}{upload_id} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {self.token}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: 1000\r\nContent-Type: {OFFSET_STREAM}\r\n"
                f"Content-Length: {len(self.archive) - 1000}\r\n\r\n").encode()
        with b.connect() as sock:
            sock.sendall(head)  # the body never goes out
            answer = read_to_eof(sock, 10)
        self.assertTrue(answer.startswith(b"HTTP/1.1 409 "), answer[:200])
        self.assertIn(b'"wrong_instance"', answer)
        self.assertEqual(os.path.getsize(self.partial_path(upload_id)), 1000)

        # machine b's start-up reconciliation left machine a's partial alone
        b.terminate()
        self.start_portal(env=dict(NO_RATE_LIMITS, FLY_MACHINE_ID="machine-b",
                                   PORTAL_DATA_DIR=b.data_dir))
        self.assertEqual(self.tus_rows(upload_id), 1)

        # the owner finishes it
        self.assertEqual(self.offset(self.token, upload_id), 1000)
        status, _, body = self.patch(self.token, upload_id, 1000, self.archive[1000:])
        self.assertEqual(status, 204, body)
        self.assert_completed(self.token, upload_id, self.archive)

    def test_options_anywhere(self):
        b = self.other_machine()
        status, headers, _ = b.request("OPTIONS", TUS + "someid")
        self.assertEqual(status, 204)
        self.assertEqual(headers["Tus-Version"], "1.0.0")


if __name__ == "__main__":
    import unittest
    unittest.main()

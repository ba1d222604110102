"""End-to-end test of a full disk (issue 5, SPEC §5.3 "storage unavailable"):
PORTAL_DATA_DIR on a 24 MiB tmpfs this test mounts (root only). An upload
that does not fit is refused with 507 (before its body when Content-Length
says so, mid-stream when chunked), its partial file is removed, and the next
upload that fits succeeds.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_disk_full        (from tests/e2e)
"""

import os
import subprocess
import tempfile
import unittest

import archives as A
from portal_harness import PortalTestCase, is_root
from test_uploads import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response, wait_ready

MiB = 1024 * 1024
FS_BYTES = 24 * MiB


@unittest.skipUnless(is_root(), "mounting a tmpfs needs root")
class DiskFullTest(PortalTestCase, UploadChecks):

    @classmethod
    def setUpClass(cls):
        cls.mount_point = tempfile.mkdtemp(prefix="portal-smallfs-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES}", "tmpfs",
                        cls.mount_point], check=True)
        cls.addClassCleanup(os.rmdir, cls.mount_point)
        cls.addClassCleanup(subprocess.run, ["umount", "-l", cls.mount_point], check=True)
        cls.PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_DATA_DIR=cls.mount_point,
                              PORTAL_MIN_FREE_BYTES="0")
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("filler", "uploader")
        wait_ready(cls.portal)
        # incompressible: the archive is as large as its data
        cls.too_big = A.gzip_bytes(A.random_tar(30 * MiB, seed=61), level=0)
        cls.fits = A.gzip_bytes(A.random_tar(2 * MiB, seed=62), level=0)

    def free_bytes(self):
        st = os.statvfs(self.mount_point)
        return st.f_bavail * st.f_frsize

    def test_content_length_larger_than_the_free_space(self):
        before = self.snapshot()
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.token, "huge.tar.gz", len(self.too_big),
                                         extra={"Expect": "100-continue"}))
            status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT)
        self.assert_error(status, headers, body, 507, "insufficient_storage", "before the body")
        self.assert_nothing_left(before, context="507 before the body")
        self.upload_ok(self.token, "fits-1.tar.gz", self.fits, "filler")

    def test_disk_fills_mid_stream(self):
        before = self.snapshot()
        free_before = self.free_bytes()
        pieces = [self.too_big[i:i + MiB] for i in range(0, len(self.too_big), MiB)]
        status, headers, body = self.put_chunked(self.token, "chunked-huge.tar.gz", pieces)
        self.assert_error(status, headers, body, 507, "insufficient_storage", "mid-stream")
        self.assert_nothing_left(before, context="507 mid-stream")
        # the partial file's space is given back
        self.assertGreaterEqual(self.free_bytes(), free_before - MiB)
        self.assertEqual(self.portal.request("GET", "/health")[0], 200)
        self.upload_ok(self.token, "fits-2.tar.gz", self.fits, "filler")


if __name__ == "__main__":
    unittest.main()

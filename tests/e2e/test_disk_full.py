"""End-to-end tests of storage trouble (issue 5, SPEC §5.3 "storage
unavailable", §7 /ready). PORTAL_DATA_DIR on a 24 MiB tmpfs this test mounts
(root only): an upload that does not fit is refused with 507 (before its
body when Content-Length says so, mid-stream when chunked), its partial file
is removed, and the next upload that fits succeeds; a read-only volume makes
/ready answer 503 naming storage. Any user: /ready names a missing data
directory and too little free space.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_disk_full        (from tests/e2e)
"""

import json
import os
import subprocess
import tempfile
import unittest

import archives as A
from portal_harness import PortalTestCase, is_root, wait_until
from upload_checks import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks, read_response

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

    def test_read_only_volume_is_not_ready(self):
        remount = ["mount", "-o", "remount,ro", self.mount_point]
        subprocess.run(remount, check=True)
        try:
            assert_ready(self, self.portal, 503, "data directory is read-only")
        finally:
            subprocess.run(["mount", "-o", "remount,rw", self.mount_point], check=True)
        assert_ready(self, self.portal, 200, "ok")


def assert_ready(test, portal, status, storage):
    """/ready answers exactly this, with the database up (SPEC §11's body)."""
    got, _, body = portal.request("GET", "/ready")
    want = {"status": "ok" if status == 200 else "unavailable",
            "checks": {"database": "ok", "storage": storage}}
    test.assertEqual((got, json.loads(body)), (status, want))


class StorageReadinessTest(PortalTestCase, UploadChecks):
    """/ready names the storage check that fails (SPEC §7, §11)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

    def test_missing_data_directory(self):
        tmp = self.data_path("tmp")
        os.rename(tmp, tmp + ".away")
        try:
            assert_ready(self, self.portal, 503, "data directory missing")
            self.assertEqual(self.portal.request("GET", "/health")[0], 200, "liveness is not readiness")
        finally:
            os.rename(tmp + ".away", tmp)
        assert_ready(self, self.portal, 200, "ok")

    def test_too_little_free_space(self):
        portal = self.start_portal(env={"PORTAL_MIN_FREE_BYTES": str(1 << 62)}, wait="listening")
        wait_until(lambda: json.loads(portal.request("GET", "/ready")[2])["checks"]["database"] == "ok",
                   30, message="the database check to pass")
        assert_ready(self, portal, 503, "data directory low on free space")


if __name__ == "__main__":
    unittest.main()

"""End-to-end tests of the plain streaming upload and the uploads API: the real
binary over real sockets against a real PostgreSQL (SPEC §5.1, §6, §11).

Happy paths: Content-Length, chunked, Expect: 100-continue and real `curl -T`
uploads of .tar.gz / .tgz / .tar.zst, the upload object checked against what
the test computed itself; listing and pagination; downloads (ETag,
If-None-Match, ranges, Content-Disposition); deletion; who may see what.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_uploads        (from tests/e2e)
"""

import base64
import json
import os
import subprocess
import tempfile
import unittest
import urllib.parse

import archives as A
from portal_harness import PortalTestCase, parse_http_response, wait_until

from upload_checks import (CLEANUP_TIMEOUT, ID_RE, NO_RATE_LIMITS, REQUEST_TIMEOUT,  # noqa: F401
                           TIME_RE, UploadChecks, read_response, read_to_eof, send_quietly,
                           wait_ready)


def curl_available():
    try:
        return subprocess.run(["curl", "--version"], capture_output=True).returncode == 0
    except OSError:
        return False


class UploadApiTest(PortalTestCase, UploadChecks):
    """Uploads that succeed, and the API around them."""

    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = cls.portal.create_user_and_token("alice", "uploader")
        cls.bob = cls.portal.create_user_and_token("bob", "uploader")
        cls.admin = cls.portal.create_user_and_token("root", "admin")
        cls.gz = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=1)))
        cls.tgz = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=2)), level=9)
        cls.zst = A.zstd_bytes(A.tar_bytes(A.sample_members(seed=3)))
        # several 256 KiB server chunks, in odd-sized HTTP chunks
        cls.multi_chunk = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=4, big=900_000)), level=1)
        # curl sends Expect: 100-continue for bodies above 1 MiB
        cls.for_curl = A.zstd_bytes(A.tar_bytes(A.sample_members(seed=5, big=1_500_000)))
        # one stored upload for the read-only tests
        cls.stored = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=6, big=5000)))
        status, _, body = cls.portal.request("PUT", "/api/v1/uploads/stored.tar.gz",
                                             {"Authorization": f"Bearer {cls.alice}"}, cls.stored,
                                             timeout=REQUEST_TIMEOUT)
        if status != 201:
            raise AssertionError(f"set-up upload failed: {status} {body[:300]!r}")
        cls.stored_obj = json.loads(body)

    # -- uploading (SPEC §5.1)

    def check_put(self, filename, archive, fmt):
        before = self.snapshot()
        status, headers, body = self.put(self.alice, filename, archive)
        obj = self.assert_upload(status, headers, body, archive, filename, "alice", fmt, filename)
        self.assertEqual(self.row_count(), before["rows"] + 1)
        self.assertEqual(self.dir_files("tmp"), [])
        # GET by id answers the same object
        status, _, got = self.portal.get_json(f"/api/v1/uploads/{obj['id']}", self.alice)
        self.assertEqual(status, 200, got)
        self.assertEqual(got, obj)
        return obj

    def test_put_tar_gz_with_content_length(self):
        self.check_put("build-42.tar.gz", self.gz, "tar.gz")

    def test_put_tgz(self):
        self.check_put("release_1.0-final.tgz", self.tgz, "tar.gz")

    def test_put_tar_zst(self):
        self.check_put("snapshot.tar.zst", self.zst, "tar.zst")

    def test_put_chunked(self):
        data = self.multi_chunk
        cuts = [0, 1, 2, 100, 70_000, 300_000, 300_001, 600_000, len(data)]
        pieces = [data[a:b] for a, b in zip(cuts, cuts[1:])]
        self.assertEqual(b"".join(pieces), data)
        before = self.snapshot()
        status, headers, body = self.put_chunked(self.alice, "chunked.tar.gz", pieces)
        obj = self.assert_upload(status, headers, body, data, "chunked.tar.gz", "alice", "tar.gz",
                                 "chunked")
        self.assertEqual(self.row_count(), before["rows"] + 1)
        status, _, got = self.portal.get_json(f"/api/v1/uploads/{obj['id']}", self.alice)
        self.assertEqual((status, got), (200, obj))

    def test_put_with_expect_100_continue(self):
        data = self.multi_chunk
        with self.portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(self.alice, "expect.tar.gz", len(data),
                                         extra={"Expect": "100-continue"}))
            status, _, _, rest = read_response(sock, REQUEST_TIMEOUT)
            self.assertEqual(status, 100, "the server must invite the body")
            sock.sendall(data)
            status, headers, body, _ = read_response(sock, REQUEST_TIMEOUT, rest)
        self.assert_upload(status, headers, body, data, "expect.tar.gz", "alice", "tar.gz", "expect")

    @unittest.skipUnless(curl_available(), "curl is not installed")
    def test_curl_upload(self):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "from-curl.tar.zst")
            with open(src, "wb") as f:
                f.write(self.for_curl)
            header_file = os.path.join(tmp, "headers")
            url = self.portal.base_url + self.upload_path("from-curl.tar.zst")
            result = subprocess.run(
                ["curl", "-sS", "-T", src, "-H", f"Authorization: Bearer {self.alice}",
                 "-D", header_file, "--max-time", str(REQUEST_TIMEOUT), url],
                capture_output=True, timeout=REQUEST_TIMEOUT + 10)
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(header_file, "rb") as f:
                raw_headers = f.read()
        # curl -D records a 100 Continue too: the last response counts
        last = raw_headers[raw_headers.rfind(b"HTTP/1.1 "):]
        status, headers, _ = parse_http_response(last)
        obj = self.assert_upload(status, headers, result.stdout, self.for_curl, "from-curl.tar.zst",
                                 "alice", "tar.zst", "curl -T")
        # and curl downloads it back, byte for byte
        result = subprocess.run(
            ["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {self.alice}",
             "--max-time", str(REQUEST_TIMEOUT),
             f"{self.portal.base_url}/api/v1/uploads/{obj['id']}/content"],
            capture_output=True, timeout=REQUEST_TIMEOUT + 10)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, self.for_curl)

    def test_put_without_token(self):
        before = self.snapshot()
        status, headers, body = self.put(None, "anonymous.tar.gz", self.gz)
        self.assert_error(status, headers, body, 401, "unauthorized", "no token")
        self.assert_nothing_left(before, context="no token")

    # -- listing (SPEC §6)

    def test_list_newest_first_and_pagination(self):
        token = self.portal.create_user_and_token("carol", "uploader")
        status, _, page = self.portal.get_json("/api/v1/uploads", token)
        self.assertEqual((status, page), (200, {"uploads": [], "next_cursor": None}))
        created = []
        for i in range(4):
            archive = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=100 + i)))
            created.append(self.upload_ok(token, f"carol-{i}.tar.gz", archive, "carol"))
        newest_first = list(reversed(created))

        status, _, page = self.portal.get_json("/api/v1/uploads", token)
        self.assertEqual(status, 200, page)
        self.assertEqual(page["uploads"], newest_first)
        self.assertIsNone(page["next_cursor"])

        # limit=1 walks every upload, one per page, in the same order
        seen, cursor, pages = [], None, 0
        while True:
            path = "/api/v1/uploads?limit=1"
            if cursor is not None:
                path += "&cursor=" + urllib.parse.quote(cursor, safe="")
            status, _, page = self.portal.get_json(path, token)
            self.assertEqual(status, 200, page)
            self.assertEqual(len(page["uploads"]), 1, page)
            seen.extend(page["uploads"])
            pages += 1
            self.assertLessEqual(pages, len(created), "pagination does not end")
            cursor = page["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
        self.assertEqual(seen, newest_first)

        # limit=3: a full page with a cursor, then the rest
        status, _, page = self.portal.get_json("/api/v1/uploads?limit=3", token)
        self.assertEqual(page["uploads"], newest_first[:3])
        status, _, page = self.portal.get_json(
            "/api/v1/uploads?limit=3&cursor=" + urllib.parse.quote(page["next_cursor"], safe=""), token)
        self.assertEqual((status, page["uploads"], page["next_cursor"]), (200, newest_first[3:], None))

    def test_list_invalid_cursor(self):
        forged = base64.urlsafe_b64encode(b"not-a-time|someid").rstrip(b"=").decode()
        for cursor in ("not a cursor!", "AAAA", "%%%", forged, "x" * 500):
            with self.subTest(cursor=cursor):
                status, headers, body = self.portal.request(
                    "GET", "/api/v1/uploads?cursor=" + urllib.parse.quote(cursor, safe=""),
                    self.auth(self.alice))
                self.assert_error(status, headers, body, 400, "invalid_cursor", f"cursor {cursor!r}")

    # -- downloading (SPEC §6, §11)

    def content_path(self, obj=None):
        return f"/api/v1/uploads/{(obj or self.stored_obj)['id']}/content"

    def test_download_whole(self):
        status, headers, body = self.portal.request("GET", self.content_path(), self.auth(self.alice))
        self.assertEqual(status, 200)
        self.assertEqual(body, self.stored)
        self.assertEqual(headers.get("ETag"), f'"{self.stored_obj["sha256"]}"')
        disposition = headers.get("Content-Disposition", "")
        self.assertTrue(disposition.startswith("attachment"), disposition)
        self.assertIn("stored.tar.gz", disposition)
        self.assertEqual(int(headers.get("Content-Length")), len(self.stored))

    def test_download_if_none_match(self):
        etag = f'"{self.stored_obj["sha256"]}"'
        for value in (etag, f'"{"0" * 64}", {etag}', "*"):
            with self.subTest(if_none_match=value):
                hdrs = self.auth(self.alice)
                hdrs["If-None-Match"] = value
                status, headers, body = self.portal.request("GET", self.content_path(), hdrs)
                self.assertEqual(status, 304, body[:200])
                self.assertEqual(body, b"")
                self.assertEqual(headers.get("ETag"), etag)
        hdrs = self.auth(self.alice)
        hdrs["If-None-Match"] = f'"{"0" * 64}"'
        status, _, body = self.portal.request("GET", self.content_path(), hdrs)
        self.assertEqual((status, body), (200, self.stored))

    def test_download_ranges(self):
        data, size = self.stored, len(self.stored)
        cases = {
            "bytes=0-9": (0, 9),
            "bytes=10-": (10, size - 1),
            "bytes=-7": (size - 7, size - 1),
            f"bytes=5-{size + 1000}": (5, size - 1),
            f"bytes={size - 1}-{size - 1}": (size - 1, size - 1),
        }
        for value, (first, last) in cases.items():
            with self.subTest(range=value):
                hdrs = self.auth(self.alice)
                hdrs["Range"] = value
                status, headers, body = self.portal.request("GET", self.content_path(), hdrs)
                self.assertEqual(status, 206, body[:200])
                self.assertEqual(headers.get("Content-Range"), f"bytes {first}-{last}/{size}")
                self.assertEqual(body, data[first:last + 1])
                self.assertEqual(int(headers.get("Content-Length")), last - first + 1)
                self.assertEqual(headers.get("ETag"), f'"{self.stored_obj["sha256"]}"')
        for value in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}"):
            with self.subTest(range=value):
                hdrs = self.auth(self.alice)
                hdrs["Range"] = value
                status, headers, body = self.portal.request("GET", self.content_path(), hdrs)
                self.assert_error(status, headers, body, 416, "range_not_satisfiable", value)
                self.assertEqual(headers.get("Content-Range"), f"bytes */{size}")

    # -- deleting (SPEC §6)

    def test_delete(self):
        obj = self.upload_ok(self.alice, "doomed.tar.gz", self.gz, "alice")
        path = self.data_path("archives", obj["id"])
        self.assertTrue(os.path.isfile(path))
        rows = self.row_count()
        status, headers, body = self.portal.request("DELETE", f"/api/v1/uploads/{obj['id']}",
                                                    self.auth(self.alice))
        self.assertEqual((status, body), (204, b""))
        self.assertEqual(self.row_count(), rows - 1)
        # audited (SPEC §7): who, from where, which request, which upload
        events = [e for e in self.audit_events(self.admin, "upload.delete")
                  if e["detail"].get("upload_id") == obj["id"]]
        self.assertEqual(len(events), 1, events)
        self.assertEqual((events[0]["user"], events[0]["ip"], events[0]["request_id"]),
                         ("alice", "127.0.0.1", headers["X-Request-Id"]))
        self.assertEqual(events[0]["detail"], {"upload_id": obj["id"], "filename": "doomed.tar.gz"})
        for suffix in ("", "/content"):
            status, headers, body = self.portal.request("GET", f"/api/v1/uploads/{obj['id']}{suffix}",
                                                        self.auth(self.alice))
            self.assert_error(status, headers, body, 404, "not_found", "GET after DELETE" + suffix)
        wait_until(lambda: not os.path.exists(path), CLEANUP_TIMEOUT, message=f"{path} to go")
        status, _, page = self.portal.get_json("/api/v1/uploads?limit=200", self.alice)
        self.assertNotIn(obj["id"], [u["id"] for u in page["uploads"]])
        status, headers, body = self.portal.request("DELETE", f"/api/v1/uploads/{obj['id']}",
                                                    self.auth(self.alice))
        self.assert_error(status, headers, body, 404, "not_found", "second DELETE")
        self.assertEqual(len([e for e in self.audit_events(self.admin, "upload.delete")
                              if e["detail"].get("upload_id") == obj["id"]]), 1,
                         "a DELETE that deleted nothing is not audited as a delete")

    def test_unknown_id(self):
        for method, suffix in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
            with self.subTest(method=method, suffix=suffix):
                status, headers, body = self.portal.request(
                    method, f"/api/v1/uploads/NoSuchUpload123{suffix}", self.auth(self.alice))
                self.assert_error(status, headers, body, 404, "not_found")

    # -- who sees what (SPEC §4, §6)

    def test_other_uploader_sees_nothing(self):
        obj = self.upload_ok(self.alice, "private.tar.gz", self.gz, "alice")
        uid = obj["id"]
        for method, suffix in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
            with self.subTest(method=method, suffix=suffix):
                status, headers, body = self.portal.request(method, f"/api/v1/uploads/{uid}{suffix}",
                                                            self.auth(self.bob))
                self.assert_error(status, headers, body, 404, "not_found", f"bob {method} {suffix}")
        status, _, page = self.portal.get_json("/api/v1/uploads?limit=200", self.bob)
        self.assertEqual(status, 200)
        self.assertEqual([u for u in page["uploads"] if u["owner"] != "bob"], [])
        # bob's DELETE did nothing
        status, _, got = self.portal.get_json(f"/api/v1/uploads/{uid}", self.alice)
        self.assertEqual((status, got), (200, obj))
        self.assertTrue(os.path.isfile(self.data_path("archives", uid)))

    def test_admin_sees_everything(self):
        obj = self.upload_ok(self.bob, "bobs.tar.gz", self.gz, "bob")
        status, _, got = self.portal.get_json(f"/api/v1/uploads/{obj['id']}", self.admin)
        self.assertEqual((status, got), (200, obj))
        status, _, body = self.portal.request("GET", f"/api/v1/uploads/{obj['id']}/content",
                                              self.auth(self.admin))
        self.assertEqual((status, body), (200, self.gz))
        status, _, page = self.portal.get_json("/api/v1/uploads?limit=200", self.admin)
        self.assertEqual(status, 200)
        ids = [u["id"] for u in page["uploads"]]
        self.assertIn(obj["id"], ids)
        self.assertIn(self.stored_obj["id"], ids)  # alice's too
        self.assertEqual(page["uploads"][0], obj, "newest first")


if __name__ == "__main__":
    unittest.main()

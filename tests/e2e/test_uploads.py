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
import http.client
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import archives as A
from portal_harness import PortalTestCase, parse_http_response, wait_until

# Sanitizer builds are several times slower: big requests get a minute.
REQUEST_TIMEOUT = 60
# Removing a refused upload's partial file is asynchronous to the answer.
CLEANUP_TIMEOUT = 20

# Upload-rate limits are not what these tests are about (SPEC §11 defaults
# would throttle a suite that uploads dozens of archives per minute).
NO_RATE_LIMITS = {
    "PORTAL_UPLOAD_STARTS_PER_MINUTE": "100000",
    "PORTAL_UPLOADS_PER_USER": "64",
}

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class UploadChecks:
    """Helpers shared by the upload test classes (mixed into PortalTestCase)."""

    # -- the data dir and the database

    def data_path(self, *parts, portal=None):
        return os.path.join((portal or self.portal).data_dir, *parts)

    def dir_files(self, name, portal=None):
        """Names of the non-directory entries of $PORTAL_DATA_DIR/<name>."""
        path = self.data_path(name, portal=portal)
        try:
            return sorted(e.name for e in os.scandir(path) if not e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def row_count(self):
        return int(self.pg.psql("select count(*) from uploads"))

    def snapshot(self, portal=None, rows=True):
        """What a refused upload must not change: files in tmp/ and archives/,
        and the number of rows in uploads (rows=False while the database is down)."""
        return {
            "tmp": self.dir_files("tmp", portal),
            "archives": self.dir_files("archives", portal),
            "rows": self.row_count() if rows else None,
        }

    def assert_nothing_left(self, before, portal=None, rows=True, context=""):
        """tmp/ holds no file (waiting for the asynchronous clean-up with a
        deadline), archives/ holds exactly the files it held before, and
        uploads has as many rows as before."""
        wait_until(lambda: not self.dir_files("tmp", portal), CLEANUP_TIMEOUT,
                   message=f"{context}: tmp/ to be empty, it holds {self.dir_files('tmp', portal)}")
        try:
            wait_until(lambda: self.dir_files("archives", portal) == before["archives"],
                       CLEANUP_TIMEOUT, message="archives/ to be as before")
        except AssertionError:
            self.assertEqual(self.dir_files("archives", portal), before["archives"],
                             f"{context}: archives/ changed")
        if rows and before.get("rows") is not None:
            self.assertEqual(self.row_count(), before["rows"], f"{context}: uploads grew")

    # -- requests

    @staticmethod
    def auth(token):
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    def upload_path(filename):
        return "/api/v1/uploads/" + filename

    def put(self, token, filename, body, headers=None, portal=None, timeout=REQUEST_TIMEOUT):
        """PUT with Content-Length on a fresh connection: (status, headers, body bytes)."""
        hdrs = self.auth(token) if token else {}
        hdrs.update(headers or {})
        return (portal or self.portal).request("PUT", self.upload_path(filename), hdrs, body,
                                               timeout=timeout)

    def put_chunked(self, token, filename, pieces, portal=None, timeout=REQUEST_TIMEOUT):
        """PUT with Transfer-Encoding: chunked, one HTTP chunk per piece."""
        p = portal or self.portal
        conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=timeout)
        try:
            conn.putrequest("PUT", self.upload_path(filename), skip_accept_encoding=True)
            conn.putheader("Authorization", f"Bearer {token}")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            try:
                for piece in pieces:
                    if piece:
                        conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered early: read that answer
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def head_bytes(self, token, filename, content_length=None, chunked=False, extra=None):
        """The head of a PUT, for raw sockets."""
        lines = [f"PUT {self.upload_path(filename)} HTTP/1.1", "Host: 127.0.0.1"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        for key, value in (extra or {}).items():
            lines.append(f"{key}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def assert_error(self, status, headers, body, want_status, want_code, context=""):
        """The SPEC's JSON error with this status and code; returns its message."""
        self.assertEqual(status, want_status, f"{context}: body {body[:300]!r}")
        content_type = headers.get("Content-Type", "")
        self.assertTrue(content_type.startswith("application/json"),
                        f"{context}: Content-Type {content_type!r}, body {body[:200]!r}")
        try:
            doc = json.loads(body)
        except ValueError:
            self.fail(f"{context}: error body is not JSON: {body[:200]!r}")
        self.assertEqual(set(doc), {"error"}, f"{context}: {doc}")
        self.assertEqual(doc["error"].get("code"), want_code, f"{context}: {doc}")
        message = doc["error"].get("message")
        self.assertIsInstance(message, str, f"{context}: {doc}")
        self.assertTrue(message.strip(), f"{context}: {doc}")
        return message

    def check_413_before_body(self, token, content_length, expect, portal=None):
        """A head with a Content-Length over the limit, and not one body byte:
        413 at once (never 100 Continue), then the connection closes."""
        portal = portal or self.portal
        before = self.snapshot(portal)
        extra = {"Expect": "100-continue"} if expect else {}
        with portal.connect(timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(self.head_bytes(token, "big.tar.gz", content_length, extra=extra))
            status, headers, body, rest = read_response(sock, 15)
            self.assertNotEqual(status, 100, "100 Continue for a body over the limit")
            self.assert_error(status, headers, body, 413, "payload_too_large",
                              f"Content-Length {content_length}, Expect {expect}")
            self.assertEqual(rest + read_to_eof(sock, 5), b"", "nothing may follow the 413")
        self.assert_nothing_left(before, portal)

    def assert_upload(self, status, headers, body, archive, filename, owner, fmt, context=""):
        """A 201 whose Location and upload object match what the test
        computed from the bytes it sent; returns the object."""
        self.assertEqual(status, 201, f"{context}: {body[:300]!r}")
        obj = json.loads(body)
        expected = A.describe(archive)
        self.assertRegex(obj.get("id", ""), ID_RE, f"{context}: {obj}")
        self.assertEqual(headers.get("Location"), f"/api/v1/uploads/{obj['id']}", context)
        self.assertEqual(obj["filename"], filename, context)
        self.assertEqual(obj["owner"], owner, context)
        self.assertEqual(obj["format"], fmt, context)
        for key in ("sha256", "size", "entries", "uncompressed_size"):
            self.assertEqual(obj[key], expected[key], f"{context}: {key} in {obj}")
        self.assertRegex(obj["created_at"], TIME_RE, context)
        self.assertIsNone(obj["expires_at"], context)
        # 201 means durable: the archive is in place, byte for byte, already.
        path = self.data_path("archives", obj["id"])
        self.assertTrue(os.path.isfile(path), f"{context}: no {path} at 201")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), archive, f"{context}: stored bytes differ")
        return obj

    def upload_ok(self, token, filename, archive, owner, fmt="tar.gz", portal=None):
        status, headers, body = self.put(token, filename, archive, portal=portal)
        if status != 201:
            self.fail(f"PUT {filename}: {status} {body[:300]!r}\n"
                      f"{(portal or self.portal).output_tail(30)}")
        obj = json.loads(body)
        self.assertEqual(obj["sha256"], A.describe(archive)["sha256"])
        self.assertEqual(obj["owner"], owner)
        return obj


def read_response(sock, timeout, data=b""):
    """Reads one HTTP response from a raw socket: (status, headers, body,
    bytes after it). Raises AssertionError when it does not arrive in time."""
    deadline = time.monotonic() + timeout

    def more():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no complete response within {timeout}s, got {data[:300]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no complete response within {timeout}s, got {data[:300]!r}")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise AssertionError(f"connection closed before a complete response: {data[:300]!r}")
        return chunk

    while b"\r\n\r\n" not in data:
        data += more()
    head, _, rest = data.partition(b"\r\n\r\n")
    status, headers, _ = parse_http_response(head + b"\r\n\r\n")
    length = int(headers.get("Content-Length", "0"))
    while len(rest) < length:
        data += more()
        rest = data.partition(b"\r\n\r\n")[2]
    return status, headers, rest[:length], rest[length:]


def wait_ready(portal, timeout=30):
    """Waits for /ready: a server logs "listening" before its database pool
    has connected, and requests in between are answered 503."""
    wait_until(lambda: portal.request("GET", "/ready")[0] == 200, timeout,
               message=f"/ready on port {portal.port}")


def read_to_eof(sock, timeout):
    """Everything the server still sends until it closes the connection;
    AssertionError if it does not close within `timeout` seconds."""
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the server did not close the connection within {timeout}s")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


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
        wait_ready(cls.portal)
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
        status, _, body = self.portal.request("DELETE", f"/api/v1/uploads/{obj['id']}",
                                              self.auth(self.alice))
        self.assertEqual((status, body), (204, b""))
        self.assertEqual(self.row_count(), rows - 1)
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

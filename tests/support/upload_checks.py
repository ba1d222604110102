"""Checks shared by the upload tests (plain PUT today, tus next): the data
dir and the uploads table before and after, requests on fresh connections
and raw sockets, the SPEC's JSON error shape, and the upload object of a 201
compared with what the test computed from the bytes it sent.

Python 3 standard library only (plus archives.py beside it).
"""

import http.client
import json
import os
import re
import time

import archives as A
from portal_harness import parse_http_response, wait_until

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

    def audit_events(self, admin_token, event=None, portal=None, limit=1000):
        """GET /admin/audit (newest first), only `event`'s rows when given."""
        status, _, body = (portal or self.portal).request(
            "GET", f"/admin/audit?limit={limit}", self.auth(admin_token))
        self.assertEqual(status, 200, body[:300])
        return [e for e in json.loads(body)["events"] if event is None or e["event"] == event]

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

    def assert_upload(self, status, headers, body, archive, filename, owner, fmt, context="",
                      portal=None):
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
        path = self.data_path("archives", obj["id"], portal=portal)
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
    """Waits for /ready after an outage or a restarted actor (Portal.start
    already waits for it)."""
    portal.wait_ready(timeout)


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


def send_quietly(sock, data):
    """sendall that tolerates the server answering and closing first."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False

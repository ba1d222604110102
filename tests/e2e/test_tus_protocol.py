"""End-to-end tests of the tus 1.0.0 server (SPEC §5.2, issue 12): every
status and header of core + creation, creation-with-upload, termination,
checksum and expiration, against the real binary and a real PostgreSQL;
"nothing left behind" (no partial file, no row) after DELETE, 422 and expiry;
a dropped connection mid-PATCH, then HEAD + PATCH completes.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_tus_protocol        (from tests/e2e)
"""

import base64
import email.utils
import hashlib
import os
import time
import unittest

import archives as A
from portal_harness import PortalTestCase, parse_http_response, wait_until

from upload_checks import NO_RATE_LIMITS, REQUEST_TIMEOUT, UploadChecks

MiB = 1 << 20
MAX = 8 * MiB
QUOTA = 6 * MiB
TUS = "/api/v1/tus/"
OFFSET_STREAM = "application/offset+octet-stream"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def metadata(filename, **extra):
    pairs = [f"filename {b64(filename)}"] + [f"{k} {b64(v)}" for k, v in extra.items()]
    return ",".join(pairs)


class TusChecks(UploadChecks):
    """tus requests and what they leave on disk and in the database."""

    def tus_headers(self, token, **extra):
        h = {"Tus-Resumable": "1.0.0"}
        if token:
            h.update(self.auth(token))
        h.update(extra)
        return h

    def create(self, token, length, filename="build.tar.gz", body=None, headers=None, portal=None):
        h = self.tus_headers(token, **{"Upload-Length": str(length),
                                       "Upload-Metadata": metadata(filename)})
        if body is not None:
            h["Content-Type"] = OFFSET_STREAM
        h.update(headers or {})
        return (portal or self.portal).request("POST", TUS, h, body, timeout=REQUEST_TIMEOUT)

    def created_id(self, token, length, filename="build.tar.gz", portal=None):
        status, headers, body = self.create(token, length, filename, portal=portal)
        self.assertEqual(status, 201, body[:300])
        location = headers["Location"]
        self.assertRegex(location, r"^/api/v1/tus/[A-Za-z0-9_-]{1,64}$")
        return location.rsplit("/", 1)[1]

    def head(self, token, upload_id, portal=None, headers=None):
        h = self.tus_headers(token, **(headers or {}))
        return (portal or self.portal).request("HEAD", TUS + upload_id, h)

    def offset(self, token, upload_id, portal=None):
        status, headers, _ = self.head(token, upload_id, portal)
        self.assertEqual(status, 200)
        return int(headers["Upload-Offset"])

    def patch(self, token, upload_id, offset, body, headers=None, portal=None):
        h = self.tus_headers(token, **{"Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM})
        h.update(headers or {})
        return (portal or self.portal).request("PATCH", TUS + upload_id, h, body,
                                               timeout=REQUEST_TIMEOUT)

    def delete(self, token, upload_id, portal=None):
        return (portal or self.portal).request("DELETE", TUS + upload_id,
                                               self.tus_headers(token))

    def wait_session_stopped(self, upload_id, portal):
        """Waits for the upload's session to stop idle (a server with a short
        PORTAL_TUS_SESSION_IDLE_SECONDS): its next request is judged by the
        database row, which a test may have changed, and not by the session."""
        wait_until(lambda: any(line.get("msg") == "tus session idle, stopped"
                               and line.get("upload_id") == upload_id for line in portal.logs),
                   20, message=f"the session of {upload_id} to stop idle")

    def partial_path(self, upload_id, portal=None):
        return self.data_path("partials", upload_id + ".part", portal=portal)

    def tus_rows(self, upload_id=None):
        where = f" where id = '{upload_id}'" if upload_id else ""
        return int(self.pg.psql(f"select count(*) from tus_uploads{where}"))

    def assert_tus_error(self, status, headers, body, want_status, want_code, context=""):
        self.assert_error(status, headers, body, want_status, want_code, context)
        self.assertEqual(headers.get("Tus-Resumable"), "1.0.0", context)

    def assert_gone(self, token, upload_id, context=""):
        """404 on HEAD, no partial file, no tus row, no upload row."""
        status, headers, _ = self.head(token, upload_id)
        self.assertEqual(status, 404, context)
        wait_until(lambda: not os.path.exists(self.partial_path(upload_id)), 20,
                   message=f"{context}: the partial to go")
        self.assertEqual(self.tus_rows(upload_id), 0, context)
        self.assertEqual(int(self.pg.psql(f"select count(*) from uploads where id = '{upload_id}'")),
                         0, context)

    def assert_completed(self, token, upload_id, archive, filename="build.tar.gz"):
        status, _, obj = self.portal.get_json(f"/api/v1/uploads/{upload_id}", token)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["id"], upload_id)
        self.assertEqual(obj["filename"], filename)
        self.assertEqual(obj["size"], len(archive))
        self.assertEqual(obj["sha256"], hashlib.sha256(archive).hexdigest())
        self.assertFalse(os.path.exists(self.partial_path(upload_id)))
        self.assertEqual(self.tus_rows(upload_id), 0)
        # a resuming client sees success
        status, headers, _ = self.head(token, upload_id)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Upload-Offset"], str(len(archive)))
        self.assertEqual(headers["Upload-Length"], str(len(archive)))
        return obj


class TusProtocolTest(PortalTestCase, TusChecks):
    PORTAL_ENV = dict(NO_RATE_LIMITS, PORTAL_MAX_UPLOAD_BYTES=str(MAX))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = cls.portal.create_user_and_token("alice", "uploader")
        cls.bob = cls.portal.create_user_and_token("bob", "uploader")
        cls.carol = cls.portal.create_user_and_token("carol", "uploader")
        cls.portal.run_ok("user", "quota", "carol", str(QUOTA))
        # ~1.5 MiB: several 256 KiB server chunks
        cls.archive = A.gzip_bytes(A.random_tar(1_500_000, seed=121), level=0)
        cls.small = A.gzip_bytes(A.tar_bytes(A.sample_members(seed=122)))

    # -- OPTIONS (no authentication)

    def test_options_needs_no_auth(self):
        for path in (TUS, TUS + "abc"):
            status, headers, body = self.portal.request("OPTIONS", path)
            self.assertEqual(status, 204, path)
            self.assertEqual(body, b"")
            self.assertEqual(headers["Tus-Resumable"], "1.0.0")
            self.assertEqual(headers["Tus-Version"], "1.0.0")
            self.assertEqual(headers["Tus-Extension"],
                             "creation,creation-with-upload,termination,checksum,expiration")
            self.assertEqual(headers["Tus-Max-Size"], str(MAX))
            self.assertEqual(headers["Tus-Checksum-Algorithm"], "sha1,sha256")

    # -- creation, HEAD, PATCH, completion

    def test_create_head_patch_complete(self):
        archive = self.archive
        before = time.time()
        status, headers, body = self.create(self.alice, len(archive))
        self.assertEqual(status, 201, body)
        self.assertEqual(headers["Tus-Resumable"], "1.0.0")
        self.assertNotIn("Portal-Instance", headers)  # one machine
        upload_id = headers["Location"].rsplit("/", 1)[1]
        expires = email.utils.parsedate_to_datetime(headers["Upload-Expires"]).timestamp()
        self.assertAlmostEqual(expires, before + 24 * 3600, delta=120)
        self.assertEqual(os.path.getsize(self.partial_path(upload_id)), 0)
        self.assertEqual(self.tus_rows(upload_id), 1)

        status, headers, body = self.head(self.alice, upload_id)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertEqual(headers["Upload-Offset"], "0")
        self.assertEqual(headers["Upload-Length"], str(len(archive)))
        self.assertEqual(headers["Upload-Metadata"], metadata("build.tar.gz"))
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertEqual(headers["Tus-Resumable"], "1.0.0")
        self.assertIn("Upload-Expires", headers)

        half = 700_000
        status, headers, body = self.patch(self.alice, upload_id, 0, archive[:half])
        self.assertEqual(status, 204, body)
        self.assertEqual(headers["Upload-Offset"], str(half))
        self.assertEqual(headers["Tus-Resumable"], "1.0.0")
        self.assertIn("Upload-Expires", headers)
        self.assertEqual(self.offset(self.alice, upload_id), half)
        with open(self.partial_path(upload_id), "rb") as f:
            self.assertEqual(f.read(), archive[:half])

        status, headers, body = self.patch(self.alice, upload_id, half, archive[half:])
        self.assertEqual(status, 204, body)
        self.assertEqual(headers["Upload-Offset"], str(len(archive)))
        self.assert_completed(self.alice, upload_id, archive)

    def test_creation_with_upload(self):
        status, headers, body = self.create(self.alice, len(self.small), "whole.tgz", body=self.small)
        self.assertEqual(status, 201, body)
        self.assertEqual(headers["Upload-Offset"], str(len(self.small)))
        upload_id = headers["Location"].rsplit("/", 1)[1]
        self.assert_completed(self.alice, upload_id, self.small, "whole.tgz")

    def test_creation_with_part_of_the_upload(self):
        part = 300_000
        status, headers, body = self.create(self.alice, len(self.archive), body=self.archive[:part])
        self.assertEqual(status, 201, body)
        self.assertEqual(headers["Upload-Offset"], str(part))
        upload_id = headers["Location"].rsplit("/", 1)[1]
        status, _, body = self.patch(self.alice, upload_id, part, self.archive[part:])
        self.assertEqual(status, 204, body)
        self.assert_completed(self.alice, upload_id, self.archive)

    # -- refusals of the protocol

    def test_refusals_before_the_handlers_say_tus_resumable(self):
        # tus 1.0.0: every response says Tus-Resumable, also the router's and
        # the authentication's refusals, which come before any tus handler.
        upload_id = self.created_id(self.alice, len(self.small))
        tus = {"Tus-Resumable": "1.0.0"}
        cases = (
            ("HEAD", TUS + upload_id, tus, 401),                          # no credential
            ("POST", TUS, dict(tus, Authorization="Bearer upt_nope_" + "x" * 20), 401),
            ("PUT", TUS + upload_id, dict(tus, **self.auth(self.alice)), 405),
            ("GET", TUS + upload_id + "/extra", dict(tus, **self.auth(self.alice)), 404),
            ("GET", "/api/v1/tus", dict(tus, **self.auth(self.alice)), 404),
        )
        for method, path, headers, want in cases:
            status, got, _ = self.portal.request(method, path, headers)
            self.assertEqual(status, want, f"{method} {path}")
            self.assertEqual(got.get("Tus-Resumable"), "1.0.0", f"{method} {path} ({status})")
        # and nothing else under /api/ says it
        status, got, _ = self.portal.request("GET", "/api/v1/uploads", self.auth(self.alice))
        self.assertEqual(status, 200)
        self.assertIsNone(got.get("Tus-Resumable"))

    def test_412_without_tus_resumable(self):
        upload_id = self.created_id(self.alice, len(self.small))
        for method, path, extra, body in (
                ("POST", TUS, {"Upload-Length": "10", "Upload-Metadata": metadata("a.tar.gz")}, None),
                ("HEAD", TUS + upload_id, {}, None),
                ("PATCH", TUS + upload_id, {"Upload-Offset": "0", "Content-Type": OFFSET_STREAM}, b"x"),
                ("DELETE", TUS + upload_id, {}, None)):
            for version in (None, "0.2.2"):
                h = dict(self.auth(self.alice), **extra)
                if version:
                    h["Tus-Resumable"] = version
                status, headers, body_ = self.portal.request(method, path, h, body)
                self.assertEqual(status, 412, f"{method} {version}")
                self.assertEqual(headers["Tus-Version"], "1.0.0", method)
                if method != "HEAD":
                    self.assert_tus_error(status, headers, body_, 412, "tus_version_unsupported", method)
        self.assertEqual(self.offset(self.alice, upload_id), 0)

    def test_415_wrong_content_type(self):
        upload_id = self.created_id(self.alice, len(self.small))
        for content_type in ("application/octet-stream", None):
            h = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
            status, headers, body = self.patch(self.alice, upload_id, 0, self.small, h)
            self.assert_tus_error(status, headers, body, 415, "unsupported_media_type", str(content_type))
        self.assertEqual(self.offset(self.alice, upload_id), 0)

    def test_409_offset_mismatch(self):
        upload_id = self.created_id(self.alice, len(self.archive))
        status, _, _ = self.patch(self.alice, upload_id, 0, self.archive[:1000])
        self.assertEqual(status, 204)
        for wrong in (0, 999, 1001, 5000):
            status, headers, body = self.patch(self.alice, upload_id, wrong, self.archive[wrong:wrong + 10])
            self.assert_tus_error(status, headers, body, 409, "offset_mismatch", str(wrong))
        # A stale offset whose body would run past Upload-Length is still a
        # 409, which a client recovers from, not a 413, which it cannot.
        status, headers, body = self.patch(self.alice, upload_id, 5, self.archive)
        self.assert_tus_error(status, headers, body, 409, "offset_mismatch", "stale offset, long body")
        self.assertEqual(self.offset(self.alice, upload_id), 1000)
        self.assertEqual(os.path.getsize(self.partial_path(upload_id)), 1000)

    def test_checksum(self):
        upload_id = self.created_id(self.alice, len(self.archive))
        piece = self.archive[:400_000]
        # unsupported algorithm: 400, nothing appended
        status, headers, body = self.patch(self.alice, upload_id, 0, piece,
                                           {"Upload-Checksum": "md5 " + b64(hashlib.md5(piece).digest())})
        self.assert_tus_error(status, headers, body, 400, "bad_request", "md5")
        # mismatch: 460, nothing appended, the offset unchanged
        status, headers, body = self.patch(self.alice, upload_id, 0, piece,
                                           {"Upload-Checksum": "sha256 " + b64(hashlib.sha256(b"other").digest())})
        self.assert_tus_error(status, headers, body, 460, "checksum_mismatch", "sha256 mismatch")
        self.assertEqual(self.offset(self.alice, upload_id), 0)
        self.assertEqual(os.path.getsize(self.partial_path(upload_id)), 0)
        # sha1 and sha256 that match
        status, headers, body = self.patch(self.alice, upload_id, 0, piece,
                                           {"Upload-Checksum": "sha1 " + b64(hashlib.sha1(piece).digest())})
        self.assertEqual(status, 204, body)
        self.assertEqual(headers["Upload-Offset"], str(len(piece)))
        # a mismatch after durable bytes cuts back to this PATCH's start only
        rest = self.archive[len(piece):]
        status, headers, body = self.patch(self.alice, upload_id, len(piece), rest,
                                           {"Upload-Checksum": "sha1 " + b64(hashlib.sha1(b"x").digest())})
        self.assert_tus_error(status, headers, body, 460, "checksum_mismatch", "sha1 mismatch")
        self.assertEqual(self.offset(self.alice, upload_id), len(piece))
        status, headers, body = self.patch(self.alice, upload_id, len(piece), rest,
                                           {"Upload-Checksum": "sha256 " + b64(hashlib.sha256(rest).digest())})
        self.assertEqual(status, 204, body)
        self.assert_completed(self.alice, upload_id, self.archive)

    def test_checksum_on_creation_with_upload(self):
        piece = self.archive[:400_000]
        rows = self.tus_rows()
        # unsupported algorithm: 400 before anything is created
        status, headers, body = self.create(
            self.alice, len(self.archive), body=piece,
            headers={"Upload-Checksum": "md5 " + b64(hashlib.md5(piece).digest())})
        self.assert_tus_error(status, headers, body, 400, "bad_request", "md5 on creation")
        self.assertNotIn("Location", headers)
        self.assertEqual(self.tus_rows(), rows)
        # mismatch: 460, the upload exists at offset 0 and says where
        status, headers, body = self.create(
            self.alice, len(self.archive), body=piece,
            headers={"Upload-Checksum": "sha256 " + b64(hashlib.sha256(b"other").digest())})
        self.assert_tus_error(status, headers, body, 460, "checksum_mismatch", "sha256 on creation")
        self.assertEqual(headers["Upload-Offset"], "0")
        upload_id = headers["Location"].rsplit("/", 1)[1]
        self.assertEqual(self.offset(self.alice, upload_id), 0)
        self.assertEqual(os.path.getsize(self.partial_path(upload_id)), 0)
        # resumed there with a checksum that matches
        status, headers, body = self.patch(self.alice, upload_id, 0, self.archive,
                                           {"Upload-Checksum": "sha1 " + b64(hashlib.sha1(self.archive).digest())})
        self.assertEqual(status, 204, body)
        self.assert_completed(self.alice, upload_id, self.archive)
        # a creation whose body matches its checksum
        status, headers, body = self.create(
            self.alice, len(self.small), "checked.tgz", body=self.small,
            headers={"Upload-Checksum": "sha256 " + b64(hashlib.sha256(self.small).digest())})
        self.assertEqual(status, 201, body)
        self.assertEqual(headers["Upload-Offset"], str(len(self.small)))
        self.assert_completed(self.alice, headers["Location"].rsplit("/", 1)[1], self.small, "checked.tgz")

    def test_refused_creation_with_upload_names_no_location(self):
        bad = A.gzip_bytes(A.tar_bytes([A.file("ok.txt", b"fine"), A.file("../escape.txt", b"x")]))
        rows = self.tus_rows()
        partials = set(os.listdir(os.path.dirname(self.partial_path("x"))))
        status, headers, body = self.create(self.alice, len(bad), body=bad)
        self.assert_tus_error(status, headers, body, 422, "unsafe_entry", "unsafe creation")
        self.assertNotIn("Location", headers)
        self.assertEqual(self.tus_rows(), rows)
        wait_until(lambda: set(os.listdir(os.path.dirname(self.partial_path("x")))) <= partials, 20,
                   message="the refused upload's partial to go")

    # -- termination, ownership, expiry

    def test_delete_then_404(self):
        upload_id = self.created_id(self.alice, len(self.archive))
        self.assertEqual(self.patch(self.alice, upload_id, 0, self.archive[:5000])[0], 204)
        status, headers, body = self.delete(self.alice, upload_id)
        self.assertEqual(status, 204, body)
        self.assertEqual(headers["Tus-Resumable"], "1.0.0")
        self.assert_gone(self.alice, upload_id, "after DELETE")
        status, headers, body = self.patch(self.alice, upload_id, 5000, b"x")
        self.assert_tus_error(status, headers, body, 404, "not_found", "PATCH after DELETE")
        status, headers, body = self.delete(self.alice, upload_id)
        self.assert_tus_error(status, headers, body, 404, "not_found", "DELETE after DELETE")

    def test_owner_only(self):
        upload_id = self.created_id(self.alice, len(self.archive))
        self.assertEqual(self.patch(self.alice, upload_id, 0, self.archive[:5000])[0], 204)
        status, _, _ = self.head(self.bob, upload_id)
        self.assertEqual(status, 404)
        status, headers, body = self.patch(self.bob, upload_id, 5000, self.archive[5000:6000])
        self.assert_tus_error(status, headers, body, 404, "not_found", "bob PATCH")
        status, headers, body = self.delete(self.bob, upload_id)
        self.assert_tus_error(status, headers, body, 404, "not_found", "bob DELETE")
        status, headers, body = self.portal.request("HEAD", TUS + upload_id, {"Tus-Resumable": "1.0.0"})
        self.assertEqual(status, 401)
        self.assertEqual(self.offset(self.alice, upload_id), 5000)

    def test_expired_is_410(self):
        # Expiry is simulated by moving the row's Upload-Expires back, so the
        # upload's session (started by the creation, and the only one to move
        # the expiry while it lives) must have stopped first.
        server = self.start_portal(env=dict(self.PORTAL_ENV, PORTAL_TUS_SESSION_IDLE_SECONDS="1"))
        upload_id = self.created_id(self.alice, len(self.archive), portal=server)
        self.wait_session_stopped(upload_id, server)
        self.pg.psql(f"update tus_uploads set expires_at = now() - interval '1 minute' where id = '{upload_id}'")
        status, _, _ = self.head(self.alice, upload_id, portal=server)
        self.assertEqual(status, 410)
        status, headers, body = self.patch(self.alice, upload_id, 0, self.archive[:100],
                                           portal=server)
        self.assert_tus_error(status, headers, body, 410, "gone", "PATCH expired")
        self.assertEqual(os.path.getsize(self.partial_path(upload_id, portal=server)), 0)

    # -- creation refusals

    def test_413_over_max_size_and_over_quota(self):
        status, headers, body = self.create(self.alice, MAX + 1)
        self.assert_tus_error(status, headers, body, 413, "payload_too_large", "over Tus-Max-Size")
        status, headers, body = self.create(self.carol, QUOTA + 1)
        self.assert_tus_error(status, headers, body, 413, "quota_exceeded", "over quota")
        # the declared length counts from creation
        first = self.created_id(self.carol, QUOTA - 1000)
        status, headers, body = self.create(self.carol, 2000)
        self.assert_tus_error(status, headers, body, 413, "quota_exceeded", "reserved quota")
        self.assertEqual(self.delete(self.carol, first)[0], 204)
        self.assertEqual(self.create(self.carol, 2000)[0], 201)

    def test_400_metadata(self):
        cases = [
            ({"Upload-Metadata": ""}, "bad_request"),
            ({"Upload-Metadata": f"name {b64('x.tar.gz')}"}, "bad_request"),
            ({"Upload-Metadata": "filename !!notbase64"}, "bad_request"),
            ({"Upload-Metadata": metadata("../evil.tar.gz")}, "invalid_filename"),
            ({"Upload-Metadata": metadata("notes.txt")}, "invalid_filename"),
            ({"Upload-Metadata": metadata(".hidden.tar.gz")}, "invalid_filename"),
            ({"Upload-Length": "abc"}, "bad_request"),
            ({"Upload-Length": "-1"}, "bad_request"),
            ({"Upload-Defer-Length": "1"}, "bad_request"),
            ({"Upload-Metadata": f"filename {b64('x.tar.gz')},filename {b64('y.tar.gz')}"},
             "bad_request"),
            # keys are ASCII: a raw 0xE9 once reached the INSERT (500, a file left behind)
            ({"Upload-Metadata": f"f\xe9 {b64('a')},filename {b64('x.tar.gz')}"}, "bad_request"),
        ]
        rows = self.tus_rows()
        partials = set(os.listdir(os.path.dirname(self.partial_path("x"))))
        for extra, code in cases:
            status, headers, body = self.create(self.alice, 1000, headers=extra)
            self.assert_tus_error(status, headers, body, 400, code, str(extra))
        self.assertEqual(self.tus_rows(), rows)
        self.assertEqual(set(os.listdir(os.path.dirname(self.partial_path("x")))), partials)

    def test_repeated_tus_fields_are_refused(self):
        # Which of two values a reader believes is a guess (as with two
        # Content-Length fields): 400, and no upload is created.
        rows = self.tus_rows()
        token = self.auth(self.alice)["Authorization"]
        for field, first, second in (("Upload-Length", "5", "1000"),
                                     ("Tus-Resumable", "1.0.0", "0.2.2"),
                                     ("Upload-Metadata", metadata("x.tar.gz"), metadata("y.tar.gz"))):
            fields = {"Tus-Resumable": "1.0.0", "Upload-Length": "1000",
                      "Upload-Metadata": metadata("x.tar.gz")}
            del fields[field]
            head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
            head += f"{field}: {first}\r\n{field}: {second}\r\n"
            data = (f"POST {TUS} HTTP/1.1\r\nHost: t\r\nAuthorization: {token}\r\n{head}"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n").encode()
            status, headers, body = parse_http_response(self.portal.raw(data))
            self.assert_tus_error(status, headers, body, 400, "bad_request", field)
        self.assertEqual(self.tus_rows(), rows)

    def test_empty_upload_is_refused_at_creation(self):
        # HEAD's "0 of 0" would read as a finished upload to a client.
        rows = self.tus_rows()
        status, headers, body = self.create(self.alice, 0)
        self.assert_tus_error(status, headers, body, 415, "unsupported_media_type")
        self.assertEqual(self.tus_rows(), rows)

    # -- validation failure deletes the resource

    def test_422_unsafe_archive_deletes_the_upload(self):
        bad = A.gzip_bytes(A.tar_bytes([A.file("ok.txt", b"fine"), A.file("../escape.txt", b"x")]))
        upload_id = self.created_id(self.alice, len(bad))
        status, headers, body = self.patch(self.alice, upload_id, 0, bad)
        self.assert_tus_error(status, headers, body, 422, "unsafe_entry", "unsafe")
        self.assert_gone(self.alice, upload_id, "after 422")

    def test_415_wrong_magic_deletes_the_upload(self):
        upload_id = self.created_id(self.alice, 1000)
        status, headers, body = self.patch(self.alice, upload_id, 0, b"PK\x03\x04" + b"\0" * 996)
        self.assert_tus_error(status, headers, body, 415, "unsupported_media_type", "zip")
        self.assert_gone(self.alice, upload_id, "after 415")

    # -- a dropped connection mid-PATCH

    def test_dropped_connection_then_resume(self):
        archive = self.archive
        upload_id = self.created_id(self.alice, len(archive))
        sent = 1_000_000
        head = (f"PATCH {TUS}{upload_id} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {self.alice}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: 0\r\nContent-Type: {OFFSET_STREAM}\r\n"
                f"Content-Length: {len(archive)}\r\n\r\n").encode()
        with self.portal.connect() as sock:
            sock.sendall(head + archive[:sent])
            # the server has read it all once its counter says so
            wait_until(lambda: self.partial_size(upload_id) >= 3 * 256 * 1024, 20,
                       message="the server to store the first chunks")
        offset = wait_until(lambda: self.settled_offset(upload_id), 20,
                            message="the stopped PATCH to settle")
        self.assertLessEqual(offset, sent)
        with open(self.partial_path(upload_id), "rb") as f:
            self.assertEqual(f.read(), archive[:offset])
        status, headers, body = self.patch(self.alice, upload_id, offset, archive[offset:])
        self.assertEqual(status, 204, body)
        self.assert_completed(self.alice, upload_id, archive)

    def partial_size(self, upload_id):
        return os.path.getsize(self.partial_path(upload_id))

    def settled_offset(self, upload_id):
        """HEAD's offset once it equals the partial's size (the PATCH is over)."""
        status, headers, _ = self.head(self.alice, upload_id)
        if status != 200:
            return None
        offset = int(headers["Upload-Offset"])
        return offset if offset == self.partial_size(upload_id) and offset > 0 else None


class TusProtocolPgBouncerTest(TusProtocolTest):
    """The same, with the server behind PgBouncer in transaction mode (as on
    Fly): creation, completion's one transaction and the reaper's statements
    hold no session state."""

    PGBOUNCER = True


if __name__ == "__main__":
    unittest.main()

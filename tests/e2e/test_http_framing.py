"""HTTP/1.1 message framing against request smuggling (issue 11 §5, SPEC §11
"HTTP framing", RFC 9112 §5 and §6; docs/SECURITY.md lists the rules).

Every test sends, on one fresh connection, a PUT upload (the carrier) whose
framing is ambiguous or broken, followed by a second, smuggled request: a
DELETE of an existing upload with a valid token. A server that reads the
carrier's framing differently from a proxy in front of it would run that
DELETE. Each test asserts the exact refusal (status and JSON error code),
that it is the only response on the connection, that the server closes the
connection, and that nothing ran: the upload is still there, no audit row
was written, no upload started, and the access log holds exactly the
refusal.

Run: PORTAL_BINARY=build/upload-portal PYTHONPATH=tests/support \
     python3 -m unittest -v test_http_framing        (from tests/e2e)
"""

import json
import unittest

import archives as A
from portal_harness import PortalTestCase, parse_http_response, wait_until
from test_uploads import NO_RATE_LIMITS, read_to_eof

CARRIER = b"PUT /api/v1/uploads/carrier.tar.gz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
# Five body bytes, and the same as one HTTP chunk.
BODY = b"xxxxx"
CHUNKED_BODY = b"5\r\nxxxxx\r\n0\r\n\r\n"


class HttpFramingTest(PortalTestCase):
    PORTAL_ENV = dict(NO_RATE_LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.portal.create_user_and_token("framed", "uploader")

    def setUp(self):
        # Each test has its own victim, so that one smuggled DELETE that ran
        # does not hide what the next test checks.
        archive = A.gzip_bytes(A.tar_bytes([A.file("victim.txt", self.id().encode())]))
        status, _, body = self.portal.request(
            "PUT", "/api/v1/uploads/victim.tar.gz", {"Authorization": f"Bearer {self.token}"},
            archive)
        self.assertEqual(status, 201, body[:200])
        self.victim = json.loads(body)["id"]

    # -- the requests

    def auth(self):
        return b"Authorization: Bearer " + self.token.encode() + b"\r\n"

    def smuggled(self):
        """A complete request that must never run: it would delete the victim."""
        return (b"DELETE /api/v1/uploads/" + self.victim.encode() + b" HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\n" + self.auth() + b"Content-Length: 0\r\n\r\n")

    def carrier(self, headers, body=b"", start=CARRIER):
        """The carrier request with `headers` (raw bytes, each line with its
        own line ending), then `body`, then the smuggled request."""
        return start + self.auth() + headers + b"\r\n" + body + self.smuggled()

    # -- what must (not) have happened

    def audit_count(self, event):
        return int(self.pg.psql(f"select count(*) from audit_events where event = '{event}'"))

    def state(self):
        return {
            "uploads": int(self.pg.psql("select count(*) from uploads")),
            "victim": int(self.pg.psql(f"select count(*) from uploads where id = '{self.victim}'")),
            "deletes": self.audit_count("upload.delete"),
            "rejections": self.audit_count("upload.rejected"),
            "completions": self.audit_count("upload.complete"),
        }

    def access_lines(self):
        return [line for line in self.portal.logs if line.get("msg") == "request"]

    def assert_refused(self, raw, status, code):
        before = self.state()
        self.assertEqual(before["victim"], 1, "the victim upload is gone already")
        logged = len(self.access_lines())
        with self.portal.connect(timeout=20) as sock:
            try:
                sock.sendall(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the server read it all: read the answer
            data = read_to_eof(sock, 20)  # fails unless the server closes the connection
        got, headers, body = parse_http_response(data)
        self.assertEqual(got, status, data[:400])
        self.assertEqual(headers.get("Connection"), "close", data[:400])
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"))
        doc = json.loads(body)
        self.assertEqual(set(doc), {"error"}, doc)
        self.assertEqual(set(doc["error"]), {"code", "message"}, doc)
        self.assertEqual(doc["error"]["code"], code, doc)
        # Exactly one response: nothing follows its body on the connection.
        head_end = data.index(b"\r\n\r\n") + 4
        self.assertEqual(data[head_end + int(headers["Content-Length"]):], b"",
                         f"a second response followed the refusal: {data[:600]!r}")
        # Nothing ran: the victim is there and no upload started or ended.
        status_now, _, _ = self.portal.request(
            "GET", "/api/v1/uploads/" + self.victim, {"Authorization": f"Bearer {self.token}"})
        self.assertEqual(status_now, 200, "the smuggled DELETE ran")
        self.assertEqual(self.state(), before)
        # The access log holds the refusal and the check above, nothing else.
        wait_until(lambda: len(self.access_lines()) >= logged + 2, 10,
                   message="two new access log lines")
        lines = self.access_lines()[logged:]
        self.assertEqual([(line["status"], line["method"]) for line in lines],
                         [(status, lines[0]["method"]), (200, "GET")], lines)
        self.assertNotEqual(lines[0]["method"], "DELETE", lines)

    # -- Transfer-Encoding (RFC 9112 §6.1, §6.3): chunked must be the final
    # coding, once; no other coding is implemented.

    def test_te_gzip_alone(self):
        """The example of issue 11: the body, a whole request, was run."""
        self.assert_refused(self.carrier(b"Transfer-Encoding: gzip\r\n"), 400, "bad_request")

    def test_te_identity(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding: identity\r\n"), 400, "bad_request")

    def test_te_unknown_coding(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding: chunky\r\n"), 400, "bad_request")

    def test_te_empty(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding: \r\n"), 400, "bad_request")

    def test_te_chunked_not_last(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding: chunked, gzip\r\n", CHUNKED_BODY),
                            400, "bad_request")

    def test_te_chunked_twice(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_BODY),
                            400, "bad_request")

    def test_te_chunked_with_a_parameter(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding: chunked;x=1\r\n", CHUNKED_BODY),
                            400, "bad_request")

    def test_te_gzip_then_chunked(self):
        """Well framed, but a coding the server does not implement: 501."""
        self.assert_refused(self.carrier(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_BODY),
                            501, "not_implemented")

    def test_te_over_two_lines(self):
        """Two field lines are one list: gzip, chunked."""
        self.assert_refused(
            self.carrier(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY),
            501, "not_implemented")

    def test_te_chunked_on_two_lines(self):
        self.assert_refused(
            self.carrier(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                         CHUNKED_BODY), 400, "bad_request")

    # -- Transfer-Encoding with Content-Length (RFC 9112 §6.3 item 3)

    def test_content_length_then_chunked(self):
        self.assert_refused(
            self.carrier(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY),
            400, "bad_request")

    def test_chunked_then_content_length(self):
        self.assert_refused(
            self.carrier(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", CHUNKED_BODY),
            400, "bad_request")

    def test_gzip_then_content_length(self):
        self.assert_refused(
            self.carrier(b"Transfer-Encoding: gzip\r\nContent-Length: 5\r\n", BODY),
            400, "bad_request")

    # -- HTTP/1.0 (RFC 9112 §6.1: Transfer-Encoding in 1.0 is faulty framing)

    def test_http_1_0_with_chunked(self):
        start = CARRIER.replace(b"HTTP/1.1", b"HTTP/1.0")
        self.assert_refused(
            self.carrier(b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY,
                         start=start), 400, "bad_request")

    # -- Content-Length (RFC 9110 §8.6: 1*DIGIT; one value)

    def test_content_length_with_plus_sign(self):
        self.assert_refused(self.carrier(b"Content-Length: +5\r\n", BODY), 400, "bad_request")

    def test_content_length_negative(self):
        self.assert_refused(self.carrier(b"Content-Length: -5\r\n", BODY), 400, "bad_request")

    def test_content_length_in_hex(self):
        self.assert_refused(self.carrier(b"Content-Length: 0x5\r\n", BODY), 400, "bad_request")

    def test_content_length_list_of_equal_values(self):
        """RFC 9110 lets a recipient merge equal values or refuse: refused."""
        self.assert_refused(self.carrier(b"Content-Length: 5, 5\r\n", BODY), 400, "bad_request")

    def test_content_length_twice_equal(self):
        self.assert_refused(self.carrier(b"Content-Length: 5\r\nContent-Length: 5\r\n", BODY),
                            400, "bad_request")

    def test_content_length_twice_different(self):
        self.assert_refused(self.carrier(b"Content-Length: 5\r\nContent-Length: 0\r\n", BODY),
                            400, "bad_request")

    # -- field syntax (RFC 9112 §2.2, §5.1, §5.2)

    def test_bare_lf_inside_a_field_value(self):
        self.assert_refused(self.carrier(b"X-Note: a\nContent-Length: 0\r\n"), 400, "bad_request")

    def test_bare_lf_line_endings(self):
        start = CARRIER.replace(b"\r\n", b"\n")
        raw = (start + self.auth().replace(b"\r\n", b"\n") + b"Content-Length: 5\n\n" + BODY
               + self.smuggled())
        self.assert_refused(raw, 400, "bad_request")

    def test_bare_cr_inside_a_field_value(self):
        self.assert_refused(self.carrier(b"X-Note: a\rContent-Length: 0\r\n"), 400, "bad_request")

    def test_nul_in_a_field_value(self):
        self.assert_refused(self.carrier(b"X-Note: a\x00b\r\n"), 400, "bad_request")

    def test_nul_in_a_field_name(self):
        self.assert_refused(self.carrier(b"X-No\x00te: a\r\n"), 400, "bad_request")

    def test_obs_fold(self):
        """RFC 9112 §5.2 lets a server unfold or refuse: refused, since a proxy
        may read a folded line as a field of its own."""
        self.assert_refused(self.carrier(b"Content-Length: 5\r\nX-Note: a\r\n b\r\n", BODY),
                            400, "bad_request")

    def test_obs_fold_of_transfer_encoding(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_BODY),
                            400, "bad_request")

    def test_whitespace_before_the_colon(self):
        self.assert_refused(self.carrier(b"Transfer-Encoding : chunked\r\n", CHUNKED_BODY),
                            400, "bad_request")

    def test_whitespace_before_the_colon_of_content_length(self):
        self.assert_refused(self.carrier(b"Content-Length : 5\r\n", BODY), 400, "bad_request")

    # -- what stays allowed

    def test_well_framed_requests_still_work_on_one_connection(self):
        """Content-Length, then chunked, then a bodiless GET on one kept-alive
        connection: each answered, in order (the rules refuse no valid framing)."""
        archive = A.gzip_bytes(A.tar_bytes([A.file("ok.txt", b"fine")]))
        chunked = b"%x\r\n" % len(archive) + archive + b"\r\n0\r\n\r\n"
        raw = (b"PUT /api/v1/uploads/one.tar.gz HTTP/1.1\r\nHost: x\r\n" + self.auth()
               + b"Content-Length: %d\r\n\r\n" % len(archive) + archive
               + b"PUT /api/v1/uploads/two.tar.gz HTTP/1.1\r\nHost: x\r\n" + self.auth()
               + b"Transfer-Encoding: chunked\r\n\r\n" + chunked
               + b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n" + self.auth()
               + b"Connection: close\r\n\r\n")
        with self.portal.connect(timeout=30) as sock:
            sock.sendall(raw)
            data = read_to_eof(sock, 30)
        statuses = []
        while data:
            status, headers, body = parse_http_response(data)
            statuses.append(status)
            head_end = data.index(b"\r\n\r\n") + 4
            data = data[head_end + int(headers["Content-Length"]):]
        self.assertEqual(statuses, [201, 201, 200])


if __name__ == "__main__":
    unittest.main()

// Request framing (net/framing, RFC 9112 §5.2 and §6): heads are parsed by
// Beast's own parser, as the session does, and then judged. The same
// cases run end to end, with a smuggled request, in
// tests/e2e/test_http_framing.py.
#include "net/error_table.hpp"
#include "net/framing.hpp"

#include <boost/beast/_experimental/test/stream.hpp>
#include <catch2/catch.hpp>

#include <string>

using namespace portal;
using namespace std::string_literals;

namespace {

struct parsed {
  beast::error_code ec; // Beast's own verdict
  bool folded = false;
  std::optional<failure> refusal;
};

// Reads `head` as http_session does: through a head_buffer, with Beast's
// request parser.
parsed parse(const std::string& head) {
  net::io_context ioc;
  beast::test::stream stream{ioc, head};
  stream.close_remote();
  beast::flat_buffer buffer;
  head_buffer watched{buffer};
  http::request_parser<http::buffer_body> parser;
  parsed out;
  http::read_header(stream, watched, parser, out.ec);
  out.folded = watched.folded();
  if (!out.ec)
    out.refusal = check_framing(parser.get(), parser.chunked());
  return out;
}

std::string put(const std::string& fields, const char* version = "HTTP/1.1") {
  return std::string{"PUT /api/v1/uploads/a.tar.gz "} + version + "\r\nHost: x\r\n" + fields +
         "\r\n";
}

void check_refused(const std::string& head, http::status status) {
  INFO(head);
  auto p = parse(head);
  REQUIRE_FALSE(p.ec);
  REQUIRE(p.refusal);
  CHECK(http_error_of(p.refusal->code).status == status);
  CHECK(p.refusal->code == (status == http::status::bad_request ? error_code::bad_request
                                                                : error_code::not_implemented));
}

void check_beast_refuses(const std::string& head) {
  INFO(head);
  CHECK(parse(head).ec);
}

} // namespace

TEST_CASE("valid framing passes", "[framing]") {
  for (auto fields :
       {"", "Content-Length: 0\r\n", "Content-Length: 5\r\n", "Content-Length: 005\r\n",
        "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: CHUNKED\r\n",
        "Transfer-Encoding: , chunked\r\n", "X-Note: a b\r\n"}) {
    INFO(fields);
    auto p = parse(put(fields));
    REQUIRE_FALSE(p.ec);
    CHECK_FALSE(p.folded);
    CHECK_FALSE(p.refusal);
  }
}

TEST_CASE("the final transfer coding must be chunked, once: else 400", "[framing]") {
  for (auto te : {"gzip", "identity", "chunky", "", "chunked, gzip", "chunked, chunked",
                  "chunked;x=1", "chunked x", "gzip;q=1, chunked"})
    check_refused(put(std::string{"Transfer-Encoding: "} + te + "\r\n"), http::status::bad_request);
}

TEST_CASE("a coding before the final chunked is not implemented: 501", "[framing]") {
  check_refused(put("Transfer-Encoding: gzip, chunked\r\n"), http::status::not_implemented);
  check_refused(put("Transfer-Encoding: identity, chunked\r\n"), http::status::not_implemented);
  // Two fields are one list.
  check_refused(put("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
                http::status::not_implemented);
}

TEST_CASE("Transfer-Encoding in HTTP/1.0 or beside Content-Length: 400", "[framing]") {
  check_refused(put("Transfer-Encoding: chunked\r\n", "HTTP/1.0"), http::status::bad_request);
  check_refused(put("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n"), http::status::bad_request);
  check_refused(put("Transfer-Encoding: identity\r\nContent-Length: 0\r\n"),
                http::status::bad_request);
  // Beast refuses these orders itself.
  check_beast_refuses(put("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"));
  check_beast_refuses(put("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"));
  check_beast_refuses(put("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"));
}

TEST_CASE("Content-Length: one field of 1*DIGIT", "[framing]") {
  check_refused(put("Content-Length: 5, 5\r\n"), http::status::bad_request);
  check_refused(put("Content-Length: 5,5\r\n"), http::status::bad_request);
  check_refused(put("Content-Length: 5\r\nContent-Length: 5\r\n"), http::status::bad_request);
  for (auto value :
       {"+5", "-5", "0x5", "5 5", "", "5,", ",5", "5, 6", "1e3", "18446744073709551616"})
    check_beast_refuses(put(std::string{"Content-Length: "} + value + "\r\n"));
  check_beast_refuses(put("Content-Length: 5\r\nContent-Length: 6\r\n"));
}

TEST_CASE("field syntax that Beast refuses", "[framing]") {
  check_beast_refuses(put("X-Note: a\nContent-Length: 0\r\n"));           // bare LF in a value
  check_beast_refuses(put("X-Note: a\rContent-Length: 0\r\n"));           // bare CR in a value
  check_beast_refuses(put("X-Note: a\0b\r\n"s));                          // NUL in a value
  check_beast_refuses(put("X-No\0te: a\r\n"s));                           // NUL in a name
  check_beast_refuses(put("Transfer-Encoding : chunked\r\n"));            // space before the colon
  check_beast_refuses(put("Content-Length\t: 5\r\n"));                    // tab before the colon
  check_beast_refuses("PUT /a HTTP/1.1\nHost: x\nContent-Length: 5\n\n"); // bare LF line ends
  check_beast_refuses("PUT /a HTTP/1.1\r\n Host: x\r\n\r\n"); // space before a first field
}

TEST_CASE("obs-fold is seen, wherever it is", "[framing]") {
  for (auto fields :
       {"X-Note: a\r\n b\r\n", "X-Note: a\r\n\tb\r\n", "Transfer-Encoding:\r\n chunked\r\n",
        "X-Note: a\r\n  \r\n", "Content-Length: 5\r\nX-Note: a\r\n b\r\n c\r\n"}) {
    INFO(fields);
    auto p = parse(put(fields));
    REQUIRE_FALSE(p.ec);
    CHECK(p.folded);
  }
}

TEST_CASE("obs-fold is seen when the head is consumed in pieces", "[framing]") {
  beast::flat_buffer buffer;
  head_buffer watched{buffer};
  auto feed = [&](std::string_view bytes) {
    auto n =
      net::buffer_copy(watched.prepare(bytes.size()), net::buffer(bytes.data(), bytes.size()));
    watched.commit(n);
    watched.consume(n);
  };
  feed("GET / HTTP/1.1\r\nX-Note: a\r");
  feed("\n");
  CHECK_FALSE(watched.folded());
  feed(" b\r\n\r\n");
  CHECK(watched.folded());
  watched.reset();
  CHECK_FALSE(watched.folded());
  feed("GET / HTTP/1.1\r\nX-Note: a b\r\n\r\n");
  CHECK_FALSE(watched.folded());
}

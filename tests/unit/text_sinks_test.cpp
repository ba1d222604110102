// Where bytes from outside reach JSON, HTML or a log line, the result is
// valid UTF-8 (SPEC §11 "Text out of bytes"): the sinks themselves, with a
// Latin-1 name and other invalid sequences.
#include "config/log.hpp"
#include "config/utf8_text.hpp"
#include "net/pages.hpp"
#include "net/responses.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <unistd.h>

using namespace portal;

namespace {

const std::string latin1 = "caf\xe9.txt";
const std::string broken = "\xed\xa0\x80 \xc0\xaf \xe2\x82";

// What the code writes to stdout while `f` runs.
template <class F>
std::string stdout_of(F f) {
  std::fflush(stdout);
  std::FILE* capture = std::tmpfile();
  REQUIRE(capture);
  int saved = dup(fileno(stdout));
  dup2(fileno(capture), fileno(stdout));
  f();
  std::fflush(stdout);
  dup2(saved, fileno(stdout));
  close(saved);
  std::string out;
  std::rewind(capture);
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, capture))
    out.append(buf, n);
  std::fclose(capture);
  return out;
}

} // namespace

TEST_CASE("a log line with bytes from outside is valid UTF-8 JSON", "[utf8]") {
  auto line = stdout_of([] {
    log::info("upload refused", {{"name", latin1}, {"other", broken}, {latin1, 1}});
  });
  CHECK(is_utf8(line));
  auto v = boost::json::parse(line);
  CHECK(v.at("name") == "caf\\xe9.txt");
  CHECK(v.at("other") == "\\xed\\xa0\\x80 \\xc0\\xaf \\xe2\\x82");
  CHECK(v.at("caf\\xe9.txt") == 1);
}

TEST_CASE("a JSON response with bytes from outside is valid UTF-8", "[utf8]") {
  auto res = error_response({error_code::unsafe_entry, "unsafe entry " + latin1});
  CHECK(is_utf8(res.body()));
  CHECK(boost::json::parse(res.body()).at("error").at("message") == "unsafe entry caf\\xe9.txt");
  auto listing =
    json_response(http::status::ok, boost::json::object{{"entries", {latin1, broken}}});
  CHECK(is_utf8(listing.body()));
}

TEST_CASE("an HTML page with bytes from outside is valid UTF-8", "[utf8]") {
  auto res = page_error({error_code::bad_request, "<b>" + latin1 + "</b>"});
  CHECK(is_utf8(res.body()));
  CHECK(res.body().find("&lt;b&gt;caf\\xe9.txt&lt;/b&gt;") != std::string::npos);
}

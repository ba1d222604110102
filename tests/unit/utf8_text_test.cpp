#include "config/utf8_text.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace portal;

namespace {

// Bytes from a string literal that may hold NULs.
template <std::size_t N>
std::string bytes(const char (&s)[N]) {
  return std::string(s, N - 1);
}

} // namespace

TEST_CASE("utf8_text copies well-formed UTF-8 unchanged", "[utf8]") {
  for (std::string s :
       {std::string(""), std::string("plain ascii.txt"), std::string("caf\xc3\xa9"),
        std::string("\xe2\x82\xac \xf0\x9f\x98\x80"), std::string("\xef\xbf\xbd"),
        std::string("\xf4\x8f\xbf\xbf"),         // U+10FFFF, the last code point
        std::string("\xed\x9f\xbf\xee\x80\x80"), // U+D7FF, U+E000: around the surrogates
        std::string("back\\slash \\xe9 stays"), bytes("controls \x01\x1f\x7f\t\n and NUL \0")}) {
    INFO(s);
    CHECK(is_utf8(s));
    CHECK(utf8_text(s) == s);
  }
}

TEST_CASE("utf8_text escapes every byte outside a well-formed sequence as \\xNN", "[utf8]") {
  struct example {
    const char* what;
    std::string in;
    std::string out; // as Python's bytes.decode("utf-8", "backslashreplace")
  };
  std::vector<example> examples = {
    {"Latin-1", "caf\xe9.txt", "caf\\xe9.txt"},
    {"lone continuation bytes",
     "a\x80\xbf"
     "b",
     "a\\x80\\xbfb"},
    {"bytes never in UTF-8", "\xc0\xc1\xf5\xff", "\\xc0\\xc1\\xf5\\xff"},
    {"overlong 2-byte slash", "\xc0\xaf", "\\xc0\\xaf"},
    {"overlong 3-byte", "\xe0\x80\xaf", "\\xe0\\x80\\xaf"},
    {"overlong 4-byte", "\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"},
    {"surrogate U+D800", "\xed\xa0\x80", "\\xed\\xa0\\x80"},
    {"surrogate U+DFFF", "\xed\xbf\xbf", "\\xed\\xbf\\xbf"},
    {"above U+10FFFF", "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},
    {"truncated at the end", "ok\xe2\x82", "ok\\xe2\\x82"},
    {"truncated before ASCII",
     "\xe2\x82"
     "A",
     "\\xe2\\x82A"},
    {"truncated 4-byte then valid", "\xf0\x9f\x98\xc3\xa9", "\\xf0\\x9f\\x98\xc3\xa9"},
    {"valid between invalid", "\xff\xc3\xa9\xff", "\\xff\xc3\xa9\\xff"},
  };
  for (const auto& e : examples) {
    INFO(e.what);
    CHECK_FALSE(is_utf8(e.in));
    auto out = utf8_text(e.in);
    CHECK(out == e.out);
    CHECK(is_utf8(out));
    CHECK(utf8_text(out) == out); // idempotent
  }
}

TEST_CASE("utf8_text turns any byte string into valid UTF-8", "[utf8]") {
  std::string all;
  for (int i = 0; i < 256; ++i)
    for (int j = 0; j < 256; j += 17)
      all += {static_cast<char>(i), static_cast<char>(j), '\xa0', '\x80'};
  CHECK(is_utf8(utf8_text(all)));
}

TEST_CASE("quoted_text shows controls and cuts long names", "[utf8]") {
  CHECK(quoted_text("a\x01"
                    "b") == "\"a\\x01b\"");
  CHECK(quoted_text("line\nbreak\tand\rreturn") == "\"line\\nbreak\\tand\\rreturn\"");
  CHECK(quoted_text("del\x7f") == "\"del\\x7f\"");
  CHECK(quoted_text("caf\xe9") == "\"caf\\xe9\"");
  CHECK(quoted_text("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(quoted_text(bytes("nul\0")) == "\"nul\\x00\"");
  CHECK(quoted_text(std::string(300, 'a')) == "\"" + std::string(200, 'a') + "\"...");
  // Never cut inside a sequence.
  std::string euros;
  for (int i = 0; i < 100; ++i)
    euros += "\xe2\x82\xac";
  auto q = quoted_text(euros, 10);
  CHECK(q == "\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"...");
}

TEST_CASE("json_text produces valid UTF-8 JSON from any strings", "[utf8]") {
  boost::json::value v = {
    {"path", "caf\xe9.txt"},
    {"list", {"ok", "\xff", boost::json::object{{"deep", "\xed\xa0\x80"}}}},
    {"key\xfe", 1},
    {"fine", "caf\xc3\xa9"},
  };
  auto text = json_text(v);
  CHECK(is_utf8(text));
  auto back = boost::json::parse(text);
  CHECK(back.at("path") == "caf\\xe9.txt");
  CHECK(back.at("list").at(1) == "\\xff");
  CHECK(back.at("list").at(2).at("deep") == "\\xed\\xa0\\x80");
  CHECK(back.at("key\\xfe") == 1);
  CHECK(back.at("fine") == "caf\xc3\xa9");
  // Valid input: exactly what Boost.JSON writes.
  boost::json::object ok{{"a", "caf\xc3\xa9 \\ \"q\""}};
  CHECK(json_text(ok) == boost::json::serialize(ok));
}

#include "net/session_cookie.hpp"

#include <catch2/catch.hpp>

using namespace portal;

namespace {

http::request_header<> with_cookies(std::initializer_list<std::string> values) {
  http::request_header<> head;
  for (const auto& v : values)
    head.insert(http::field::cookie, v);
  return head;
}

} // namespace

TEST_CASE("the session cookie is found among others", "[session_cookie]") {
  auto head = with_cookies({"theme=dark; portal_session=abc_DEF-123; other=1"});
  CHECK(find_cookie(head, "portal_session") == "abc_DEF-123");
  CHECK(find_cookie(head, "theme") == "dark");
  CHECK_FALSE(find_cookie(head, "portal"));
  CHECK_FALSE(find_cookie(head, "session"));
}

TEST_CASE("cookie lists are read leniently but never mix names up", "[session_cookie]") {
  CHECK(find_cookie(with_cookies({"  portal_session = v ;"}), "portal_session") == "v");
  CHECK(find_cookie(with_cookies({"portal_session=\"quoted\""}), "portal_session") == "quoted");
  CHECK(find_cookie(with_cookies({"a=b", "portal_session=second"}), "portal_session") == "second");
  CHECK(find_cookie(with_cookies({"portal_session=first; portal_session=second"}),
                    "portal_session") == "first");
  CHECK(find_cookie(with_cookies({"portal_session="}), "portal_session") == "");
  CHECK_FALSE(find_cookie(with_cookies({"portal_session"}), "portal_session"));
  CHECK_FALSE(find_cookie(with_cookies({";;=;portal_session_x=1"}), "portal_session"));
  CHECK_FALSE(find_cookie(with_cookies({}), "portal_session"));
}

TEST_CASE("Set-Cookie values carry the attributes SPEC §4 requires", "[session_cookie]") {
  auto dev = session_cookie(environment::development, "v", std::chrono::hours(24));
  CHECK(dev == "portal_session=v; Max-Age=86400; Path=/; HttpOnly; SameSite=Strict");
  auto prod = session_cookie(environment::production, "v", std::chrono::hours(1));
  CHECK(prod == "__Host-portal_session=v; Max-Age=3600; Path=/; HttpOnly; SameSite=Strict; Secure");
  CHECK(cleared_session_cookie(environment::production) ==
        "__Host-portal_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict; Secure");
}

#include "net/proxy_headers.hpp"

#include <catch2/catch.hpp>

using namespace portal;

namespace {

http::request_header<> head(std::initializer_list<std::pair<const char*, const char*>> fields,
                            const char* target = "/api/v1/me?x=1") {
  http::request_header<> h;
  h.method(http::verb::get);
  h.target(target);
  for (auto& [name, value] : fields)
    h.insert(name, value);
  return h;
}

} // namespace

TEST_CASE("client address: proxy headers only when the proxy is trusted", "[proxy]") {
  auto h = head({{"Fly-Client-IP", "203.0.113.7"}, {"X-Forwarded-For", "198.51.100.1"}});
  CHECK(client_address(h, "10.0.0.2", false) == "10.0.0.2");
  CHECK(client_address(h, "10.0.0.2", true) == "203.0.113.7");

  SECTION("X-Forwarded-For: the entry the proxy appended, not the client's claims") {
    auto x = head({{"X-Forwarded-For", "1.2.3.4, 5.6.7.8 , 198.51.100.9"}});
    CHECK(client_address(x, "10.0.0.2", true) == "198.51.100.9");
    auto v6 = head({{"X-Forwarded-For", "2001:db8::1"}});
    CHECK(client_address(v6, "10.0.0.2", true) == "2001:db8::1");
  }
  SECTION("garbage is ignored, never logged as an address") {
    for (auto bad : {"evil\" injected", "", "1.2.3.4.5", "<script>", "::g"}) {
      CHECK(client_address(head({{"Fly-Client-IP", bad}}), "10.0.0.2", true) == "10.0.0.2");
      CHECK(client_address(head({{"X-Forwarded-For", bad}}), "10.0.0.2", true) == "10.0.0.2");
    }
    auto fallback = head({{"Fly-Client-IP", "nonsense"}, {"X-Forwarded-For", "192.0.2.4"}});
    CHECK(client_address(fallback, "10.0.0.2", true) == "192.0.2.4");
  }
}

TEST_CASE("https redirect: production, trusted proxy, plain http, not /health", "[proxy]") {
  auto h = head({{"X-Forwarded-Proto", "http"}, {"Host", "portal.example.com"}});
  CHECK(https_redirect(h, "/api/v1/me", true, true) == "https://portal.example.com/api/v1/me?x=1");
  CHECK_FALSE(https_redirect(h, "/health", true, true));
  CHECK_FALSE(https_redirect(h, "/api/v1/me", false, true)); // development
  CHECK_FALSE(https_redirect(h, "/api/v1/me", true, false)); // untrusted header
  auto https = head({{"X-Forwarded-Proto", "https"}, {"Host", "portal.example.com"}});
  CHECK_FALSE(https_redirect(https, "/api/v1/me", true, true));
  auto upper = head({{"X-Forwarded-Proto", "HTTP"}, {"Host", "[2001:db8::1]:8080"}});
  CHECK(https_redirect(upper, "/", true, true) == "https://[2001:db8::1]:8080/api/v1/me?x=1");
  SECTION("a Host that would make the Location another URL is not followed") {
    for (auto bad : {"evil.com/@portal", "a b", "user@evil.com", ""}) {
      auto h2 = head({{"X-Forwarded-Proto", "http"}, {"Host", bad}});
      CHECK_FALSE(https_redirect(h2, "/", true, true));
    }
  }
}

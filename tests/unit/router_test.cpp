// The route table (net/router): every route by method and path, 404 and
// 405 with Allow, HEAD where GET is, and {placeholders} matched on the
// percent-encoded path and decoded one segment at a time.
#include "net/router.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace portal;

namespace {

struct expected {
  http::verb method;
  std::string path;
  std::string_view pattern;
  std::vector<std::string> params;
};

} // namespace

TEST_CASE("every route is found by its method and path", "[router]") {
  const std::vector<expected> table{
    {http::verb::get, "/health", "/health", {}},
    {http::verb::get, "/ready", "/ready", {}},
    {http::verb::get, "/", "/", {}},
    {http::verb::get, "/login", "/login", {}},
    {http::verb::post, "/login", "/login", {}},
    {http::verb::post, "/logout", "/logout", {}},
    {http::verb::get, "/static/app.js", "/static/{name}", {"app.js"}},
    {http::verb::get, "/api/v1/me", "/api/v1/me", {}},
    {http::verb::get, "/api/v1/uploads", "/api/v1/uploads", {}},
    {http::verb::put, "/api/v1/uploads/b.tar.gz", "/api/v1/uploads/{filename}", {"b.tar.gz"}},
    {http::verb::get, "/api/v1/uploads/abc", "/api/v1/uploads/{id}", {"abc"}},
    {http::verb::delete_, "/api/v1/uploads/abc", "/api/v1/uploads/{id}", {"abc"}},
    {http::verb::get, "/api/v1/uploads/abc/content", "/api/v1/uploads/{id}/content", {"abc"}},
    {http::verb::get, "/api/v1/uploads/abc/entries", "/api/v1/uploads/{id}/entries", {"abc"}},
    {http::verb::options, "/api/v1/tus/", "/api/v1/tus/", {}},
    {http::verb::options, "/api/v1/tus/abc", "/api/v1/tus/{id}", {"abc"}},
    {http::verb::post, "/api/v1/tus/", "/api/v1/tus/", {}},
    {http::verb::head, "/api/v1/tus/abc", "/api/v1/tus/{id}", {"abc"}},
    {http::verb::patch, "/api/v1/tus/abc", "/api/v1/tus/{id}", {"abc"}},
    {http::verb::delete_, "/api/v1/tus/abc", "/api/v1/tus/{id}", {"abc"}},
    {http::verb::get, "/admin/actors", "/admin/actors", {}},
    {http::verb::post, "/admin/actors/7/kill", "/admin/actors/{id}/kill", {"7"}},
    {http::verb::get, "/admin/metrics", "/admin/metrics", {}},
    {http::verb::get, "/admin/audit", "/admin/audit", {}},
  };
  for (auto& e : table) {
    INFO(http::to_string(e.method) << " " << e.path);
    auto m = match_route(e.method, e.path);
    REQUIRE(m.found != nullptr);
    CHECK(m.found->method == (e.method == http::verb::head ? http::verb::get : e.method));
    CHECK(m.found->pattern == e.pattern);
    CHECK(m.params == e.params);
  }
}

TEST_CASE("only the upload routes count as uploads", "[router]") {
  CHECK(match_route(http::verb::put, "/api/v1/uploads/a.tgz").found->upload);
  CHECK(match_route(http::verb::post, "/api/v1/tus/").found->upload);
  CHECK(match_route(http::verb::patch, "/api/v1/tus/abc").found->upload);
  for (auto [method, path] : {std::pair{http::verb::get, "/api/v1/uploads"},
                              std::pair{http::verb::head, "/api/v1/tus/abc"},
                              std::pair{http::verb::delete_, "/api/v1/tus/abc"},
                              std::pair{http::verb::options, "/api/v1/tus/"},
                              std::pair{http::verb::get, "/api/v1/uploads/abc"},
                              std::pair{http::verb::delete_, "/api/v1/uploads/abc"},
                              std::pair{http::verb::post, "/login"}}) {
    INFO(path);
    CHECK_FALSE(match_route(method, path).found->upload);
  }
}

TEST_CASE("HEAD is answered wherever GET is", "[router]") {
  auto m = match_route(http::verb::head, "/api/v1/uploads/abc/content");
  REQUIRE(m.found != nullptr);
  CHECK(m.found->method == http::verb::get);
  CHECK(m.params == std::vector<std::string>{"abc"});
  CHECK(match_route(http::verb::head, "/logout").found == nullptr);
}

TEST_CASE("no route: 404, nothing allowed", "[router]") {
  for (auto path : {"/nope", "/api/v1", "/api/v1/me/", "/api/v1/uploads/abc/content/x", "",
                    "/static", "/static/", "//health", "/HEALTH"}) {
    INFO(path);
    auto m = match_route(http::verb::get, path);
    CHECK(m.found == nullptr);
    CHECK(m.allow.empty());
  }
}

TEST_CASE("a path with other methods: 405 with Allow", "[router]") {
  struct case_ {
    http::verb method;
    const char* path;
    const char* allow;
  };
  for (auto c :
       {case_{http::verb::delete_, "/login", "GET, HEAD, POST"},
        case_{http::verb::put, "/health", "GET, HEAD"}, case_{http::verb::get, "/logout", "POST"},
        case_{http::verb::post, "/api/v1/uploads", "GET, HEAD"},
        case_{http::verb::patch, "/api/v1/uploads/x", "PUT, GET, HEAD, DELETE"},
        case_{http::verb::get, "/admin/actors/3/kill", "POST"},
        case_{http::verb::options, "/api/v1/me", "GET, HEAD"}}) {
    INFO(c.path);
    auto m = match_route(c.method, c.path);
    CHECK(m.found == nullptr);
    CHECK(m.allow == c.allow);
  }
}

TEST_CASE("placeholders are matched encoded and decoded per segment", "[router]") {
  SECTION("an encoded slash stays inside its segment") {
    auto m = match_route(http::verb::put, "/api/v1/uploads/a%2Fb.tar.gz");
    REQUIRE(m.found != nullptr);
    CHECK(m.params == std::vector<std::string>{"a/b.tar.gz"});
  }
  SECTION("escapes of any case, spaces, dots and non-ASCII bytes") {
    CHECK(match_route(http::verb::get, "/api/v1/uploads/%41%62c").params ==
          std::vector<std::string>{"Abc"});
    CHECK(match_route(http::verb::get, "/static/a%20b").params == std::vector<std::string>{"a b"});
    CHECK(match_route(http::verb::get, "/static/%2e%2E").params == std::vector<std::string>{".."});
    CHECK(match_route(http::verb::get, "/static/caf%C3%A9").params ==
          std::vector<std::string>{"caf\xc3\xa9"});
    CHECK(match_route(http::verb::get, "/static/%00").params ==
          std::vector<std::string>{std::string(1, '\0')});
  }
  SECTION("an invalid escape or an empty segment matches nothing") {
    for (auto path : {"/api/v1/uploads/%zz", "/api/v1/uploads/%4", "/api/v1/uploads/a%",
                      "/api/v1/uploads/", "/api/v1/uploads//content"}) {
      INFO(path);
      auto m = match_route(http::verb::get, path);
      CHECK(m.found == nullptr);
      CHECK(m.allow.empty());
    }
  }
  SECTION("literal segments are not decoded") {
    CHECK(match_route(http::verb::get, "/api/v1/%6De").found == nullptr);
    CHECK(match_route(http::verb::get, "/%68ealth").found == nullptr);
  }
}

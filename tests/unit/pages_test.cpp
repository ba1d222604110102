// net/pages and net/static_assets: the page templates of web/ and the
// content-hashed names of the static files they link.
#include "net/pages.hpp"
#include "net/static_assets.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>

using namespace portal;

namespace {

// Every fill a handler passes to any page (net/*_handlers.cpp, page_error).
const page_fills every_fill{{"csrf_token", "t0ken"}, {"username", "alice"}, {"role", "uploader"},
                            {"error", "bad"},        {"retry_after", "42"}, {"status", "404"},
                            {"message", "gone"}};

bool is_page(std::string_view name) {
  return name.size() > 5 && name.substr(name.size() - 5) == ".html" &&
         name.find('/') == std::string_view::npos;
}

} // namespace

TEST_CASE("static files get their content's hash in their name", "[pages]") {
  CHECK(hashed_name("app.js", "x") == "app.2d711642b726.js"); // sha256("x") = 2d711642b726b044...
  CHECK(hashed_name("tus.min.js", "x") == "tus.min.2d711642b726.js");
  CHECK(hashed_name("LICENSE", "x") == "LICENSE.2d711642b726");
  CHECK(hashed_name("app.js", "y") != hashed_name("app.js", "x"));
}

TEST_CASE("every page renders with no placeholder left and links existing assets", "[pages]") {
  std::set<std::string> pages;
  for (const auto& f : embedded_asset_files())
    if (is_page(f.name))
      pages.insert(std::string{f.name.substr(0, f.name.size() - 5)});
  CHECK(pages == std::set<std::string>{"admin", "error", "index", "login", "uploads"});
  const std::regex asset_link{R"re((href|src)="(/static/[^"]+)")re"};
  for (const auto& page : pages) {
    INFO(page);
    auto html = render_page(page, every_fill);
    CHECK(html.find("{{") == std::string::npos);
    CHECK(html.find("}}") == std::string::npos);
    int links = 0;
    for (std::sregex_iterator it{html.begin(), html.end(), asset_link}, end; it != end; ++it) {
      auto url = (*it)[2].str();
      ++links;
      // A hashed name of an embedded static file, never the plain one.
      CHECK(std::regex_match(url,
                             std::regex{R"re(/static/[A-Za-z0-9_.-]+\.[0-9a-f]{12}\.(css|js))re"}));
    }
    CHECK(links >= 1); // at least the stylesheet
  }
}

TEST_CASE("asset URLs are the hashed names of embedded files", "[pages]") {
  auto url = asset_url("static/tus.min.js");
  auto content = embedded_asset("static/tus.min.js");
  CHECK(url == "/static/" + hashed_name("tus.min.js", content));
  // The vendored bundle from npm, with its license in front.
  CHECK(content.substr(0, 22) == "/*! tus-js-client 4.3.");
  CHECK(content.find("sourceMappingURL") == std::string_view::npos);
  CHECK_THROWS_AS(asset_url("static/missing.js"), std::out_of_range);
  CHECK_THROWS_AS(asset_url("login.html"), std::out_of_range);
}

TEST_CASE("fills are HTML-escaped and never expanded again", "[pages]") {
  auto html =
    render_page("login", {{"error", "<script>\"'&{{static/portal.css}}"}, {"retry_after", ""}});
  CHECK(html.find("&lt;script&gt;&quot;&#39;&amp;{{static/portal.css}}") != std::string::npos);
  CHECK(html.find("<script>\"") == std::string::npos);
}

TEST_CASE("partials are rendered with the page's fills", "[pages]") {
  auto html = render_page("uploads", every_fill);
  CHECK(html.find(R"(<strong id="username">alice</strong>)") != std::string::npos);
  CHECK(html.find(R"(<body data-role="uploader">)") != std::string::npos);
  CHECK(html.find(R"(<meta name="csrf-token" content="t0ken">)") != std::string::npos);
}

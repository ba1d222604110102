#include "net/pages.hpp"

#include "config/utf8_text.hpp"
#include "net/error_table.hpp"
#include "net/static_assets.hpp"

#include <algorithm>

namespace portal {

namespace {

// Valid UTF-8 first (SPEC §11 "Text out of bytes"), then the five
// characters that are markup.
std::string html_escaped(std::string_view bytes) {
  std::string out;
  for (char c : utf8_text(bytes)) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

void render_into(std::string& out, std::string_view html, const page_fills& fills, bool partial) {
  std::size_t at = 0;
  for (;;) {
    auto open = html.find("{{", at);
    auto close = open == std::string_view::npos ? open : html.find("}}", open + 2);
    if (close == std::string_view::npos) {
      out.append(html.substr(at));
      return;
    }
    out.append(html.substr(at, open - at));
    auto key = html.substr(open + 2, close - open - 2);
    at = close + 2;
    if (key.substr(0, 2) == "> " && !partial) {
      auto name = std::string{"partials/"}.append(key.substr(2)).append(".html");
      render_into(out, embedded_asset(name), fills, true);
    } else if (key.substr(0, 7) == "static/") {
      out += asset_url(key);
    } else if (auto fill = std::find_if(fills.begin(), fills.end(),
                                        [key](const auto& f) { return f.first == key; });
               fill != fills.end()) {
      out += html_escaped(fill->second);
    } else {
      out.append(html.substr(open, at - open));
    }
  }
}

} // namespace

std::string render_page(std::string_view page, const page_fills& fills) {
  std::string out;
  render_into(out, embedded_asset(std::string{page} + ".html"), fills, false);
  return out;
}

response page_response(http::status status, std::string_view page, const page_fills& fills) {
  auto html = render_page(page, fills);
  response res{status, 11};
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(html);
  res.prepare_payload();
  return res;
}

response page_error(const failure& f) {
  auto status = http_error_of(f.code).status;
  auto res = page_response(status, "error",
                           {{"status", std::to_string(static_cast<unsigned>(status)) + " " +
                                         std::string{http::obsolete_reason(status)}},
                            {"message", f.message}});
  set_error_head(res, f.code);
  return res;
}

response redirect_response(std::string_view location) {
  response res{http::status::see_other, 11};
  res.set(http::field::location, location);
  res.set(http::field::cache_control, "no-store");
  res.prepare_payload();
  return res;
}

} // namespace portal

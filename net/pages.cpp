#include "net/pages.hpp"

#include "config/utf8_text.hpp"
#include "net/error_table.hpp"
#include "net/static_assets.hpp"

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

} // namespace

response page_response(http::status status, std::string_view page, const page_fills& fills) {
  std::string html{embedded_asset(std::string{page} + ".html")};
  for (const auto& [name, value] : fills) {
    auto placeholder = "{{" + std::string{name} + "}}";
    for (auto at = html.find(placeholder); at != std::string::npos;
         at = html.find(placeholder, at)) {
      auto escaped = html_escaped(value);
      html.replace(at, placeholder.size(), escaped);
      at += escaped.size();
    }
  }
  response res{status, 11};
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(html);
  res.prepare_payload();
  return res;
}

response page_error(const failure& f) {
  auto status = http_error_of(f.code).status;
  auto res = page_response(
    status, "error",
    {{"status", std::to_string(static_cast<unsigned>(status))}, {"message", f.message}});
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

// The files of web/, compiled into the binary (web/embed_assets.cmake):
// pages (*.html, filled in by net/pages) and static files (/static/...).
#pragma once

#include "net/exchange.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace portal {

struct embedded_file {
  std::string_view name; // relative to web/, e.g. "static/app.js"
  std::string_view content;
};

// Generated.
const std::vector<embedded_file>& embedded_asset_files();

// The content of web/<name>; throws std::out_of_range for a name that is not
// there (a page the code asks for must exist: a build bug, not a 404).
std::string_view embedded_asset(std::string_view name);

namespace handlers {
// GET /static/{name}: Content-Type by extension, a strong ETag, 304 for
// If-None-Match; every response carries the security headers like any other.
void static_file(const services& svc, exchange_ptr ex);
} // namespace handlers

} // namespace portal

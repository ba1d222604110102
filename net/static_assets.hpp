// The files of web/, compiled into the binary (web/embed_assets.cmake):
// pages (*.html, filled in by net/pages) and static files (/static/...),
// among them the build's vendored npm bundles (web/package-lock.json).
//
// Static files are served under content-hashed names only
// (static/portal.css -> /static/portal.<12 hex of its SHA-256>.css), cached
// by browsers for a year as immutable: a new binary with other content has
// other names, and pages (never cached) link the names of their binary.
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

// The URL a page links web/<name> by, e.g. "static/app.js" ->
// "/static/app.3f2a1b9c0d4e.js"; throws std::out_of_range for a name that is
// not a static file.
const std::string& asset_url(std::string_view name);

// The hashed name of a file: the first 12 hex digits of its SHA-256 before
// its last extension ("tus.min.js" -> "tus.min.<hash>.js").
std::string hashed_name(std::string_view name, std::string_view content);

namespace handlers {
// GET /static/{hashed name}: Content-Type by extension, a strong ETag, 304
// for If-None-Match, Cache-Control immutable for a year; every response
// carries the security headers like any other.
void static_file(const services& svc, exchange_ptr ex);
} // namespace handlers

} // namespace portal

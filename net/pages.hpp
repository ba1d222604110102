// HTML answers (SPEC §11: page paths answer HTML): the pages of web/*.html
// with their `{{name}}` placeholders filled in, error pages and redirects.
#pragma once

#include "config/error_code.hpp"
#include "net/http.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portal {

using page_fills = std::vector<std::pair<std::string_view, std::string>>;

// web/<page>.html with its placeholders replaced, in one pass:
//   {{name}}          the fill of that name, HTML-escaped;
//   {{static/x.js}}   the hashed URL of web/static/x.js (net/static_assets);
//   {{> name}}        web/partials/<name>.html, its placeholders replaced too.
// A placeholder that is none of these stays as it is. Pages are never
// cached: they may carry a CSRF token, and they name the static files of
// the binary that serves them.
std::string render_page(std::string_view page, const page_fills& fills = {});
response page_response(http::status status, std::string_view page, const page_fills& fills = {});

// web/error.html with the failure's message, and its code's status and
// headers from net/error_table (like error_response, as a page).
response page_error(const failure& f);

// 303 See Other (after a form, and for anonymous page requests).
response redirect_response(std::string_view location);

} // namespace portal

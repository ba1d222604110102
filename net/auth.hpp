// Who is calling (SPEC §4): an API token (`Authorization: Bearer`) or, without
// one, the browser's session cookie, looked up through the db actors. A
// cookie-authenticated POST/PUT/PATCH/DELETE must also carry the session's
// CSRF token in `X-CSRF-Token` (SPEC §11); a bearer token needs none, since
// a browser never attaches it by itself. Refusals are answered here: for the
// API 401 + WWW-Authenticate: Bearer, 403 (no CSRF token, not an admin), 503
// (database away); for pages a 303 to /login instead of the 401.
#pragma once

#include "net/exchange.hpp"

#include <functional>

namespace portal {

enum class access {
  anyone,     // /health, /ready, static assets, the login page and form
  user,       // /api/*: any signed-in caller
  admin,      // /admin/*: an admin
  page,       // an HTML page or form of a signed-in user
  admin_page, // an HTML page for admins: anonymous 303 /login, others 403 HTML (SPEC §11)
};

// Page paths answer HTML: a redirect to /login and error pages.
constexpr bool is_page(access who) {
  return who == access::page || who == access::admin_page;
}

// Calls `next` with ex->user set when the caller may proceed.
void authenticate(const services& svc, exchange_ptr ex, access who,
                  std::function<void(exchange_ptr)> next);

} // namespace portal

#include "net/responses.hpp"

#include "config/utf8_text.hpp"
#include "net/error_table.hpp"
#include "net/exchange.hpp"

#include <boost/json.hpp>

namespace portal {

response json_response(http::status status, const boost::json::value& body) {
  response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = json_text(body);
  res.prepare_payload();
  return res;
}

response error_response(const failure& f, std::optional<unsigned> retry_after_seconds) {
  auto res = json_response(http_error_of(f.code).status,
                           {{"error", {{"code", to_string(f.code)}, {"message", f.message}}}});
  set_error_head(res, f.code, retry_after_seconds);
  return res;
}

response db_failure_response(db_failure f) {
  if (f == db_failure::error)
    return error_response({error_code::internal, "internal error"});
  return error_response({error_code::unavailable, "the database is unavailable, retry later"});
}

response no_such_upload() {
  return error_response({error_code::not_found, "no such upload"});
}

void add_security_headers(http::response_header<>& res, environment env) {
  // No inline script anywhere: the UI loads its scripts from /static.
  res.set("Content-Security-Policy",
          "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
          "frame-ancestors 'none'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  // Not no-referrer: under it browsers send "Origin: null" with a form's
  // POST, and POST /login refuses a null Origin (SPEC §11). same-origin
  // still tells other sites nothing.
  res.set("Referrer-Policy", "same-origin");
  res.set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()");
  res.set("Cross-Origin-Opener-Policy", "same-origin");
  if (env == environment::production)
    res.set(http::field::strict_transport_security, "max-age=63072000; includeSubDomains");
}

} // namespace portal

namespace portal {

response exchange::internal_error() {
  return error_response({error_code::internal, "internal error"});
}

} // namespace portal

#include "net/responses.hpp"

#include "config/utf8_text.hpp"
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

response error_response(http::status status, std::string_view code, std::string_view message) {
  boost::json::object err;
  err["code"] = code;
  err["message"] = message;
  return json_response(status, boost::json::object{{"error", std::move(err)}});
}

response unavailable_response(std::string_view message, int retry_after_seconds) {
  auto res = error_response(http::status::service_unavailable, "unavailable", message);
  res.set(http::field::retry_after, std::to_string(retry_after_seconds));
  return res;
}

response db_failure_response(db_failure f) {
  if (f == db_failure::error)
    return error_response(http::status::internal_server_error, "internal", "internal error");
  return unavailable_response("the database is unavailable, retry later");
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
  return error_response(http::status::internal_server_error, "internal", "internal error");
}

} // namespace portal

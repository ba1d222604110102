// Building responses: the JSON error shape of SPEC §5.3 and the headers every
// response carries (SPEC §8).
#pragma once

#include "actors/db_request.hpp"
#include "config/config.hpp"
#include "net/http.hpp"

#include <boost/json/value.hpp>

#include <string_view>

namespace portal {

response json_response(http::status status, const boost::json::value& body);

// {"error": {"code": "...", "message": "..."}}
response error_response(http::status status, std::string_view code, std::string_view message);

// 503 with Retry-After, for "database or storage unavailable".
response unavailable_response(std::string_view message, int retry_after_seconds = 5);

// A database request that failed: 500 for an error, else 503 + Retry-After.
response db_failure_response(db_failure f);

// SPEC §8 security headers; HSTS only in production.
void add_security_headers(http::response_header<>& res, environment env);

} // namespace portal

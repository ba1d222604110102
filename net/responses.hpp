// Building responses: the JSON error shape of SPEC §5.3 and the headers every
// response carries (SPEC §8).
#pragma once

#include "actors/db_request.hpp"
#include "config/config.hpp"
#include "config/error_code.hpp"
#include "net/http.hpp"

#include <boost/json/value.hpp>

#include <optional>

namespace portal {

response json_response(http::status status, const boost::json::value& body);

// The one writer of the error body {"error": {"code": "...", "message": "..."}}
// (SPEC §5.3), with the status, Retry-After and Connection of its code
// (net/error_table). `retry_after_seconds` replaces the table's Retry-After
// where the caller knows the wait (the next upload slot, a login lock).
response error_response(const failure& f, std::optional<unsigned> retry_after_seconds = {});

// A database request that failed: internal for an error, else unavailable
// (503 + Retry-After).
response db_failure_response(db_failure f);

// 404 for an upload id that does not exist or is not the caller's (SPEC §4).
response no_such_upload();

// SPEC §8 security headers; HSTS only in production.
void add_security_headers(http::response_header<>& res, environment env);

} // namespace portal

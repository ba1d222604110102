// The one place where an error code becomes HTTP (SPEC §5.2, §5.3, §11):
// its status and the headers that go with it. Everything below net/ speaks
// only portal::error_code; every JSON error body and error page takes its
// status from here (net/responses.hpp writes them).
#pragma once

#include "config/error_code.hpp"
#include "net/http.hpp"

#include <optional>

namespace portal {

struct http_error {
  error_code code;
  http::status status;
  // Retry-After in seconds (0: none); a caller that knows better (the time
  // until the next upload slot or login) passes its own.
  unsigned retry_after = 0;
  // Connection: close, because the request's body may still be arriving
  // and will not be read (SPEC §5.3: a body past the limit).
  bool close = false;
};

// The row of `code`. Total: every code has one (tests/unit/error_table_test).
const http_error& http_error_of(error_code code);

// Gives an answer (a JSON error or an HTML page) the status, Retry-After and
// Connection of `code`. `retry_after_seconds` replaces the table's
// Retry-After where the caller knows the wait (the next upload slot, a login
// lock).
void set_error_head(response& res, error_code code,
                    std::optional<unsigned> retry_after_seconds = {});

} // namespace portal

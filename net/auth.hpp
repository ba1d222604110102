// Who is calling: `Authorization: Bearer <token>` looked up through the
// db actors. Refusals are answered here: 401 + WWW-Authenticate: Bearer
// (anything wrong with the token), 403 (not an admin), 503 (database away).
#pragma once

#include "net/exchange.hpp"

#include <functional>

namespace portal {

// Calls `next` with ex->user set when the caller may proceed.
void authenticate(const services& svc, exchange_ptr ex, bool admin_only,
                  std::function<void(exchange_ptr)> next);

} // namespace portal

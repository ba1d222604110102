// The request handlers, one small function per endpoint.
#pragma once

#include "net/exchange.hpp"

namespace portal::handlers {

void health(const services& svc, exchange_ptr ex); // GET /health (SPEC §7)
void ready(const services& svc, exchange_ptr ex);  // GET /ready  (SPEC §7, §11)
void me(const services& svc, exchange_ptr ex);     // GET /api/v1/me (SPEC §6)

} // namespace portal::handlers

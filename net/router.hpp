// Which handler answers a request: a table of (method, path pattern) rows.
// Patterns are literal segments and `{name}` placeholders, matched against
// the percent-decoded path. A path that matches with another method gets 405
// with Allow; no match, 404.
#pragma once

#include "net/auth.hpp"
#include "net/exchange.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace portal {

struct route {
  http::verb method;
  std::string_view pattern;
  access who;
  handler_fn handler;
  // An upload request: it counts once in portal_uploads_total (SPEC §7),
  // also when refused before its body (a plain PUT; tus PATCH and POST next).
  bool upload = false;
};

struct route_match {
  const route* found = nullptr;    // null: 404 or 405
  std::vector<std::string> params; // values of {placeholders}, in order
  std::string allow;               // for 405: the methods the path accepts
};

route_match match_route(http::verb method, std::string_view path);

// Routes, authenticates and calls the handler; every refusal is answered
// here with the right status and shape.
void dispatch(const services& svc, exchange_ptr ex);
void dispatch_metrics_only(const services& svc, exchange_ptr ex);

} // namespace portal

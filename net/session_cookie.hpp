// The browser session's cookie (SPEC §4): HttpOnly, SameSite=Strict, Path=/,
// and in production Secure with the `__Host-` prefix, which a browser only
// accepts from a secure origin without a Domain attribute, so that no
// sibling subdomain can plant or shadow it.
#pragma once

#include "config/config.hpp"
#include "net/http.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace portal {

std::string_view session_cookie_name(environment env);

// The value of cookie `name` in the request's Cookie header(s); the first
// one if the browser sent several.
std::optional<std::string> find_cookie(const http::request_header<>& head, std::string_view name);

// Set-Cookie values: a new session, and one that tells the browser to forget it.
std::string session_cookie(environment env, std::string_view value, std::chrono::seconds max_age);
std::string cleared_session_cookie(environment env);

} // namespace portal

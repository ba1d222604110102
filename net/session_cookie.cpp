#include "net/session_cookie.hpp"

namespace portal {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::string attributes(environment env) {
  std::string a = "; Path=/; HttpOnly; SameSite=Strict";
  if (env == environment::production)
    a += "; Secure";
  return a;
}

} // namespace

std::string_view session_cookie_name(environment env) {
  return env == environment::production ? "__Host-portal_session" : "portal_session";
}

// RFC 6265 §5.4: "name=value" pairs separated by "; ". Beast parses headers
// but not this list; anything that is not a pair is skipped.
std::optional<std::string> find_cookie(const http::request_header<>& head, std::string_view name) {
  for (const auto& field : head) {
    if (field.name() != http::field::cookie)
      continue;
    std::string_view rest = field.value();
    while (!rest.empty()) {
      auto end = rest.find(';');
      auto pair = trim(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
        auto value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
          value = value.substr(1, value.size() - 2);
        return std::string{value};
      }
    }
  }
  return std::nullopt;
}

std::string session_cookie(environment env, std::string_view value, std::chrono::seconds max_age) {
  return std::string{session_cookie_name(env)} + "=" + std::string{value} +
         "; Max-Age=" + std::to_string(max_age.count()) + attributes(env);
}

std::string cleared_session_cookie(environment env) {
  return std::string{session_cookie_name(env)} + "=; Max-Age=0" + attributes(env);
}

} // namespace portal

#include "net/auth.hpp"

#include "actors/db_request.hpp"
#include "net/responses.hpp"

#include <boost/beast/core/string.hpp>

namespace portal {

namespace {

response unauthorized() {
  auto res = error_response(http::status::unauthorized, "unauthorized",
                            "a valid API token is required (Authorization: Bearer <token>)");
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

// The token from "Bearer <token>" (scheme case-insensitive), or empty.
std::string bearer_token(const http::request_header<>& head) {
  auto value = head[http::field::authorization];
  constexpr std::string_view scheme = "bearer ";
  if (value.size() <= scheme.size() || !beast::iequals(value.substr(0, scheme.size()), scheme))
    return {};
  auto token = value.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  return std::string{token};
}

} // namespace

void authenticate(const services& svc, exchange_ptr ex, bool admin_only,
                  std::function<void(exchange_ptr)> next) {
  auto token = bearer_token(ex->head);
  if (token.empty())
    return ex->reply(unauthorized());
  using found = std::optional<db::identity>;
  auto query = [token](pqxx::work& tx) { return db::identity_for_token(tx, token); };
  auto done = [ex, admin_only, next = std::move(next)](db_outcome<found> outcome) {
    if (auto* failure = std::get_if<db_failure>(&outcome))
      return ex->reply(db_failure_response(*failure));
    auto& who = std::get<found>(outcome);
    if (!who)
      return ex->reply(unauthorized());
    if (admin_only && who->role != "admin")
      return ex->reply(error_response(http::status::forbidden, "forbidden", "admin role required"));
    ex->user = std::move(who);
    next(std::move(ex));
  };
  submit(*svc.directory, make_db_request<found>("authenticate", ex->db_deadline(svc.cfg),
                                                std::move(query), std::move(done)));
}

} // namespace portal

// The admin dashboard's read-only view of users and API tokens (SPEC §7
// GET /admin). What a token grants is its secret, which only its hash
// stands for in the database: neither ever leaves it.
#include "db/account_overview.hpp"
#include "db/tokens.hpp"
#include "net/db_answer.hpp"
#include "net/handlers.hpp"
#include "net/responses.hpp"

#include <boost/json.hpp>

namespace portal::handlers {

namespace {

boost::json::value optional_json(const std::optional<std::string>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

} // namespace

// {"users": [{"username", "role", "disabled", "has_password", "created_at",
// "quota_bytes" (effective; null: none), "uploads", "stored_bytes",
// "active_tokens", "last_login"}...]}
void admin_users(const services& svc, exchange_ptr ex) {
  auto query = [](pqxx::work& tx) { return db::list_user_overview(tx); };
  auto server_quota = svc.cfg.user_quota_bytes;
  with_db<std::vector<db::user_overview>>(
    svc, ex, db::sql::users_overview, query,
    [ex, server_quota](const std::vector<db::user_overview>& users) {
      boost::json::array out;
      for (auto& u : users) {
        auto quota = u.quota.value_or(server_quota);
        out.push_back({{"username", u.username},
                       {"role", u.role},
                       {"disabled", u.disabled},
                       {"has_password", u.has_password},
                       {"created_at", u.created_at},
                       {"quota_bytes", quota ? boost::json::value(quota) : nullptr},
                       {"uploads", u.uploads},
                       {"stored_bytes", u.stored_bytes},
                       {"active_tokens", u.active_tokens},
                       {"last_login", optional_json(u.last_login)}});
      }
      ex->reply(json_response(http::status::ok, {{"users", std::move(out)}}));
    });
}

// {"tokens": [{"id", "user", "name", "created_at", "expires_at",
// "last_used_at", "state"}...]}, newest first. The id is the public half
// that `token revoke ID` takes.
void admin_tokens(const services& svc, exchange_ptr ex) {
  auto query = [](pqxx::work& tx) { return db::list_tokens(tx, std::nullopt); };
  with_db<std::vector<db::token_row>>(
    svc, ex, db::sql::list_tokens, query, [ex](const std::vector<db::token_row>& tokens) {
      boost::json::array out;
      for (auto t = tokens.rbegin(); t != tokens.rend(); ++t)
        out.push_back({{"id", t->id},
                       {"user", t->username},
                       {"name", t->name},
                       {"created_at", t->created_at},
                       {"expires_at", optional_json(t->expires_at)},
                       {"last_used_at", optional_json(t->last_used_at)},
                       {"state", t->state}});
      ex->reply(json_response(http::status::ok, {{"tokens", std::move(out)}}));
    });
}

} // namespace portal::handlers

#include "net/handlers.hpp"

#include "actors/db_request.hpp"
#include "db/migrate.hpp"
#include "db/quota.hpp"
#include "net/db_answer.hpp"
#include "net/responses.hpp"
#include "storage/data_dir.hpp"

#include <boost/json.hpp>

namespace portal::handlers {

void health(const services&, exchange_ptr ex) {
  ex->reply(json_response(http::status::ok, {{"status", "ok"}}));
}

// The database check reads the schema's version, which is also its round
// trip: a database behind this binary's migrations is not ready, since the
// statements of a request may call what only a later migration makes (a
// binary started before `migrate` ran). A newer schema is ready: a rolled
// back deploy runs on the additive migrations of the one it replaced.
void ready(const services& svc, exchange_ptr ex) {
  auto storage = storage::probe_data_dir(svc.cfg.data_dir, svc.cfg.min_free_bytes);
  auto query = [](pqxx::work& tx) { return db::applied_version(tx); };
  auto done = [ex, storage](db_outcome<int> outcome) {
    std::string database = "ok";
    if (auto* failure = std::get_if<db_failure>(&outcome))
      database = std::string{"database "} + to_string(*failure);
    else if (int needs = db::latest_migration_version(); std::get<int>(outcome) < needs)
      database = "database schema at version " + std::to_string(std::get<int>(outcome)) +
                 ", this server needs " + std::to_string(needs) + ": run upload-portal migrate";
    bool ok = database == "ok" && storage == "ok";
    boost::json::object body{{"status", ok ? "ok" : "unavailable"},
                             {"checks", {{"database", database}, {"storage", storage}}}};
    ex->reply(json_response(ok ? http::status::ok : http::status::service_unavailable, body));
  };
  submit(*svc.directory,
         make_db_request<int>(std::string{db::sql::schema_version.name}, ex->db_deadline(svc.cfg),
                              std::move(query), std::move(done)));
}

void me(const services& svc, exchange_ptr ex) {
  auto user_id = ex->user->user_id;
  auto quota = db::effective_quota(*ex->user, svc.cfg.user_quota_bytes);
  auto query = [user_id](pqxx::work& tx) { return db::stored_bytes(tx, user_id); };
  auto max_upload = svc.cfg.max_upload_bytes;
  with_db<uint64_t>(
    svc, ex, db::sql::stored_bytes, query, [ex, quota, max_upload](uint64_t stored) {
      // csrf_token belongs to cookie sessions; a bearer caller needs none, so
      // it is null then. quota_bytes null: no quota. max_upload_bytes lets a
      // client refuse an oversize file before sending a byte of it.
      boost::json::object body{{"username", ex->user->username}, {"role", ex->user->role},
                               {"csrf_token", nullptr},          {"quota_bytes", nullptr},
                               {"used_bytes", stored},           {"max_upload_bytes", max_upload}};
      if (quota > 0)
        body["quota_bytes"] = quota;
      if (!ex->user->csrf_token.empty())
        body["csrf_token"] = ex->user->csrf_token;
      ex->reply(json_response(http::status::ok, body));
    });
}

} // namespace portal::handlers

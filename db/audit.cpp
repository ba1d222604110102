#include "db/audit.hpp"

#include "config/utf8_text.hpp"

#include <boost/json/parse.hpp>

namespace portal::db {

void record_audit(pqxx::transaction_base& tx, const audit_actor& actor, const std::string& event,
                  const boost::json::object& detail) {
  tx.exec_params0("INSERT INTO audit_events (event, user_id, username, ip, request_id, detail)"
                  " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
                  event, actor.user_id, actor.username, actor.ip, actor.request_id,
                  json_text(detail));
}

std::vector<audit_event> list_audit(pqxx::transaction_base& tx, unsigned limit) {
  auto rows = tx.exec_params(
    "SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), event,"
    " username, ip, request_id, detail::text"
    " FROM audit_events ORDER BY time DESC, id DESC LIMIT $1",
    limit);
  std::vector<audit_event> out;
  for (const auto& r : rows) {
    audit_event e;
    e.time = r[0].as<std::string>();
    e.event = r[1].as<std::string>();
    if (!r[2].is_null())
      e.user = r[2].as<std::string>();
    if (!r[3].is_null())
      e.ip = r[3].as<std::string>();
    if (!r[4].is_null())
      e.request_id = r[4].as<std::string>();
    e.detail = boost::json::parse(r[5].as<std::string>()).as_object();
    out.push_back(std::move(e));
  }
  return out;
}

boost::json::object to_json(const audit_event& e) {
  auto nullable = [](const std::optional<std::string>& v) -> boost::json::value {
    if (v)
      return boost::json::value(*v);
    return nullptr;
  };
  return {{"time", e.time},
          {"event", e.event},
          {"user", nullable(e.user)},
          {"ip", nullable(e.ip)},
          {"request_id", nullable(e.request_id)},
          {"detail", e.detail}};
}

} // namespace portal::db

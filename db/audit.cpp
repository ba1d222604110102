#include "db/audit.hpp"

#include "config/utf8_text.hpp"

#include <boost/json/parse.hpp>

namespace portal::db {

namespace sql {

const query insert_audit_event{"insert_audit_event", R"(
  INSERT INTO audit_events (event, user_id, username, ip, request_id, detail)
  VALUES ($1, $2, $3, $4, $5, $6::jsonb))"};

const query list_audit_events{"list_audit_events", R"(
  SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time, event,
  username, ip, request_id, detail::text AS detail
  FROM audit_events ORDER BY audit_events.time DESC, id DESC LIMIT $1)"};

} // namespace sql

void record_audit(pqxx::transaction_base& tx, const audit_actor& actor, const std::string& event,
                  const boost::json::object& detail) {
  exec0(tx, sql::insert_audit_event, event, actor.user_id, actor.username, actor.ip,
        actor.request_id, json_text(detail));
}

std::vector<audit_event> list_audit(pqxx::transaction_base& tx, unsigned limit) {
  std::vector<audit_event> out;
  for (const auto& r : exec(tx, sql::list_audit_events, limit)) {
    audit_event e;
    e.time = r["time"].as<std::string>();
    e.event = r["event"].as<std::string>();
    e.user = optional_text(r["username"]);
    e.ip = optional_text(r["ip"]);
    e.request_id = optional_text(r["request_id"]);
    e.detail = boost::json::parse(r["detail"].as<std::string>()).as_object();
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

// The audit trail (SPEC §7 /admin/audit): who did what, when, from where.
// Rows are written inside the transaction of the change they record, so a
// change and its audit row commit or roll back together.
#pragma once

#include "db/query.hpp"

#include <boost/json/object.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace portal::db {

// The statements of record_audit and list_audit: they label the db requests
// that run them.
namespace sql {
extern const query insert_audit_event; // record_audit
extern const query list_audit_events;  // list_audit
} // namespace sql

// Who performed an audited change. The CLI acts as username "cli" with no IP
// and no request id; a web request fills in all fields.
struct audit_actor {
  std::optional<int64_t> user_id;
  std::optional<std::string> username;
  std::optional<std::string> ip;
  std::optional<std::string> request_id;

  static audit_actor cli() { return audit_actor{std::nullopt, std::string("cli"), {}, {}}; }
};

// Inserts one audit_events row in tx (so it commits or rolls back with the
// change it records). `detail` must never hold a secret.
void record_audit(pqxx::transaction_base& tx, const audit_actor& actor, const std::string& event,
                  const boost::json::object& detail);

struct audit_event {
  std::string time; // RFC 3339 UTC, microseconds
  std::string event;
  std::optional<std::string> user;
  std::optional<std::string> ip;
  std::optional<std::string> request_id;
  boost::json::object detail;
};

// The newest `limit` events, newest first.
std::vector<audit_event> list_audit(pqxx::transaction_base& tx, unsigned limit);

boost::json::object to_json(const audit_event& e);

} // namespace portal::db

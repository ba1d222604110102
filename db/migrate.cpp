#include "db/migrate.hpp"

#include "config/crypto.hpp"
#include "db/query.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>

namespace portal::db {

namespace sql {

const query migrate_lock{"migrate_lock", "SELECT pg_advisory_lock($1)"};
const query migrate_unlock{"migrate_unlock", "SELECT pg_advisory_unlock($1)"};

const query create_schema_migrations{"create_schema_migrations", R"(
  CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()))"};

const query read_schema_migrations{"read_schema_migrations",
                                   "SELECT version, name, checksum FROM schema_migrations"};

const query record_migration{"record_migration", R"(
  INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3))"};

const query schema_version{"schema_version",
                           "SELECT coalesce(max(version), 0) AS version FROM schema_migrations"};

// A statement naming a missing table fails when parsed, whatever branch it
// is in: whether the history exists is asked first.
const query has_schema_migrations{
  "has_schema_migrations", "SELECT to_regclass('schema_migrations') IS NOT NULL AS present"};

} // namespace sql

namespace {

// Any fixed 64-bit value unique to this application: the bytes of "uportal1".
constexpr int64_t migrate_lock_key = 0x75706f7274616c31;

// "0001_initial", as the file was named.
std::string label(const migration& m) {
  char number[16];
  std::snprintf(number, sizeof number, "%04d", m.version);
  return number + ("_" + m.name);
}

struct applied_row {
  std::string name;
  std::string checksum;
};

// The advisory lock is session-level: it belongs to this connection and is
// held across the per-migration transactions below. That would be wrong
// through PgBouncer in transaction mode (the lock could land on a backend
// another client then uses), which is why `migrate` connects with
// DATABASE_DIRECT_URL when it is set (SPEC §3) and why nothing else in the
// application uses session state. Closing the connection also releases it,
// so a crashed migrate cannot leave the lock behind.
class advisory_lock {
public:
  explicit advisory_lock(pqxx::connection& conn) : conn_(conn) {
    pqxx::nontransaction tx(conn_);
    exec(tx, sql::migrate_lock, migrate_lock_key);
  }
  ~advisory_lock() {
    try {
      pqxx::nontransaction tx(conn_);
      exec(tx, sql::migrate_unlock, migrate_lock_key);
    } catch (...) {
      // The connection is gone or broken: the server released the lock.
    }
  }
  advisory_lock(const advisory_lock&) = delete;
  advisory_lock& operator=(const advisory_lock&) = delete;

private:
  pqxx::connection& conn_;
};

// Created under the lock: CREATE TABLE IF NOT EXISTS is not safe against a
// concurrent identical statement (both may try to insert the catalog row).
void ensure_history_table(pqxx::connection& conn) {
  pqxx::work tx(conn);
  exec0(tx, sql::create_schema_migrations);
  tx.commit();
}

std::map<int, applied_row> read_history(pqxx::connection& conn) {
  pqxx::work tx(conn);
  std::map<int, applied_row> rows;
  for (const auto& row : exec(tx, sql::read_schema_migrations)) {
    rows[row["version"].as<int>()] =
      applied_row{row["name"].as<std::string>(), row["checksum"].as<std::string>()};
  }
  tx.commit();
  return rows;
}

// An applied migration whose text changed means the database and the code
// disagree about the schema; applying later migrations on top would be a
// guess. Refuse before touching anything.
void verify_applied(const std::vector<migration>& embedded,
                    const std::map<int, applied_row>& history) {
  for (const auto& m : embedded) {
    const auto it = history.find(m.version);
    if (it != history.end() && it->second.checksum != crypto::sha256_hex(m.sql)) {
      throw std::runtime_error("migration " + label(m) +
                               " was changed after it was applied (checksum mismatch); "
                               "add a new migration instead of editing an applied one");
    }
  }
}

void apply_one(pqxx::connection& conn, const migration& m) {
  pqxx::work tx(conn);
  try {
    tx.exec(m.sql);
  } catch (const std::exception& e) {
    throw std::runtime_error("migration " + label(m) + " failed: " + e.what());
  }
  // Recorded in the same transaction: either both the schema change and its
  // record exist, or neither does.
  exec0(tx, sql::record_migration, m.version, m.name, crypto::sha256_hex(m.sql));
  tx.commit();
}

} // namespace

int applied_version(pqxx::transaction_base& tx) {
  if (!exec1(tx, sql::has_schema_migrations)["present"].as<bool>())
    return 0; // never migrated
  return exec1(tx, sql::schema_version)["version"].as<int>();
}

int latest_migration_version() {
  int latest = 0;
  for (const auto& m : embedded_migrations())
    latest = std::max(latest, m.version);
  return latest;
}

migrate_result migrate(const std::string& conninfo, std::optional<int> up_to) {
  std::vector<migration> embedded = embedded_migrations();
  std::sort(embedded.begin(), embedded.end(),
            [](const migration& a, const migration& b) { return a.version < b.version; });

  pqxx::connection conn(conninfo);
  advisory_lock lock(conn);
  ensure_history_table(conn);
  // Read after taking the lock: a concurrent run that held it before us has
  // committed its migrations, so we see them as applied and skip them.
  const auto history = read_history(conn);
  verify_applied(embedded, history);

  migrate_result result;
  for (const auto& m : embedded) {
    if (up_to && m.version > *up_to)
      break;
    if (history.count(m.version) == 0) {
      apply_one(conn, m);
      result.applied.push_back(m.version);
    }
  }
  // Versions newer than this binary knows (a rolled-back deploy) are left
  // alone and reported as the current version.
  pqxx::work tx(conn);
  result.current_version = applied_version(tx);
  tx.commit();
  return result;
}

} // namespace portal::db

// Versioned SQL migrations (db/migrations/NNNN_name.sql), compiled into the
// binary, applied in order, each in its own transaction, under a
// PostgreSQL advisory lock so concurrent `migrate` runs cannot collide.
#pragma once

#include "db/query.hpp"

#include <pqxx/pqxx>

#include <optional>
#include <string>
#include <vector>

namespace portal::db {

// The statement of applied_version(): it labels the db request that runs it.
namespace sql {
extern const query schema_version;
} // namespace sql

struct migration {
  int version = 0;  // NNNN from the file name
  std::string name; // the rest of the file name, without .sql
  std::string sql;  // the file's text
};

// Generated at build time from db/migrations/*.sql, sorted by version.
const std::vector<migration>& embedded_migrations();

struct migrate_result {
  std::vector<int> applied; // versions applied by this run, in order
  int current_version = 0;  // highest version recorded after the run
};

// Applies every pending migration, or with `up_to` only those up to that
// version (restore: the backup's schema first, its rows, then the rest).
// Throws std::exception on failure (the failing migration's transaction is
// rolled back; earlier ones stay).
migrate_result migrate(const std::string& conninfo, std::optional<int> up_to = std::nullopt);

// The highest version this binary embeds.
int latest_migration_version();

// The highest version recorded in the database (schema_migrations), 0 for
// a database never migrated. A server whose database is behind
// latest_migration_version() is not ready (SPEC §7 /ready): its statements
// may name what only a later migration makes. Throws what pqxx throws.
int applied_version(pqxx::transaction_base& tx);

} // namespace portal::db

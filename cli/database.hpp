// Which database a command connects to (SPEC §3). DATABASE_URL may point at
// PgBouncer in transaction mode, which the user and token commands are fine
// with (no session state); `migrate` holds a session-level advisory lock,
// so it uses DATABASE_DIRECT_URL, which bypasses the pooler, when set.
// Both were already checked as libpq strings when the configuration loaded.
#pragma once

#include "config/config.hpp"

#include <pqxx/connection.hxx>

#include <string>

namespace portal::cli {

// DATABASE_URL; throws db::refused when it is unset.
const std::string& app_database(const config& cfg);

// DATABASE_DIRECT_URL when set, else DATABASE_URL (refused when unset).
const std::string& direct_database(const config& cfg);

// A connection to app_database(cfg).
pqxx::connection connect_app(const config& cfg);

} // namespace portal::cli

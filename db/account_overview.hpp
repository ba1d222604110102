// The admin dashboard's read-only overview of accounts (SPEC §7 GET /admin):
// per user what they store and how they get in. Never a password hash or a
// token secret: only whether a password is set, and counts.
#pragma once

#include "db/query.hpp"

#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace portal::db {

struct user_overview {
  std::string username;
  std::string role; // "admin" | "uploader"
  bool disabled = false;
  bool has_password = false;     // false: a token-only account
  std::string created_at;        // RFC 3339 UTC
  std::optional<uint64_t> quota; // the user's own quota in bytes; null: the server's default
  uint64_t uploads = 0;          // stored archives
  uint64_t stored_bytes = 0;     // their compressed bytes
  uint64_t active_tokens = 0;    // neither revoked nor expired
  std::optional<std::string> last_login; // RFC 3339 UTC, from the audit trail
};

namespace sql {
extern const query users_overview;
} // namespace sql

// Every user, by name (case-insensitively), through sql::users_overview.
std::vector<user_overview> list_user_overview(pqxx::transaction_base& tx);

} // namespace portal::db

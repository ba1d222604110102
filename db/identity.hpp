// Who is calling: resolved from a bearer token (here) or a session cookie
// (db/sessions.hpp) inside one transaction.
#pragma once

#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portal::db {

struct identity {
  int64_t user_id = 0;
  std::string username;
  std::string role;                    // "admin" | "uploader"
  std::string token_id;                // set when authenticated by an API token
  std::string session_hash;            // set when authenticated by a session cookie
  std::string csrf_token;              // that session's CSRF token (SPEC §11)
  std::optional<uint64_t> quota_bytes; // the user's own quota; nullopt: the default
};

// Unknown, malformed, revoked, expired or disabled-user tokens: nullopt.
// The secret is compared in constant time; last_used_at is not written here
// (a read-only lookup keeps the hot path cheap).
std::optional<identity> identity_for_token(pqxx::transaction_base& tx, std::string_view token);

} // namespace portal::db

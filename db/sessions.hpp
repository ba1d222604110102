// Browser sessions (SPEC §4). The cookie carries a random id; the table holds
// only its crypto::session_key, HMAC-SHA-256(SECRET_KEY_BASE, id), so a
// database leak hands out no live session, and rotating SECRET_KEY_BASE ends
// every session at once. A
// session ends when idle too long, at its absolute age, at logout, or when
// its user is disabled; its CSRF token lives and dies with it.
#pragma once

#include "db/identity.hpp"
#include "db/query.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portal::db {

// The statements that label the db requests running these functions.
namespace sql {
extern const query session_identity; // identity_for_session
extern const query delete_session;   // end_session
} // namespace sql

struct session_policy {
  std::string key; // SECRET_KEY_BASE
  std::chrono::seconds idle{2 * 3600};
  std::chrono::seconds max_age{24 * 3600};
};

struct new_session {
  std::string cookie_value; // the secret: only ever in the Set-Cookie header
  std::string csrf_token;
};

// Also deletes the user's sessions that have expired.
new_session create_session(pqxx::transaction_base& tx, const session_policy& policy,
                           int64_t user_id, const std::string& ip, std::string_view user_agent);

// The user of the session stored under `session_key` (crypto::session_key of
// the cookie: the caller computes it), or nullopt (unknown, expired, user
// disabled). A valid session's idle expiry moves `idle` forward, never past
// its absolute expiry.
std::optional<identity> identity_for_session(pqxx::transaction_base& tx,
                                             const std::string& session_key,
                                             std::chrono::seconds idle);

// Logout: true when the session existed.
bool end_session(pqxx::transaction_base& tx, const std::string& session_hash);

} // namespace portal::db

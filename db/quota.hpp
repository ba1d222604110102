// Per-user storage quota (issue 4): how many bytes of stored archives a user
// may hold, and how many they do.
#pragma once

#include "db/audit.hpp"
#include "db/identity.hpp"
#include "db/query.hpp"

#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
#include <string>

namespace portal::db {

// The statement of stored_bytes(): it labels the db requests that run it.
namespace sql {
extern const query stored_bytes;
} // namespace sql

// The user's own quota if set, else the server's default; 0 = no quota.
inline uint64_t effective_quota(const identity& who, uint64_t server_default) {
  return who.quota_bytes.value_or(server_default);
}

// Bytes of the user's stored archives, plus the declared Upload-Length of
// their tus partials: a tus upload reserves its quota at creation (SPEC §5.2).
uint64_t stored_bytes(pqxx::transaction_base& tx, int64_t user_id);

// `user quota NAME BYTES|default`: the user's own quota (0 = none), or
// nullopt to follow the server's default. Throws refused for an unknown user.
void set_user_quota(pqxx::transaction_base& tx, const audit_actor& actor,
                    const std::string& username, std::optional<uint64_t> bytes);

} // namespace portal::db

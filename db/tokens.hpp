// API token management (SPEC §2 `token create|list|revoke`). Only the hash
// of a token's secret is stored; the token itself exists once, in the value
// create_token returns.
#pragma once

#include "db/identity.hpp"
#include "db/query.hpp"
#include "db/users.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portal::db {

// The statement whose name labels the db request that runs identity_for_token.
namespace sql {
extern const query token_identity;
extern const query touch_token;
extern const query list_tokens;
} // namespace sql

// A label: valid UTF-8, at most 200 characters (not bytes), no control
// characters (C0, DEL, C1): labels are printed in `token list` lines.
bool valid_token_label(std::string_view label);

struct created_token {
  std::string id;
  std::string token; // the secret-bearing token: show once, never log
  std::string username;
  std::string name;
  std::optional<std::string> expires_at; // RFC 3339 UTC
};

// Throws refused for an unknown or disabled user, an invalid label or a
// non-positive lifetime.
created_token create_token(pqxx::transaction_base& tx, const audit_actor& actor,
                           const std::string& username, const std::string& name,
                           std::optional<std::chrono::seconds> expires_in);

struct token_row {
  std::string id;
  std::string username;
  std::string name;
  std::string created_at;                // RFC 3339 UTC
  std::optional<std::string> expires_at; // null = never
  std::optional<std::string> last_used_at;
  // "active", "revoked", "expired" or "user-disabled" (first that applies, in
  // the order revoked, expired, user-disabled).
  std::string state;
};

// Every token (or one user's; refused if that user is unknown), oldest first.
std::vector<token_row> list_tokens(pqxx::transaction_base& tx,
                                   const std::optional<std::string>& username);

enum class revoke_outcome { revoked, already_revoked };

// Throws refused when no token has that id.
revoke_outcome revoke_token(pqxx::transaction_base& tx, const audit_actor& actor,
                            const std::string& id);

// Revokes every unrevoked token (of one user when given; refused if unknown).
// Returns how many were revoked; each gets its own audit row.
std::size_t revoke_all_tokens(pqxx::transaction_base& tx, const audit_actor& actor,
                              const std::optional<std::string>& username);

// The caller behind a bearer token, given the token's public id and the
// SHA-256 of its secret (crypto::parse_token, crypto::hash_token_secret: the
// caller computes them). Unknown, revoked, expired or disabled-user tokens:
// nullopt. The hash is compared in constant time. It writes nothing:
// identity::token_use_unrecorded says a proven use should be recorded
// (touch_token), which the caller does on the side, so that authentication
// needs no writable database and the hot path stays one read.
std::optional<identity> identity_for_token(pqxx::transaction_base& tx, const std::string& token_id,
                                           const std::string& secret_hash);

// last_used_at = now(), unless it is less than a minute old (idempotent).
void touch_token(pqxx::transaction_base& tx, const std::string& token_id);

} // namespace portal::db

#include "db/identity.hpp"

#include "config/crypto.hpp"

namespace portal::db {

std::optional<identity> identity_for_token(pqxx::transaction_base& tx, std::string_view token) {
  const auto parts = crypto::parse_token(token);
  if (!parts) {
    return std::nullopt;
  }
  // Revocation, expiry and disabled users are checked in SQL against the
  // database clock, so every application instance agrees on "now".
  const pqxx::result rows =
    tx.exec_params("SELECT t.secret_hash, u.id, u.username, u.role, u.quota_bytes"
                   " FROM api_tokens t JOIN users u ON u.id = t.user_id"
                   " WHERE t.id = $1"
                   "   AND t.revoked_at IS NULL"
                   "   AND (t.expires_at IS NULL OR t.expires_at > now())"
                   "   AND u.disabled_at IS NULL",
                   parts->id);
  if (rows.empty()) {
    return std::nullopt;
  }
  const auto& row = rows[0];
  // The id is public; the secret is what proves possession, so only its hash
  // comparison has to be constant-time.
  if (!crypto::equal_constant_time(crypto::hash_token_secret(parts->secret), row[0].as<std::string>())) {
    return std::nullopt;
  }
  identity who;
  who.user_id = row[1].as<int64_t>();
  who.username = row[2].as<std::string>();
  who.role = row[3].as<std::string>();
  who.token_id = parts->id;
  if (!row[4].is_null())
    who.quota_bytes = row[4].as<int64_t>();
  return who;
}

} // namespace portal::db

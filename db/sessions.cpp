#include "db/sessions.hpp"

#include "config/crypto.hpp"

#include <algorithm>

namespace portal::db {

namespace {

constexpr std::size_t session_id_chars = 43; // 256 bits, base64url
constexpr std::size_t csrf_token_chars = 43;
constexpr std::size_t user_agent_chars = 200;

std::string session_hash(const session_policy& policy, std::string_view cookie_value) {
  return crypto::hmac_sha256_hex(policy.key, cookie_value);
}

bool plausible_session_id(std::string_view id) {
  return id.size() == session_id_chars && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

// For the admin's eyes only, but it comes from the client: printable ASCII,
// bounded, so that no byte sequence can make the INSERT fail.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, user_agent_chars))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

} // namespace

new_session create_session(pqxx::transaction_base& tx, const session_policy& policy,
                           int64_t user_id, const std::string& ip, std::string_view user_agent) {
  tx.exec_params("DELETE FROM sessions WHERE user_id = $1"
                 " AND (idle_expires_at <= now() OR absolute_expires_at <= now())",
                 user_id);
  new_session s{crypto::random_url_safe(session_id_chars), crypto::random_url_safe(csrf_token_chars)};
  auto idle = std::min(policy.idle, policy.max_age);
  tx.exec_params("INSERT INTO sessions (id_hash, user_id, csrf_token, idle_expires_at,"
                 "  absolute_expires_at, ip, user_agent)"
                 " VALUES ($1, $2, $3, now() + make_interval(secs => $4),"
                 "  now() + make_interval(secs => $5), $6, $7)",
                 session_hash(policy, s.cookie_value), user_id, s.csrf_token,
                 static_cast<int64_t>(idle.count()), static_cast<int64_t>(policy.max_age.count()),
                 ip, printable(user_agent));
  return s;
}

std::optional<identity> identity_for_session(pqxx::transaction_base& tx,
                                             const session_policy& policy,
                                             std::string_view cookie_value) {
  if (!plausible_session_id(cookie_value))
    return std::nullopt;
  auto hash = session_hash(policy, cookie_value);
  // Expiry and disabled users are checked against the database clock, like
  // tokens (db/identity.cpp).
  const pqxx::result rows = tx.exec_params(
    "UPDATE sessions s SET last_seen_at = now(),"
    "  idle_expires_at = least(now() + make_interval(secs => $2), s.absolute_expires_at)"
    " FROM users u"
    " WHERE s.id_hash = $1 AND u.id = s.user_id AND u.disabled_at IS NULL"
    "   AND s.idle_expires_at > now() AND s.absolute_expires_at > now()"
    " RETURNING u.id, u.username, u.role, u.quota_bytes, s.csrf_token",
    hash, static_cast<int64_t>(policy.idle.count()));
  if (rows.empty())
    return std::nullopt;
  const auto& row = rows[0];
  identity who;
  who.user_id = row[0].as<int64_t>();
  who.username = row[1].as<std::string>();
  who.role = row[2].as<std::string>();
  if (!row[3].is_null())
    who.quota_bytes = row[3].as<int64_t>();
  who.csrf_token = row[4].as<std::string>();
  who.session_hash = std::move(hash);
  return who;
}

bool end_session(pqxx::transaction_base& tx, const std::string& session_hash) {
  return tx.exec_params("DELETE FROM sessions WHERE id_hash = $1", session_hash).affected_rows() >
         0;
}

} // namespace portal::db

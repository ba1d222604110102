#include "db/sessions.hpp"

#include "config/crypto.hpp"

#include <algorithm>

namespace portal::db {

namespace sql {

const query purge_expired_sessions{"purge_expired_sessions", R"(
  DELETE FROM sessions WHERE user_id = $1
  AND (idle_expires_at <= now() OR absolute_expires_at <= now()))"};

const query insert_session{"insert_session", R"(
  INSERT INTO sessions (id_hash, user_id, csrf_token, idle_expires_at,
   absolute_expires_at, ip, user_agent)
  VALUES ($1, $2, $3, now() + make_interval(secs => $4),
   now() + make_interval(secs => $5), $6, $7))"};

// Expiry and disabled users are checked against the database clock, like
// tokens; a function (db/migrations/0005_identity_functions.sql) for the
// same reason as the token's lookup: its plan is kept per backend.
const query session_identity{"session_identity", R"(
  SELECT id, username, role, quota_bytes, csrf_token FROM session_identity($1, $2))"};

const query delete_session{"delete_session", "DELETE FROM sessions WHERE id_hash = $1"};

} // namespace sql

namespace {

constexpr std::size_t user_agent_chars = 200;

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
  exec(tx, sql::purge_expired_sessions, user_id);
  new_session s{crypto::new_session_id(), crypto::random_url_safe(crypto::session_id_chars)};
  auto idle = std::min(policy.idle, policy.max_age);
  exec0(tx, sql::insert_session, *crypto::session_key(policy.key, s.cookie_value), user_id,
        s.csrf_token, static_cast<int64_t>(idle.count()),
        static_cast<int64_t>(policy.max_age.count()), ip, printable(user_agent));
  return s;
}

std::optional<identity> identity_for_session(pqxx::transaction_base& tx,
                                             const std::string& session_key,
                                             std::chrono::seconds idle) {
  const pqxx::result rows =
    exec(tx, sql::session_identity, session_key, static_cast<int64_t>(idle.count()));
  if (rows.empty())
    return std::nullopt;
  const auto& row = rows[0];
  identity who;
  who.user_id = row["id"].as<int64_t>();
  who.username = row["username"].as<std::string>();
  who.role = row["role"].as<std::string>();
  if (!row["quota_bytes"].is_null())
    who.quota_bytes = row["quota_bytes"].as<int64_t>();
  who.csrf_token = row["csrf_token"].as<std::string>();
  who.session_hash = session_key;
  return who;
}

bool end_session(pqxx::transaction_base& tx, const std::string& session_hash) {
  return exec(tx, sql::delete_session, session_hash).affected_rows() > 0;
}

} // namespace portal::db

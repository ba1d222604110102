#include "db/users.hpp"

#include "config/crypto.hpp"

#include <boost/json/serialize.hpp>

namespace portal::db {

namespace sql {

// Case-insensitively: "Alice" and "alice" cannot both exist.
const query find_username{"find_username",
                          "SELECT username FROM users WHERE lower(username) = lower($1)"};

// Timestamps leave the database formatted, in UTC, so output does not depend
// on the session's TimeZone setting.
const query insert_user{"insert_user", R"(
  INSERT INTO users (username, role, password_hash) VALUES ($1, $2, $3)
  RETURNING id, username, role, disabled_at IS NOT NULL AS disabled,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at)"};

const query list_users{"list_users", R"(
  SELECT id, username, role, disabled_at IS NOT NULL AS disabled,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at
  FROM users ORDER BY id)"};

const query find_user{"find_user", R"(
  SELECT id, username, role, disabled_at IS NOT NULL AS disabled,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at
  FROM users WHERE username = $1)"};

// FOR UPDATE: a concurrent disable of the same user waits, then sees it
// disabled, so only one audit row is written.
const query lock_user{"lock_user", R"(
  SELECT id, disabled_at IS NOT NULL AS disabled
  FROM users WHERE username = $1 FOR UPDATE)"};

const query disable_user{"disable_user", "UPDATE users SET disabled_at = now() WHERE id = $1"};

const query delete_user_sessions{"delete_user_sessions", "DELETE FROM sessions WHERE user_id = $1"};

} // namespace sql

namespace {

user_row to_user(const pqxx::row& row) {
  user_row u;
  u.id = row["id"].as<int64_t>();
  u.username = row["username"].as<std::string>();
  u.role = row["role"].as<std::string>();
  u.disabled = row["disabled"].as<bool>();
  u.created_at = row["created_at"].as<std::string>();
  return u;
}

// Checked before the INSERT so the usual case gets a clear message; the unique
// indexes still catch a concurrent insert of the same name.
void refuse_if_taken(pqxx::transaction_base& tx, const std::string& username) {
  const auto rows = exec(tx, sql::find_username, username);
  if (rows.empty()) {
    return;
  }
  const auto existing = rows[0]["username"].as<std::string>();
  if (existing == username) {
    throw refused("user " + username + " already exists");
  }
  throw refused("user " + existing + " already exists (user names are unique regardless of case)");
}

pqxx::row insert_user(pqxx::transaction_base& tx, const std::string& username,
                      const std::string& role, const std::optional<std::string>& hash) {
  try {
    return exec1(tx, sql::insert_user, username, role, hash);
  } catch (const pqxx::unique_violation&) {
    throw refused("user " + username + " already exists");
  }
}

} // namespace

bool valid_username(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool valid_role(std::string_view role) {
  return role == "admin" || role == "uploader";
}

user_row create_user(pqxx::transaction_base& tx, const audit_actor& actor,
                     const std::string& username, const std::string& role,
                     const std::optional<std::string>& password) {
  if (!valid_username(username)) {
    throw refused("invalid user name (allowed: 1 to 64 of A-Z a-z 0-9 . _ -)");
  }
  if (!valid_role(role)) {
    throw refused("invalid role " + role + " (admin or uploader)");
  }
  refuse_if_taken(tx, username);
  std::optional<std::string> hash;
  if (password) {
    hash = crypto::hash_password(*password);
  }
  const pqxx::row row = insert_user(tx, username, role, hash);
  record_audit(tx, actor, "user.create",
               {{"user", username}, {"role", role}, {"password", password.has_value()}});
  return to_user(row);
}

std::vector<user_row> list_users(pqxx::transaction_base& tx) {
  std::vector<user_row> users;
  for (const auto& row : exec(tx, sql::list_users)) {
    users.push_back(to_user(row));
  }
  return users;
}

std::optional<user_row> find_user(pqxx::transaction_base& tx, const std::string& username) {
  const auto rows = exec(tx, sql::find_user, username);
  if (rows.empty()) {
    return std::nullopt;
  }
  return to_user(rows[0]);
}

disable_outcome disable_user(pqxx::transaction_base& tx, const audit_actor& actor,
                             const std::string& username) {
  const auto rows = exec(tx, sql::lock_user, username);
  if (rows.empty()) {
    throw refused("no user named " + username);
  }
  const auto user_id = rows[0]["id"].as<int64_t>();
  if (rows[0]["disabled"].as<bool>()) {
    return disable_outcome::already_disabled;
  }
  exec0(tx, sql::disable_user, user_id);
  const auto sessions = exec(tx, sql::delete_user_sessions, user_id);
  record_audit(tx, actor, "user.disable",
               {{"user", username}, {"sessions_ended", sessions.affected_rows()}});
  return disable_outcome::disabled;
}

} // namespace portal::db

#include "db/tokens.hpp"

#include "config/crypto.hpp"

#include <boost/json/serialize.hpp>

#include <cstdint>

namespace portal::db {

namespace sql {

// Timestamps leave the database already formatted, in UTC, so output does not
// depend on the session's TimeZone setting.
const query insert_token{"insert_token", R"(
  INSERT INTO api_tokens (id, user_id, name, secret_hash, expires_at)
  VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::bigint))
  RETURNING to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    AS expires_at)"};

const query list_tokens{"list_tokens", R"(
  SELECT t.id, u.username, t.name,
  to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
  to_char(t.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS expires_at,
  to_char(t.last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_used_at,
  CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'
       WHEN t.expires_at <= now() THEN 'expired'
       WHEN u.disabled_at IS NOT NULL THEN 'user-disabled'
       ELSE 'active' END AS state
  FROM api_tokens t JOIN users u ON u.id = t.user_id
  WHERE $1::text IS NULL OR u.username = $1
  ORDER BY t.created_at, t.id)"};

// FOR UPDATE: two concurrent revokes of one token write one audit row.
const query lock_token{"lock_token", R"(
  SELECT t.revoked_at IS NOT NULL AS revoked, u.username
  FROM api_tokens t JOIN users u ON u.id = t.user_id
  WHERE t.id = $1 FOR UPDATE OF t)"};

const query revoke_token{"revoke_token", "UPDATE api_tokens SET revoked_at = now() WHERE id = $1"};

// One statement: revoke and write one audit row per revoked token, so an
// incident-response run is atomic however many tokens there are.
const query revoke_all_tokens{"revoke_all_tokens", R"(
  WITH revoked AS (
   UPDATE api_tokens t SET revoked_at = now() FROM users u
   WHERE u.id = t.user_id AND t.revoked_at IS NULL
     AND ($1::text IS NULL OR u.username = $1)
   RETURNING t.id, u.username),
  audited AS (
   INSERT INTO audit_events (event, user_id, username, ip, request_id, detail)
   SELECT 'token.revoke', $2, $3, $4, $5,
          jsonb_build_object('user', r.username, 'token_id', r.id, 'all', true)
   FROM revoked r)
  SELECT count(*) AS revoked FROM revoked)"};

// The lookup is a function (db/migrations/0005_identity_functions.sql): run
// on every request, it is planned once per backend there instead of on every
// call. It checks revocation, expiry and disabled users against the database
// clock, so every application instance agrees on "now"; `stale`:
// last_used_at is worth writing (a minute or more old, or none).
const query token_identity{"token_identity", R"(
  SELECT secret_hash, id, username, role, quota_bytes, stale FROM token_identity($1))"};

// At most one write a minute per token, not one per request: last_used_at
// (GET /admin/tokens, the admin page) is good to the minute. SKIP LOCKED: a
// row another touch holds (its COMMIT slow) is left to it, not waited on.
const query touch_token{"touch_token", R"(
  UPDATE api_tokens SET last_used_at = now()
  WHERE id IN (SELECT id FROM api_tokens WHERE id = $1
                 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
               FOR UPDATE SKIP LOCKED))"};

} // namespace sql

namespace {

// The user a token operation is about; refused if unknown.
user_row require_user(pqxx::transaction_base& tx, const std::string& username) {
  auto user = find_user(tx, username);
  if (!user) {
    throw refused("no user named " + username);
  }
  return *user;
}

token_row to_token(const pqxx::row& row) {
  token_row t;
  t.id = row["id"].as<std::string>();
  t.username = row["username"].as<std::string>();
  t.name = row["name"].as<std::string>();
  t.created_at = row["created_at"].as<std::string>();
  t.expires_at = optional_text(row["expires_at"]);
  t.last_used_at = optional_text(row["last_used_at"]);
  t.state = row["state"].as<std::string>();
  return t;
}

} // namespace

bool valid_token_label(std::string_view label) {
  // Strict UTF-8 (invalid bytes would otherwise reach PostgreSQL), counted in
  // characters, without C0, DEL or C1 (U+0080..U+009F: NEL, 8-bit CSI) controls.
  std::size_t chars = 0;
  for (std::size_t i = 0; i < label.size(); ++chars) {
    const auto b = static_cast<unsigned char>(label[i]);
    std::size_t len = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if (b >= 0xc2 && b <= 0xdf) {
      len = 2;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (label.size() - i < len) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(label[i + k]);
      if ((c & 0xc0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (c & 0x3f);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
      return false;
    }
    i += len;
  }
  return chars <= 200;
}

created_token create_token(pqxx::transaction_base& tx, const audit_actor& actor,
                           const std::string& username, const std::string& name,
                           std::optional<std::chrono::seconds> expires_in) {
  if (!valid_token_label(name)) {
    throw refused("invalid token name (at most 200 characters, no control characters)");
  }
  if (expires_in && expires_in->count() <= 0) {
    throw refused("--expires-in must be a positive duration");
  }
  const user_row user = require_user(tx, username);
  if (user.disabled) {
    throw refused("user " + username + " is disabled");
  }
  std::optional<int64_t> seconds;
  if (expires_in) {
    seconds = static_cast<int64_t>(expires_in->count());
  }
  const crypto::minted_token minted = crypto::mint_token();
  const auto row =
    exec1(tx, sql::insert_token, minted.id, user.id, name, minted.secret_hash, seconds);

  created_token created{minted.id, minted.token, username, name, optional_text(row["expires_at"])};
  boost::json::object detail{{"user", username}, {"token_id", minted.id}, {"name", name}};
  detail["expires_at"] = created.expires_at ? boost::json::value(*created.expires_at) : nullptr;
  record_audit(tx, actor, "token.create", detail);
  return created;
}

std::vector<token_row> list_tokens(pqxx::transaction_base& tx,
                                   const std::optional<std::string>& username) {
  if (username) {
    require_user(tx, *username);
  }
  std::vector<token_row> tokens;
  for (const auto& row : exec(tx, sql::list_tokens, username)) {
    tokens.push_back(to_token(row));
  }
  return tokens;
}

revoke_outcome revoke_token(pqxx::transaction_base& tx, const audit_actor& actor,
                            const std::string& id) {
  // The argument is echoed in the refusal only when it has an id's shape: a
  // whole token pasted instead of its id must not print its secret.
  if (!crypto::valid_token_id(id)) {
    const auto parts = crypto::parse_token(id);
    throw refused(parts ? "that is a whole token, not its id; its id is " + parts->id
                        : std::string("not a token id (the first column of `token list`)"));
  }
  const auto rows = exec(tx, sql::lock_token, id);
  if (rows.empty()) {
    throw refused("no token with id " + id);
  }
  if (rows[0]["revoked"].as<bool>()) {
    return revoke_outcome::already_revoked;
  }
  exec0(tx, sql::revoke_token, id);
  record_audit(tx, actor, "token.revoke",
               {{"user", rows[0]["username"].as<std::string>()}, {"token_id", id}});
  return revoke_outcome::revoked;
}

std::size_t revoke_all_tokens(pqxx::transaction_base& tx, const audit_actor& actor,
                              const std::optional<std::string>& username) {
  if (username) {
    require_user(tx, *username);
  }
  const auto row = exec1(tx, sql::revoke_all_tokens, username, actor.user_id, actor.username,
                         actor.ip, actor.request_id);
  return row["revoked"].as<std::size_t>();
}

void touch_token(pqxx::transaction_base& tx, const std::string& token_id) {
  exec0(tx, sql::touch_token, token_id);
}

std::optional<identity> identity_for_token(pqxx::transaction_base& tx, const std::string& token_id,
                                           const std::string& secret_hash) {
  const pqxx::result rows = exec(tx, sql::token_identity, token_id);
  if (rows.empty()) {
    return std::nullopt;
  }
  const auto& row = rows[0];
  // The id is public; the secret is what proves possession, so only its hash
  // comparison has to be constant-time.
  if (!crypto::equal_constant_time(secret_hash, row["secret_hash"].as<std::string>())) {
    return std::nullopt;
  }
  identity who;
  // Only a proven use counts: a wrong secret for a real id touches nothing.
  who.token_use_unrecorded = row["stale"].as<bool>();
  who.user_id = row["id"].as<int64_t>();
  who.username = row["username"].as<std::string>();
  who.role = row["role"].as<std::string>();
  who.token_id = token_id;
  if (!row["quota_bytes"].is_null())
    who.quota_bytes = row["quota_bytes"].as<int64_t>();
  return who;
}

} // namespace portal::db

#include "db/logins.hpp"

#include "config/crypto.hpp"
#include "db/users.hpp"

#include <algorithm>
#include <cctype>

namespace portal::db {

namespace sql {

// Seconds until a name ($1) may try again, NULL when it is not locked. A lock
// begins at a failure that is the $2nd within $4 minutes and lasts $3
// minutes from it.
const query login_lockout{"login_lockout", R"(
  SELECT ceil(extract(epoch FROM max(at) + make_interval(mins => $3) - now()))::bigint AS wait
  FROM (SELECT at, lag(at, $2 - 1) OVER (ORDER BY at) AS earlier
        FROM login_failures WHERE username = $1
          AND at > now() - make_interval(mins => $3) - make_interval(mins => $4)) f
  WHERE earlier >= at - make_interval(mins => $4)
    AND at > now() - make_interval(mins => $3))"};

// One attempt per name at a time: parallel guesses cannot all slip in before
// the 5th failure is recorded. Transaction-scoped, so PgBouncer's
// transaction mode is fine.
const query login_lock{"login_lock", "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"};

const query login_user{"login_user", R"(
  SELECT id, username, role, quota_bytes, password_hash, disabled_at
  FROM users WHERE lower(username) = $1)"};

const query insert_login_failure{"insert_login_failure",
                                 "INSERT INTO login_failures (username, ip) VALUES ($1, $2)"};

// A success clears the name's failures, and old ones of every name go.
const query clear_login_failures{"clear_login_failures", R"(
  DELETE FROM login_failures WHERE username = $1
  OR at < now() - make_interval(mins => $2))"};

} // namespace sql

namespace {

// Verifying against this costs what a real account costs, so that the time
// to answer does not tell which names exist.
const std::string& decoy_hash() {
  static const std::string hash = crypto::hash_password(crypto::random_url_safe(32));
  return hash;
}

// Seconds until `name` may try again, 0 when it is not locked. A lock begins
// at a failure that is the 5th within 15 minutes and lasts 15 minutes from
// it. Attempts during a lock are not recorded as failures, so a lock ends
// on time even while someone keeps trying.
long long locked_for(pqxx::transaction_base& tx, const std::string& key) {
  auto rows =
    exec(tx, sql::login_lockout, key, lockout_failures, static_cast<int>(lockout_duration.count()),
         static_cast<int>(lockout_window.count()));
  if (rows.empty() || rows[0]["wait"].is_null())
    return 0;
  return std::max(0LL, rows[0]["wait"].as<long long>());
}

} // namespace

login_outcome attempt_login(pqxx::transaction_base& tx, const login_attempt& a,
                            const session_policy& policy) {
  login_outcome out;
  audit_actor actor{std::nullopt, std::nullopt, a.ip, a.request_id};
  if (!valid_username(a.username)) {
    // No account can have this name, and it may not even be valid text for
    // the database: audited without it.
    crypto::verify_password(decoy_hash(), a.password);
    record_audit(tx, actor, "login.failed", {{"reason", "invalid_username"}});
    return out;
  }
  // Lock state and user names compare case-insensitively, as accounts do.
  std::string key = a.username;
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  actor.username = a.username;
  exec(tx, sql::login_lock, "login:" + key);

  if (auto wait = locked_for(tx, key); wait > 0) {
    out.status = login_outcome::result::locked;
    out.retry_after = static_cast<unsigned>(wait);
    record_audit(tx, actor, "login.locked", {{"username", a.username}, {"retry_after", wait}});
    return out;
  }

  auto rows = exec(tx, sql::login_user, key);
  std::string reason;
  if (rows.empty())
    reason = "unknown_user";
  else if (!rows[0]["disabled_at"].is_null())
    reason = "disabled";
  else if (rows[0]["password_hash"].is_null())
    reason = "no_password";
  std::string hash = reason.empty() ? rows[0]["password_hash"].as<std::string>() : decoy_hash();
  bool verified = crypto::verify_password(hash, a.password);
  if (!reason.empty() || !verified) {
    if (reason.empty())
      reason = "password";
    exec(tx, sql::insert_login_failure, key, a.ip);
    record_audit(tx, actor, "login.failed", {{"username", a.username}, {"reason", reason}});
    return out;
  }

  const auto& row = rows[0];
  out.status = login_outcome::result::ok;
  out.who.user_id = row["id"].as<int64_t>();
  out.who.username = row["username"].as<std::string>();
  out.who.role = row["role"].as<std::string>();
  if (!row["quota_bytes"].is_null())
    out.who.quota_bytes = row["quota_bytes"].as<int64_t>();
  exec(tx, sql::clear_login_failures, key,
       static_cast<int>((lockout_window + lockout_duration).count()));
  out.session = create_session(tx, policy, out.who.user_id, a.ip, a.user_agent);
  actor.user_id = out.who.user_id;
  actor.username = out.who.username;
  record_audit(tx, actor, "login.ok", {{"username", out.who.username}});
  return out;
}

} // namespace portal::db

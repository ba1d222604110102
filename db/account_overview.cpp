#include "db/account_overview.hpp"

namespace portal::db {

namespace sql {

// One scan of each table, whatever the number of users.
const query users_overview{"users_overview", R"sql(
SELECT u.username, u.role, u.disabled_at IS NOT NULL AS disabled,
       u.password_hash IS NOT NULL AS has_password,
       to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
       u.quota_bytes,
       coalesce(s.uploads, 0) AS uploads, coalesce(s.stored_bytes, 0) AS stored_bytes,
       coalesce(t.active_tokens, 0) AS active_tokens,
       to_char(l.last_login AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_login
  FROM users u
  LEFT JOIN (SELECT owner_id, count(*) AS uploads, sum(size) AS stored_bytes
               FROM uploads GROUP BY owner_id) s ON s.owner_id = u.id
  LEFT JOIN (SELECT user_id, count(*) AS active_tokens FROM api_tokens
              WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
              GROUP BY user_id) t ON t.user_id = u.id
  LEFT JOIN (SELECT user_id, max(time) AS last_login FROM audit_events
              WHERE event = $1 GROUP BY user_id) l ON l.user_id = u.id
 ORDER BY lower(u.username), u.id)sql"};

} // namespace sql

std::vector<user_overview> list_user_overview(pqxx::transaction_base& tx) {
  std::vector<user_overview> users;
  for (const auto& row : exec(tx, sql::users_overview, "login.ok")) {
    user_overview u;
    u.username = row["username"].as<std::string>();
    u.role = row["role"].as<std::string>();
    u.disabled = row["disabled"].as<bool>();
    u.has_password = row["has_password"].as<bool>();
    u.created_at = row["created_at"].as<std::string>();
    if (!row["quota_bytes"].is_null())
      u.quota = row["quota_bytes"].as<uint64_t>();
    u.uploads = row["uploads"].as<uint64_t>();
    u.stored_bytes = row["stored_bytes"].as<uint64_t>();
    u.active_tokens = row["active_tokens"].as<uint64_t>();
    if (!row["last_login"].is_null())
      u.last_login = row["last_login"].as<std::string>();
    users.push_back(std::move(u));
  }
  return users;
}

} // namespace portal::db

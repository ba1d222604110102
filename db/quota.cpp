#include "db/quota.hpp"

#include "db/users.hpp"

namespace portal::db {

namespace sql {

const query stored_bytes{"stored_bytes", R"(
  select ((select coalesce(sum(size), 0) from uploads where owner_id = $1)
        + (select coalesce(sum(length), 0) from tus_uploads where owner_id = $1))::bigint as bytes)"};

const query set_user_quota{"set_user_quota",
                           "update users set quota_bytes = $2 where username = $1 returning id"};

} // namespace sql

uint64_t stored_bytes(pqxx::transaction_base& tx, int64_t user_id) {
  auto r = exec1(tx, sql::stored_bytes, user_id);
  return static_cast<uint64_t>(r["bytes"].as<int64_t>());
}

void set_user_quota(pqxx::transaction_base& tx, const audit_actor& actor,
                    const std::string& username, std::optional<uint64_t> bytes) {
  std::optional<int64_t> value;
  if (bytes)
    value = static_cast<int64_t>(*bytes);
  auto r = exec(tx, sql::set_user_quota, username, value);
  if (r.empty())
    throw refused("no user named " + username);
  boost::json::object detail{{"user", username}, {"quota_bytes", nullptr}};
  if (bytes)
    detail["quota_bytes"] = *bytes;
  record_audit(tx, actor, "user.quota", detail);
}

} // namespace portal::db

#include "db/uploads.hpp"

#include "db/quota.hpp"
#include "db/users.hpp"

#include <cctype>
#include <charconv>
#include <sodium.h>

namespace portal::db {

namespace {

// Columns in the order row_from() reads them.
constexpr const char* columns = R"(u.id, u.filename, u.size, u.sha256, u.format, u.entries,
  u.uncompressed_size, o.username,
  to_char(u.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  to_char(u.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  (extract(epoch from u.created_at) * 1000000)::bigint)";

upload_row row_from(const pqxx::row& r) {
  upload_row u;
  u.id = r[0].as<std::string>();
  u.filename = r[1].as<std::string>();
  u.size = r[2].as<uint64_t>();
  u.sha256 = r[3].as<std::string>();
  u.format = r[4].as<std::string>();
  u.entries = r[5].as<uint64_t>();
  u.uncompressed_size = r[6].as<uint64_t>();
  u.owner = r[7].as<std::string>();
  u.created_at = r[8].as<std::string>();
  if (!r[9].is_null())
    u.expires_at = r[9].as<std::string>();
  return u;
}

bool is_admin(const identity& viewer) {
  return viewer.role == "admin";
}

// A cursor is the last row's (created_at in microseconds since the epoch,
// id), base64url: opaque to clients, exact for keyset pagination on
// (created_at, id), and nothing in it reaches SQL but a checked integer.
std::string make_cursor(int64_t created_at_us, const std::string& id) {
  auto plain = std::to_string(created_at_us) + "|" + id;
  std::string out(sodium_base64_encoded_len(plain.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(plain.data()),
                    plain.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

std::pair<int64_t, std::string> parse_cursor(const std::string& cursor) {
  if (cursor.empty() || cursor.size() > 200)
    throw invalid_cursor("invalid cursor");
  std::string plain(cursor.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(plain.data()), plain.size(), cursor.data(),
                        cursor.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    throw invalid_cursor("invalid cursor");
  plain.resize(len);
  auto bar = plain.find('|');
  int64_t micros = 0;
  if (bar == std::string::npos || bar == 0 || bar + 1 == plain.size())
    throw invalid_cursor("invalid cursor");
  auto [end, ec] = std::from_chars(plain.data(), plain.data() + bar, micros);
  if (ec != std::errc{} || end != plain.data() + bar || micros < 0)
    throw invalid_cursor("invalid cursor");
  auto id = plain.substr(bar + 1);
  if (!plausible_upload_id(id)) // a forged cursor: its bytes never reach SQL
    throw invalid_cursor("invalid cursor");
  return {micros, id};
}

} // namespace

boost::json::object to_json(const upload_row& row) {
  boost::json::object o;
  o["id"] = row.id;
  o["filename"] = row.filename;
  o["size"] = row.size;
  o["sha256"] = row.sha256;
  o["format"] = row.format;
  o["entries"] = row.entries;
  o["uncompressed_size"] = row.uncompressed_size;
  o["owner"] = row.owner;
  o["created_at"] = row.created_at;
  if (row.expires_at)
    o["expires_at"] = *row.expires_at;
  else
    o["expires_at"] = nullptr;
  return o;
}

bool plausible_upload_id(std::string_view id) {
  if (id.empty() || id.size() > 64)
    return false;
  for (unsigned char c : id)
    if (!std::isalnum(c) && c != '_' && c != '-')
      return false;
  return true;
}

upload_row insert_upload(pqxx::transaction_base& tx, const new_upload& up, const identity& owner,
                         const std::string& ip, const std::string& request_id) {
  if (up.quota > 0) {
    tx.exec_params("select 1 from users where id = $1 for update", up.owner_id);
    if (stored_bytes(tx, up.owner_id) + up.size > up.quota)
      throw quota_exceeded{};
  }
  std::optional<int> days;
  if (up.retention_days)
    days = static_cast<int>(*up.retention_days);
  tx.exec_params0(
    R"(insert into uploads (id, owner_id, filename, size, sha256, format, entries,
                            uncompressed_size, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(days => $9)))",
    up.id, up.owner_id, up.filename, static_cast<int64_t>(up.size), up.sha256, up.format,
    static_cast<int64_t>(up.entries), static_cast<int64_t>(up.uncompressed_size), days);
  record_audit(tx, audit_actor{owner.user_id, owner.username, ip, request_id}, "upload.complete",
               {{"upload_id", up.id}, {"filename", up.filename}, {"size", up.size}});
  auto found = find_upload(tx, up.id, owner);
  return *found;
}

std::optional<upload_row> find_upload(pqxx::transaction_base& tx, const std::string& id,
                                      const identity& viewer) {
  auto r = tx.exec_params(std::string{"select "} + columns +
                            " from uploads u join users o on o.id = u.owner_id"
                            " where u.id = $1 and ($2 or u.owner_id = $3)",
                          id, is_admin(viewer), viewer.user_id);
  if (r.empty())
    return std::nullopt;
  return row_from(r[0]);
}

upload_page list_uploads(pqxx::transaction_base& tx, const identity& viewer, unsigned limit,
                         const std::optional<std::string>& cursor) {
  std::optional<int64_t> after_time;
  std::optional<std::string> after_id;
  if (cursor) {
    auto [t, i] = parse_cursor(*cursor);
    after_time = t;
    after_id = i;
  }
  // One more than asked tells whether there is a next page.
  auto r = tx.exec_params(std::string{"select "} + columns +
                            R"( from uploads u join users o on o.id = u.owner_id
          where ($1 or u.owner_id = $2)
            and ($3::bigint is null or (u.created_at, u.id) <
                 ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4))
          order by u.created_at desc, u.id desc
          limit $5)",
                          is_admin(viewer), viewer.user_id, after_time, after_id,
                          static_cast<int>(limit) + 1);
  upload_page page;
  for (std::size_t i = 0; i < r.size() && i < limit; ++i)
    page.uploads.push_back(row_from(r[i]));
  if (r.size() > limit)
    page.next_cursor = make_cursor(r[limit - 1][10].as<int64_t>(), page.uploads.back().id);
  return page;
}

bool delete_upload(pqxx::transaction_base& tx, const std::string& id, const identity& viewer,
                   const std::string& ip, const std::string& request_id) {
  auto r = tx.exec_params("delete from uploads where id = $1 and ($2 or owner_id = $3)"
                          " returning filename",
                          id, is_admin(viewer), viewer.user_id);
  if (r.empty())
    return false;
  record_audit(tx, audit_actor{viewer.user_id, viewer.username, ip, request_id}, "upload.delete",
               {{"upload_id", id}, {"filename", r[0][0].as<std::string>()}});
  return true;
}

std::vector<std::string> delete_expired_uploads(pqxx::transaction_base& tx, unsigned limit) {
  // SKIP LOCKED: a row someone is deleting right now is theirs to finish.
  auto r = tx.exec_params("delete from uploads where id in (select id from uploads"
                          " where expires_at <= now() order by expires_at limit $1"
                          " for update skip locked) returning id, filename",
                          limit);
  std::vector<std::string> ids;
  for (auto row : r) {
    ids.push_back(row[0].as<std::string>());
    record_audit(tx, audit_actor{std::nullopt, std::string{"system"}, {}, {}}, "upload.expired",
                 {{"upload_id", ids.back()}, {"filename", row[1].as<std::string>()}});
  }
  return ids;
}

std::set<std::string> all_upload_ids(pqxx::transaction_base& tx) {
  std::set<std::string> ids;
  for (auto row : tx.exec("select id from uploads"))
    ids.insert(row[0].as<std::string>());
  return ids;
}

void delete_missing_uploads(pqxx::transaction_base& tx, const std::vector<std::string>& ids) {
  for (auto& id : ids) {
    tx.exec_params("delete from uploads where id = $1", id);
    record_audit(tx, audit_actor{std::nullopt, std::string{"system"}, {}, {}},
                 "upload.missing_file", {{"upload_id", id}});
  }
}

} // namespace portal::db

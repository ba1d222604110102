#include "db/uploads.hpp"

#include "config/upload_id.hpp"
#include "db/quota.hpp"
#include "db/users.hpp"

#include <charconv>
#include <sodium.h>

namespace portal::db {

namespace sql {

// Timestamps leave the database formatted, in UTC, so output does not depend
// on the session's TimeZone; created_us (microseconds since the epoch) is the
// exact key of keyset pagination. expires_at is created_at plus the retention
// in force ($4 days; null when off: the sum and its text are null).
const query find_upload{"find_upload", R"(
  select u.id, u.filename, u.size, u.sha256, u.format, u.entries, u.uncompressed_size,
         o.username as owner, coalesce(u.volume_id, '') as volume_id,
         to_char(u.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as created_at,
         to_char((u.created_at + make_interval(days => $4::int)) at time zone 'UTC',
                 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as expires_at
  from uploads u join users o on o.id = u.owner_id
  where u.id = $1 and ($2 or u.owner_id = $3))"};

// One more row than asked ($5) tells whether there is a next page.
const query list_uploads{"list_uploads", R"(
  select u.id, u.filename, u.size, u.sha256, u.format, u.entries, u.uncompressed_size,
         o.username as owner, coalesce(u.volume_id, '') as volume_id,
         to_char(u.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as created_at,
         to_char((u.created_at + make_interval(days => $6::int)) at time zone 'UTC',
                 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as expires_at,
         (extract(epoch from u.created_at) * 1000000)::bigint as created_us
  from uploads u join users o on o.id = u.owner_id
  where ($1 or u.owner_id = $2)
    and ($3::bigint is null or (u.created_at, u.id) <
         ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4))
  order by u.created_at desc, u.id desc
  limit $5)"};

// Taken before the quota check: two uploads of one owner finishing at once
// are checked one after the other.
const query lock_owner{"lock_owner", "select 1 from users where id = $1 for update"};

// uploads.expires_at (migration 0001) is neither written nor read since
// retention is computed at read: the previous release still reads it, so
// it is dropped in a later release (deploy/README.md §11: two releases).
const query insert_upload{"insert_upload", R"(
  insert into uploads (id, owner_id, filename, size, sha256, format, entries,
                       uncompressed_size, volume_id)
  values ($1, $2, $3, $4, $5, $6, $7, $8, nullif($9, '')))"};

const query delete_upload{
  "delete_upload",
  "delete from uploads where id = $1 and ($2 or owner_id = $3) returning filename"};

// Older than $5 days (uploads_created_idx, oldest first). SKIP LOCKED: a
// row someone is deleting right now is theirs to finish.
const query delete_expired_uploads{"delete_expired_uploads", R"(
  delete from uploads where id in (select id from uploads
    where created_at <= now() - make_interval(days => $5::int)
      and ((volume_id = $2 and $3)
           or ((volume_id is null or volume_id = $2)
               and id in (select jsonb_array_elements_text($4::jsonb))))
    order by created_at limit $1
    for update skip locked)
  returning id, filename)"};

const query upload_volumes{"upload_volumes",
                           "select id, coalesce(volume_id, '') as volume_id from uploads"};

// The volume is checked here too: only the volume that looked may delete.
// SKIP LOCKED: a row a transaction still running holds (a killed server's)
// is not waited for; the next start judges it again.
const query delete_missing_upload{"delete_missing_upload", R"(
  delete from uploads where id in (select id from uploads
    where id = $1 and volume_id = $2 for update skip locked))"};

// $2: a JSON array of ids. SKIP LOCKED, as for the deletions above.
const query claim_uploads{"claim_uploads", R"(
  update uploads set volume_id = $1
  where id in (select id from uploads where volume_id is null
                 and id in (select jsonb_array_elements_text($2::jsonb))
               for update skip locked))"};

} // namespace sql

namespace {

upload_row upload_row_from(const pqxx::row& r) {
  upload_row u;
  u.id = r["id"].as<std::string>();
  u.filename = r["filename"].as<std::string>();
  u.size = r["size"].as<uint64_t>();
  u.sha256 = r["sha256"].as<std::string>();
  u.format = r["format"].as<std::string>();
  u.entries = r["entries"].as<uint64_t>();
  u.uncompressed_size = r["uncompressed_size"].as<uint64_t>();
  u.owner = r["owner"].as<std::string>();
  u.created_at = r["created_at"].as<std::string>();
  if (!r["expires_at"].is_null())
    u.expires_at = r["expires_at"].as<std::string>();
  u.volume_id = r["volume_id"].as<std::string>();
  return u;
}

bool is_admin(const identity& viewer) {
  return viewer.role == "admin";
}

// PORTAL_RETENTION_DAYS as a statement's parameter (config bounds it far
// below INT_MAX); null when retention is off.
std::optional<int> days_of(std::optional<unsigned> retention_days) {
  if (!retention_days)
    return std::nullopt;
  return static_cast<int>(*retention_days);
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

struct cursor_position {
  int64_t created_us = 0;
  std::string id;
};

// nullopt for a cursor this server did not make.
std::optional<cursor_position> parse_cursor(const std::string& cursor) {
  if (cursor.empty() || cursor.size() > 200)
    return std::nullopt;
  std::string plain(cursor.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(plain.data()), plain.size(), cursor.data(),
                        cursor.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return std::nullopt;
  plain.resize(len);
  auto bar = plain.find('|');
  int64_t micros = 0;
  if (bar == std::string::npos || bar == 0 || bar + 1 == plain.size())
    return std::nullopt;
  auto [end, ec] = std::from_chars(plain.data(), plain.data() + bar, micros);
  if (ec != std::errc{} || end != plain.data() + bar || micros < 0)
    return std::nullopt;
  auto id = plain.substr(bar + 1);
  if (!valid_upload_id(id)) // a forged cursor: its bytes never reach SQL
    return std::nullopt;
  return cursor_position{micros, id};
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

std::variant<upload_row, failure> insert_upload(pqxx::transaction_base& tx, const new_upload& up,
                                                const identity& owner, const std::string& ip,
                                                const std::string& request_id) {
  if (up.quota > 0) {
    exec(tx, sql::lock_owner, up.owner_id);
    if (stored_bytes(tx, up.owner_id) + up.size > up.quota)
      return failure{error_code::quota_exceeded, "the upload would exceed your storage quota"};
  }
  exec0(tx, sql::insert_upload, up.id, up.owner_id, up.filename, static_cast<int64_t>(up.size),
        up.sha256, up.format, static_cast<int64_t>(up.entries),
        static_cast<int64_t>(up.uncompressed_size), up.volume_id);
  record_audit(tx, audit_actor{owner.user_id, owner.username, ip, request_id}, "upload.complete",
               {{"upload_id", up.id}, {"filename", up.filename}, {"size", up.size}});
  auto found = find_upload(tx, up.id, owner, up.retention_days);
  return *found;
}

std::optional<upload_row> find_upload(pqxx::transaction_base& tx, const std::string& id,
                                      const identity& viewer,
                                      std::optional<unsigned> retention_days) {
  auto r =
    exec(tx, sql::find_upload, id, is_admin(viewer), viewer.user_id, days_of(retention_days));
  if (r.empty())
    return std::nullopt;
  return upload_row_from(r[0]);
}

std::variant<upload_page, failure> list_uploads(pqxx::transaction_base& tx, const identity& viewer,
                                                unsigned limit,
                                                const std::optional<std::string>& cursor,
                                                std::optional<unsigned> retention_days) {
  std::optional<int64_t> after_time;
  std::optional<std::string> after_id;
  if (cursor) {
    auto after = parse_cursor(*cursor);
    if (!after)
      return failure{error_code::invalid_cursor, "invalid cursor"};
    after_time = after->created_us;
    after_id = std::move(after->id);
  }
  auto r = exec(tx, sql::list_uploads, is_admin(viewer), viewer.user_id, after_time, after_id,
                static_cast<int>(limit) + 1, days_of(retention_days));
  upload_page page;
  for (std::size_t i = 0; i < r.size() && i < limit; ++i)
    page.uploads.push_back(upload_row_from(r[i]));
  if (r.size() > limit)
    page.next_cursor =
      make_cursor(r[limit - 1]["created_us"].as<int64_t>(), page.uploads.back().id);
  return page;
}

bool delete_upload(pqxx::transaction_base& tx, const std::string& id, const identity& viewer,
                   const std::string& ip, const std::string& request_id) {
  auto r = exec(tx, sql::delete_upload, id, is_admin(viewer), viewer.user_id);
  if (r.empty())
    return false;
  record_audit(tx, audit_actor{viewer.user_id, viewer.username, ip, request_id}, "upload.delete",
               {{"upload_id", id}, {"filename", r[0]["filename"].as<std::string>()}});
  return true;
}

std::vector<std::string> delete_expired_uploads(pqxx::transaction_base& tx,
                                                const expiring_volume& volume,
                                                unsigned retention_days, unsigned limit) {
  std::vector<std::string> ids;
  for (auto row : exec(tx, sql::delete_expired_uploads, limit, volume.id, volume.judged,
                       json_array_of(volume.files_here), days_of(retention_days))) {
    ids.push_back(row["id"].as<std::string>());
    record_audit(tx, audit_actor{std::nullopt, std::string{"system"}, {}, {}}, "upload.expired",
                 {{"upload_id", ids.back()}, {"filename", row["filename"].as<std::string>()}});
  }
  return ids;
}

std::map<std::string, std::string> upload_volumes(pqxx::transaction_base& tx) {
  std::map<std::string, std::string> rows;
  for (auto row : exec(tx, sql::upload_volumes))
    rows.emplace(row["id"].as<std::string>(), row["volume_id"].as<std::string>());
  return rows;
}

std::vector<std::string> delete_missing_uploads(pqxx::transaction_base& tx,
                                                const std::string& volume_id,
                                                const std::vector<std::string>& ids) {
  std::vector<std::string> deleted;
  for (auto& id : ids) {
    if (exec(tx, sql::delete_missing_upload, id, volume_id).affected_rows() == 0)
      continue;
    record_audit(tx, audit_actor{std::nullopt, std::string{"system"}, {}, {}},
                 "upload.missing_file", {{"upload_id", id}});
    deleted.push_back(id);
  }
  return deleted;
}

uint64_t claim_uploads(pqxx::transaction_base& tx, const std::string& volume_id,
                       const std::vector<std::string>& ids) {
  if (ids.empty())
    return 0;
  return exec(tx, sql::claim_uploads, volume_id, json_array_of(ids)).affected_rows();
}

} // namespace portal::db

#include "db/tus_uploads.hpp"

#include "db/quota.hpp"

namespace portal::db {

namespace sql {

// RETURNING the row as find_tus_upload reads it: no second round trip.
const query insert_tus_upload{"insert_tus_upload", R"(
  insert into tus_uploads (id, owner_id, filename, format, length, metadata, expires_at,
                           machine_id, volume_id)
  values ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7), $8, nullif($9, ''))
  returning id, owner_id, filename, format, length, metadata,
            extract(epoch from expires_at)::bigint as expires_at,
            expires_at <= now() as expired, machine_id)"};

const query find_tus_upload{"find_tus_upload", R"(
  select id, owner_id, filename, format, length, metadata,
         extract(epoch from expires_at)::bigint as expires_at,
         expires_at <= now() as expired, machine_id
  from tus_uploads where id = $1 and owner_id = $2)"};

const query delete_tus_upload{"delete_tus_upload",
                              "delete from tus_uploads where id = $1 and owner_id = $2"};

// SKIP LOCKED: a row someone holds (a completion deleting it, a killed
// server's transaction) is left as it is rather than waited for, holding a
// db worker (the session's own expiry still moves).
const query touch_tus_upload{"touch_tus_upload", R"(
  update tus_uploads set expires_at = now() + make_interval(secs => $2)
  where id in (select id from tus_uploads where id = $1 for update skip locked)
  returning extract(epoch from expires_at)::bigint as expires_at)"};

const query delete_completed_tus_upload{"delete_completed_tus_upload",
                                        "delete from tus_uploads where id = $1"};

// SKIP LOCKED: a row someone is deleting right now is theirs to finish.
const query delete_expired_tus_uploads{"delete_expired_tus_uploads", R"(
  delete from tus_uploads where id in (select id from tus_uploads
    where expires_at <= now() and machine_id is not distinct from nullif($1, '')
      and (volume_id is null or volume_id = $4)
      and id not in (select jsonb_array_elements_text($3::jsonb))
    order by expires_at limit $2 for update skip locked)
  returning id)"};

const query tus_volumes{"tus_volumes",
                        "select id, coalesce(volume_id, '') as volume_id from tus_uploads"};

// The volume and the machine are checked here too: only the volume that
// looked, on the machine that holds the partial, may delete.
// SKIP LOCKED: a row locked by a transaction still running (a killed
// server's COMMIT of its deletion, waiting on a standby) is not waited for;
// the next start judges it again.
const query delete_missing_tus_upload{"delete_missing_tus_upload", R"(
  delete from tus_uploads where id in (select id from tus_uploads
    where id = $1 and volume_id = $2 and machine_id is not distinct from nullif($3, '')
    for update skip locked))"};

// $2: a JSON array of ids. SKIP LOCKED, as for the deletions above.
const query claim_tus_uploads{"claim_tus_uploads", R"(
  update tus_uploads set volume_id = $1
  where id in (select id from tus_uploads where volume_id is null
                 and id in (select jsonb_array_elements_text($2::jsonb))
               for update skip locked))"};

const query lock_tus_owner{"lock_tus_owner", "select 1 from users where id = $1 for update"};

const query lock_tus_upload{"lock_tus_upload",
                            "select 1 from tus_uploads where id = $1 for update skip locked"};

// $1: a JSON array of ids.
const query hold_tus_uploads{"hold_tus_uploads", R"(
  select id, expires_at <= now() as expired from tus_uploads
  where id in (select jsonb_array_elements_text($1::jsonb))
  for update skip locked)"};

const query tus_upload_exists{"tus_upload_exists", "select 1 from tus_uploads where id = $1"};

const query upload_recorded{"upload_recorded", "select 1 from uploads where id = $1"};

} // namespace sql

namespace {

tus_row tus_row_from(const pqxx::row& r) {
  tus_row t;
  t.id = r["id"].as<std::string>();
  t.owner_id = r["owner_id"].as<int64_t>();
  t.filename = r["filename"].as<std::string>();
  t.format = r["format"].as<std::string>();
  t.length = r["length"].as<uint64_t>();
  t.metadata = r["metadata"].as<std::string>();
  t.expires_at = r["expires_at"].as<int64_t>();
  t.expired = r["expired"].as<bool>();
  t.machine_id = optional_text(r["machine_id"]);
  return t;
}

} // namespace

std::variant<tus_row, failure> insert_tus_upload(pqxx::transaction_base& tx,
                                                 const new_tus_upload& up) {
  if (up.quota > 0) {
    exec(tx, sql::lock_tus_owner, up.owner_id);
    if (stored_bytes(tx, up.owner_id) + up.length > up.quota)
      return failure{error_code::quota_exceeded, "the upload would exceed your storage quota"};
  }
  return tus_row_from(exec1(tx, sql::insert_tus_upload, up.id, up.owner_id, up.filename, up.format,
                            static_cast<int64_t>(up.length), up.metadata, up.expiry_seconds,
                            up.machine_id, up.volume_id));
}

std::optional<tus_row> find_tus_upload(pqxx::transaction_base& tx, const std::string& id,
                                       int64_t owner_id) {
  auto r = exec(tx, sql::find_tus_upload, id, owner_id);
  if (r.empty())
    return std::nullopt;
  return tus_row_from(r[0]);
}

bool delete_tus_upload(pqxx::transaction_base& tx, const std::string& id, int64_t owner_id) {
  return exec(tx, sql::delete_tus_upload, id, owner_id).affected_rows() > 0;
}

int64_t touch_tus_upload(pqxx::transaction_base& tx, const std::string& id,
                         int64_t expiry_seconds) {
  auto r = exec(tx, sql::touch_tus_upload, id, expiry_seconds);
  return r.empty() ? 0 : r[0]["expires_at"].as<int64_t>();
}

std::variant<upload_row, failure> complete_tus_upload(pqxx::transaction_base& tx,
                                                      const new_upload& up, const identity& owner,
                                                      const std::string& ip,
                                                      const std::string& request_id) {
  // The reservation goes first, so the quota check sees the real size only.
  // No row: the upload was terminated while it completed.
  if (exec(tx, sql::delete_completed_tus_upload, up.id).affected_rows() == 0)
    return failure{error_code::not_found, "the upload was terminated"};
  return insert_upload(tx, up, owner, ip, request_id);
}

completion_fate find_completion_fate(pqxx::transaction_base& tx, const std::string& id) {
  if (!exec(tx, sql::lock_tus_upload, id).empty())
    return completion_fate::kept;
  // Each statement takes a new snapshot (READ COMMITTED): a row that is
  // gone now was deleted by a transaction that has committed.
  if (!exec(tx, sql::tus_upload_exists, id).empty())
    return completion_fate::pending;
  if (!exec(tx, sql::upload_recorded, id).empty())
    return completion_fate::recorded;
  return completion_fate::gone;
}

std::vector<std::string> delete_expired_tus_uploads(pqxx::transaction_base& tx,
                                                    const std::string& machine_id,
                                                    const std::string& volume_id, unsigned limit,
                                                    const std::vector<std::string>& keep) {
  std::vector<std::string> ids;
  for (auto row : exec(tx, sql::delete_expired_tus_uploads, machine_id, static_cast<int>(limit),
                       json_array_of(keep), volume_id))
    ids.push_back(row["id"].as<std::string>());
  return ids;
}

std::map<std::string, std::string> tus_volumes(pqxx::transaction_base& tx) {
  std::map<std::string, std::string> rows;
  for (auto row : exec(tx, sql::tus_volumes))
    rows.emplace(row["id"].as<std::string>(), row["volume_id"].as<std::string>());
  return rows;
}

std::vector<std::string> delete_missing_tus_uploads(pqxx::transaction_base& tx,
                                                    const std::string& volume_id,
                                                    const std::string& machine_id,
                                                    const std::vector<std::string>& ids) {
  std::vector<std::string> deleted;
  for (auto& id : ids)
    if (exec(tx, sql::delete_missing_tus_upload, id, volume_id, machine_id).affected_rows() > 0)
      deleted.push_back(id);
  return deleted;
}

uint64_t claim_tus_uploads(pqxx::transaction_base& tx, const std::string& volume_id,
                           const std::vector<std::string>& ids) {
  if (ids.empty())
    return 0;
  return exec(tx, sql::claim_tus_uploads, volume_id, json_array_of(ids)).affected_rows();
}

std::map<std::string, bool> hold_tus_uploads(pqxx::transaction_base& tx,
                                             const std::vector<std::string>& ids) {
  std::map<std::string, bool> held;
  if (ids.empty())
    return held;
  for (auto row : exec(tx, sql::hold_tus_uploads, json_array_of(ids)))
    held.emplace(row["id"].as<std::string>(), row["expired"].as<bool>());
  return held;
}

} // namespace portal::db

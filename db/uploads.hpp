// The uploads table: recording a finished upload and the SPEC §6 reads.
// Every query is scoped to the viewer: an uploader sees only its own rows, an
// admin sees all; another user's id is simply "not found" (SPEC §4).
#pragma once

#include "config/error_code.hpp"
#include "db/identity.hpp"
#include "db/query.hpp"

#include <boost/json/object.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace portal::db {

// The statements of the functions below with the same names: they label the
// db requests that run them.
namespace sql {
extern const query insert_upload;
extern const query find_upload;
extern const query list_uploads;
extern const query delete_upload;
extern const query delete_expired_uploads;
} // namespace sql

struct upload_row {
  std::string id;
  std::string filename;
  uint64_t size = 0;
  std::string sha256;
  std::string format; // "tar.gz" | "tar.zst"
  uint64_t entries = 0;
  uint64_t uncompressed_size = 0;
  std::string owner;      // username
  std::string created_at; // RFC 3339 UTC
  // created_at + the retention in force when read (RFC 3339 UTC); none when
  // retention is off (SPEC §6).
  std::optional<std::string> expires_at;
  std::string volume_id; // of the data dir holding the file ("": none recorded); not shown
};

// The upload object of SPEC §6.
boost::json::object to_json(const upload_row& row);

struct new_upload {
  std::string id;
  int64_t owner_id = 0;
  std::string filename;
  uint64_t size = 0;
  std::string sha256;
  std::string format;
  uint64_t entries = 0;
  uint64_t uncompressed_size = 0;
  std::optional<unsigned> retention_days; // only for the row returned: nothing is stored
  uint64_t quota = 0;                     // the owner's quota, 0 = none
  std::string volume_id;                  // of the data dir holding the file ("": none known)
};

// Inserts the row (and its audit event) and returns it as stored. With
// `quota` > 0, returns failure quota_exceeded (and inserts nothing) if the
// owner's stored bytes would pass it (checked under a lock on the owner's
// row, so that two uploads finishing at once cannot both slip under it).
std::variant<upload_row, failure> insert_upload(pqxx::transaction_base& tx, const new_upload& up,
                                                const identity& owner, const std::string& ip,
                                                const std::string& request_id);

// `retention_days` (PORTAL_RETENTION_DAYS, nullopt = off) gives expires_at.
std::optional<upload_row> find_upload(pqxx::transaction_base& tx, const std::string& id,
                                      const identity& viewer,
                                      std::optional<unsigned> retention_days);

struct upload_page {
  std::vector<upload_row> uploads;
  std::optional<std::string> next_cursor;
};

// Newest first; `cursor` is an opaque string from a previous page. A cursor
// this server did not make: failure invalid_cursor (SPEC §6, 400).
std::variant<upload_page, failure> list_uploads(pqxx::transaction_base& tx, const identity& viewer,
                                                unsigned limit,
                                                const std::optional<std::string>& cursor,
                                                std::optional<unsigned> retention_days);

// Deletes the row the viewer may see (and audits it); false if there is none.
bool delete_upload(pqxx::transaction_base& tx, const std::string& id, const identity& viewer,
                   const std::string& ip, const std::string& request_id);

// Whose expired uploads a data directory may delete (storage/volume_id.hpp).
struct expiring_volume {
  std::string id;                      // the directory's volume id
  bool judged = false;                 // start-up judged the rows against it
  std::vector<std::string> files_here; // the upload ids whose archive it holds
};

// Deletes up to `limit` rows, oldest first, created `retention_days` or more
// days ago (SPEC §9 retention: the setting in force, whatever it was at
// upload) and whose file is this volume's: rows of a judged volume's id;
// rows of no volume, or of an unjudged volume's id, only when their archive
// is in files_here. Audits each; returns their ids, whose files must go next.
std::vector<std::string> delete_expired_uploads(pqxx::transaction_base& tx,
                                                const expiring_volume& volume,
                                                unsigned retention_days, unsigned limit);

// Start-up reconciliation (storage/reconcile.hpp): every row's id and the
// volume it records ("" for none: storage::row_volumes); deleting rows of
// `volume_id` whose file is gone, auditing each (returns the ids deleted);
// recording `volume_id` on rows of no volume (returns how many).
std::map<std::string, std::string> upload_volumes(pqxx::transaction_base& tx);
std::vector<std::string> delete_missing_uploads(pqxx::transaction_base& tx,
                                                const std::string& volume_id,
                                                const std::vector<std::string>& ids);
uint64_t claim_uploads(pqxx::transaction_base& tx, const std::string& volume_id,
                       const std::vector<std::string>& ids);

} // namespace portal::db

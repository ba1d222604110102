// The tus_uploads table (migration 0003, SPEC §5.2): partial uploads. Every
// read is scoped to the owner: another user's id is "not found", admins
// included (issue 12: owner-only). The offset is not stored (docs/TUS.md).
#pragma once

#include "config/error_code.hpp"
#include "db/identity.hpp"
#include "db/query.hpp"
#include "db/uploads.hpp"

#include <pqxx/pqxx>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace portal::db {

// The statements that label db requests (actors/db_request.hpp).
namespace sql {
extern const query insert_tus_upload;
extern const query find_tus_upload;
extern const query delete_tus_upload;
extern const query touch_tus_upload;
extern const query delete_expired_tus_uploads;
extern const query lock_tus_upload;
} // namespace sql

struct tus_row {
  std::string id;
  int64_t owner_id = 0;
  std::string filename;
  std::string format; // "tar.gz" | "tar.zst"
  uint64_t length = 0;
  std::string metadata;
  int64_t expires_at = 0; // seconds since the epoch
  bool expired = false;   // expires_at has passed (by the database's clock)
  std::optional<std::string> machine_id;
};

struct new_tus_upload {
  std::string id;
  int64_t owner_id = 0;
  std::string filename;
  std::string format;
  uint64_t length = 0;
  std::string metadata;
  int64_t expiry_seconds = 0;
  std::optional<std::string> machine_id;
  std::string volume_id; // of the data dir holding the partial ("": none known)
  uint64_t quota = 0;    // the owner's quota, 0 = none
};

// Inserts the row (the declared length reserves quota: failure
// quota_exceeded, checked under the owner's lock like insert_upload) and
// returns it.
std::variant<tus_row, failure> insert_tus_upload(pqxx::transaction_base& tx,
                                                 const new_tus_upload& up);

// The owner's row, also when expired (the caller answers 410 then).
std::optional<tus_row> find_tus_upload(pqxx::transaction_base& tx, const std::string& id,
                                       int64_t owner_id);

// Deletes the owner's row; false if there was none.
bool delete_tus_upload(pqxx::transaction_base& tx, const std::string& id, int64_t owner_id);

// Moves expires_at to now + expiry_seconds; returns it (seconds since the
// epoch), or 0 when the row is gone or locked (not waited for).
int64_t touch_tus_upload(pqxx::transaction_base& tx, const std::string& id, int64_t expiry_seconds);

// Completion (SPEC §5.2): in one transaction the tus row goes and the
// upload's row comes (insert_upload, quota rechecked under the owner lock).
// failure not_found when the tus row is gone (terminated meanwhile).
std::variant<upload_row, failure> complete_tus_upload(pqxx::transaction_base& tx,
                                                      const new_upload& up, const identity& owner,
                                                      const std::string& ip,
                                                      const std::string& request_id);

// What became of a completion whose COMMIT is in doubt (its connection was
// lost after COMMIT was sent). The completion holds the tus row's lock until
// its transaction ends: a row this takes the lock of (SKIP LOCKED, so it
// never waits and holds no db worker) was not deleted, so that transaction
// was rolled back; a row still locked means it may still run (ask again).
enum class completion_fate {
  kept,     // the tus row is there, unlocked: the completion was rolled back
  pending,  // the tus row is locked: that transaction may still run
  recorded, // the upload's row exists: it committed
  gone,     // neither: the upload was terminated (or deleted since)
};
completion_fate find_completion_fate(pqxx::transaction_base& tx, const std::string& id);

// Deletes up to `limit` expired rows of this machine (`machine_id` empty:
// rows without one) and of this data directory's volume (or of none: a
// copy of the volume, which gets its own id, leaves the original's alone),
// except the ids in `keep` (uploads with a live session: a PATCH may be
// streaming into it), and returns their ids, whose files go next.
std::vector<std::string> delete_expired_tus_uploads(pqxx::transaction_base& tx,
                                                    const std::string& machine_id,
                                                    const std::string& volume_id, unsigned limit,
                                                    const std::vector<std::string>& keep);

// Start-up reconciliation (storage/partial_reconcile.hpp): every row's id and
// the volume it records ("" for none: storage::row_volumes); deleting rows of
// `volume_id` and `machine_id` (FLY_MACHINE_ID, "" for none) whose partial is
// gone (returns the ids deleted); recording `volume_id` on rows of no volume
// (returns how many).
std::map<std::string, std::string> tus_volumes(pqxx::transaction_base& tx);
std::vector<std::string> delete_missing_tus_uploads(pqxx::transaction_base& tx,
                                                    const std::string& volume_id,
                                                    const std::string& machine_id,
                                                    const std::vector<std::string>& ids);
uint64_t claim_tus_uploads(pqxx::transaction_base& tx, const std::string& volume_id,
                           const std::vector<std::string>& ids);

// Start-up, for completions cut off before their record committed
// (storage::archived_partials): the ids of `ids` whose tus row this
// transaction now holds, until it ends, each with whether it has expired. A
// row locked by a transaction still running (a killed server's COMMIT,
// waiting on a standby, or a statement of it still waiting on a lock) is
// skipped, never waited for: that COMMIT may still land.
std::map<std::string, bool> hold_tus_uploads(pqxx::transaction_base& tx,
                                             const std::vector<std::string>& ids);

} // namespace portal::db

// SPEC §9 retention: with PORTAL_RETENTION_DAYS set, uploads expire and the
// retention_reaper removes them: once at start, then every
// PORTAL_REAPER_INTERVAL_SECONDS. It deletes expired rows in batches through
// the db actors (each audited `upload.expired`), then tells the storage
// writer that owns each id to remove its file. A crash between the two
// leaves a file without a row, which the next start moves to orphans/.
//
// An upload expires PORTAL_RETENTION_DAYS after its created_at, by the
// setting in force now (nothing is stamped on the row): a shorter setting
// reaches older uploads at once, and with retention off none is reaped.
//
// Each server reaps the uploads whose file is its own: rows that record its
// volume, and rows of no volume whose archive it holds. A start that could
// not judge its directory (no database) reaps its id's rows only where it
// holds their archive. On a shared database another machine's reaper, or a
// copy of the volume's, would delete the row but could not remove the
// original file, which its own volume's next start would then keep in
// orphans/ for good.
//
// The same tick removes expired tus partials of this machine and volume (SPEC §5.2,
// docs/TUS.md): their rows go in the same transaction, their files right
// after, on the db worker's thread (a crash between the two leaves a row
// without a file, deleted at the next start).
//
// Cooperative, not detached: it only sends messages and waits for answers.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/actor_probe.hpp"
#include "storage/data_dir.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace portal {

// Whose expired uploads a reaper removes (storage/volume_id.hpp).
struct reaped_volume {
  std::string id;      // this data directory's volume id
  bool judged = false; // start-up judged the rows against it (the database answered)
};

struct reaper_options {
  std::chrono::seconds interval{300};
  std::chrono::milliseconds db_deadline{2000};
  unsigned storage_writers = 1;
  unsigned batch = 500; // rows per transaction
  storage::data_dir_layout layout;
  std::string machine_id; // FLY_MACHINE_ID: whose partials this machine reaps
  reaped_volume volume;
  // PORTAL_RETENTION_DAYS; nullopt: off, and no upload is reaped (SPEC §6:
  // expires_at only with retention on).
  std::optional<unsigned> retention_days;
  // Ids of the tus uploads with a live session on this machine: never reaped
  // while live, since a PATCH may be streaming into one (it moves the expiry
  // when it ends; an idle session retires, and the next round reaps it).
  std::function<std::vector<std::string>()> live_tus;
};

caf::actor spawn_retention_reaper(caf::event_based_actor* sup, probe_ptr probe,
                                  std::shared_ptr<actor_directory> dir, reaper_options opts);

} // namespace portal

// SPEC §9 retention: with PORTAL_RETENTION_DAYS set, uploads expire and the
// retention_reaper removes them: once at start, then every
// PORTAL_REAPER_INTERVAL_SECONDS. It deletes expired rows in batches through
// the db actors (each audited `upload.expired`), then tells the storage
// writer that owns each id to remove its file. A crash between the two
// leaves a file without a row, which the next start moves to orphans/.
//
// Cooperative, not detached: it only sends messages and waits for answers.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/actor_probe.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <memory>

namespace portal {

struct reaper_options {
  std::chrono::seconds interval{300};
  std::chrono::milliseconds db_deadline{2000};
  unsigned storage_writers = 1;
  unsigned batch = 500; // rows per transaction
};

caf::actor spawn_retention_reaper(caf::event_based_actor* sup, probe_ptr probe,
                                  std::shared_ptr<actor_directory> dir, reaper_options opts);

} // namespace portal

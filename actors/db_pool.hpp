// The db_pool is the one address for database work. Workers announce
// themselves when idle (`ready`); the pool hands each queued request to an
// idle worker, fails requests at once while every worker has reported that it
// has no connection (a just-started worker may still connect), and
// fails any request still unanswered at its deadline, so no caller waits
// longer than config.db_deadline for the database.
#pragma once

#include "actors/actor_probe.hpp"
#include "actors/db_request.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <memory>

namespace portal {

class actor_directory;

struct db_pool_counts {
  std::atomic<int> idle{0};
  std::atomic<int> busy{0};
  std::atomic<int> disconnected{0};
};

caf::actor spawn_db_pool(caf::event_based_actor* sup, probe_ptr probe,
                         std::shared_ptr<db_pool_counts> counts, unsigned workers);

// Sends a request to the pool found in `dir`; fails it at once when there is
// no pool (e.g. during a restart). Safe from any thread.
void submit(const actor_directory& dir, db_request_ptr req);

} // namespace portal

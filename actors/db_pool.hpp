// The db_pool is the one address for database work. Workers announce
// themselves when idle (`ready`); the pool hands each queued request to an
// idle worker, fails requests at once while every worker has reported that it
// has no connection (a just-started worker may still connect), and
// fails any request still unanswered at its deadline, so no caller waits
// longer than config.db_deadline for the database, save for the COMMIT of a
// transaction a worker has claimed (db_request::claim_commit); that COMMIT is
// interrupted once it outlives the deadline by as long again, and what a
// worker still runs for a request answered at its deadline is interrupted
// at once (db_request::set_interrupt).
#pragma once

#include "actors/actor_probe.hpp"
#include "actors/db_request.hpp"
#include "actors/db_worker.hpp"
#include "actors/messages.hpp"

#include <caf/local_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <memory>

namespace portal {

class actor_directory;

struct db_pool_counts {
  std::atomic<int> idle{0};
  std::atomic<int> busy{0};
  std::atomic<int> disconnected{0};
};

using db_pool_actor =
  caf::typed_actor<caf::reacts_to<submit_atom, db_request_ptr>,  // from anyone: see submit()
                   caf::reacts_to<ready_atom, db_worker_actor>,  // a worker is idle (and connected)
                   caf::reacts_to<lost_atom, db_worker_actor>,   // a worker has no connection
                   caf::reacts_to<retry_atom, db_request_ptr>,   // a worker: it waited on a lock
                   caf::reacts_to<expire_atom, db_request_weak>, // its own timers: a
                   caf::reacts_to<interrupt_atom, db_request_ptr>>; // request's deadline, and
                                                                    // a COMMIT's overrun

db_pool_actor spawn_db_pool(caf::local_actor* sup, probe_ptr probe,
                            std::shared_ptr<db_pool_counts> counts, unsigned workers);

// Sends a request to the pool found in `dir`; fails it at once when there is
// no pool (e.g. during a restart). Safe from any thread.
void submit(const actor_directory& dir, db_request_ptr req);

} // namespace portal

// A db_worker owns one pqxx::connection and runs requests one at a time on
// its own thread (spawned `detached`: libpq blocks). It keeps no session
// state across transactions, so a PgBouncer in transaction mode is fine.
//
// Losing the connection is not a crash: the worker tells the pool, fails the
// request it held with `unavailable`, and reconnects with exponential backoff
// on its own. A crash (a bug, or an admin's kill) is its supervisor's
// business.
#pragma once

#include "actors/actor_probe.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace portal {

class actor_directory;

struct db_worker_options {
  std::string conninfo; // a secret: never logged
  std::string pool_name = "db_pool";
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
};

caf::actor spawn_db_worker(caf::event_based_actor* sup, probe_ptr probe,
                           std::shared_ptr<actor_directory> dir, db_worker_options opts,
                           std::string name);

} // namespace portal

// A db_worker owns one pqxx::connection and runs requests one at a time on
// its own thread (spawned `detached`: libpq blocks). It keeps no session
// state across transactions, so a PgBouncer in transaction mode is fine.
//
// Losing the connection is not a crash: the worker tells the pool, fails the
// request it held with `unavailable`, and reconnects with exponential backoff
// on its own. A crash (a bug, or an admin's kill) is its supervisor's
// business. A connection whose request ended past its deadline gets a
// ROLLBACK (a cancel meant for the request may have left it inside a failed
// transaction: db_worker.cpp, `ending`), and is replaced only if that fails.
#pragma once

#include "actors/actor_probe.hpp"
#include "actors/db_request.hpp"
#include "actors/messages.hpp"

#include <caf/local_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace portal {

class actor_directory;

using db_worker_actor =
  caf::typed_actor<caf::reacts_to<run_atom, db_request_ptr>, // one request, in its transaction
                   caf::reacts_to<connect_atom>>;            // its own (re)connect timer

struct db_worker_options {
  std::string conninfo; // a secret: never logged
  std::string pool_name = "db_pool";
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
};

// It finds the pool under opts.pool_name in `dir` once, at start: it is
// restarted with the pool (rest_for_one).
db_worker_actor spawn_db_worker(caf::local_actor* sup, probe_ptr probe,
                                std::shared_ptr<actor_directory> dir, db_worker_options opts,
                                std::string name);

} // namespace portal

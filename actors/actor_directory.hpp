// Where long-lived actors are found by their stable name. A supervisor
// records each child it starts; clients look the name up per use, so they
// never hold a handle that went stale when the child was restarted.
// Entries hold weak references: the directory never keeps an actor alive or
// blocks shutdown.
//
// Handles are stored untyped (a supervisor starts children of every kind);
// find<H>(name) gives a client the typed handle of the interface that the
// name's kind implements (storage_writer_N: storage_writer_actor, db_pool:
// db_pool_actor), by an unchecked caf::actor_cast: the name is the contract.
#pragma once

#include "actors/actor_probe.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace portal {

struct actor_entry {
  std::string name;       // stable across restarts (SPEC §11)
  std::string kind;       // e.g. "db_worker"
  std::string supervisor; // the supervising actor's name
  caf::actor_id id = 0;
  uint64_t restarts = 0;  // per name
  probe_ptr probe;        // its live counters (SPEC §7 /admin/actors)
  bool temporary = false; // never restarted: one per upload
};

class actor_directory : public std::enable_shared_from_this<actor_directory> {
public:
  // Records a (re)started child. `restarted` bumps the per-name counter.
  void record(const actor_entry& entry, const caf::actor& handle, bool restarted);
  void forget(const std::string& name);
  // Records an actor nobody restarts (one per upload): it stays listed
  // until it exits, and an abnormal exit counts as a crash of its kind.
  void record_temporary(const actor_entry& entry, const caf::actor& handle);
  // Abnormal exits of temporary actors, by kind.
  std::map<std::string, uint64_t> crashes() const;

  // The live actor under `name`, or an invalid handle.
  caf::actor find(const std::string& name) const;
  template <class Handle>
  Handle find(const std::string& name) const {
    return caf::actor_cast<Handle>(find(name));
  }
  // The live actor with this id, or an invalid handle.
  caf::actor find(caf::actor_id id) const;
  std::vector<actor_entry> entries() const;
  // Blocks until every one of `names` has a live actor (true) or `deadline`
  // passes (false). For the composition root only, never on a scheduler
  // thread: it waits for supervisors that run there.
  bool wait_for(const std::vector<std::string>& names,
                std::chrono::steady_clock::time_point deadline) const;

private:
  struct slot {
    actor_entry entry;
    caf::weak_actor_ptr handle;
  };
  bool all_live(const std::vector<std::string>& names) const; // mutex_ held
  mutable std::mutex mutex_;
  mutable std::condition_variable recorded_;
  std::map<std::string, slot> slots_;
  std::map<std::string, uint64_t> crashes_;
};

} // namespace portal

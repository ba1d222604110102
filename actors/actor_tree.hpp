// The supervision tree of the running server (docs/ARCHITECTURE.md draws it):
//
//   root                      one_for_one
//   ├── db_supervisor         rest_for_one: workers depend on the pool
//   │   ├── db_pool
//   │   └── db_workers        one_for_one
//   │       └── db_worker_1..N   (detached: libpq blocks)
//   └── storage_supervisor    one_for_one
//       ├── storage_writer_1..M  (detached: write, fsync)
//       └── archive_reader_1..2  (detached: list a stored archive)
//
// The restart policies and intensities below are the whole of it: data.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/db_pool.hpp"
#include "actors/heap_trimmer.hpp"
#include "actors/retention_reaper.hpp"
#include "config/config.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace portal {

struct actor_tree {
  caf::actor root;
  std::shared_ptr<actor_directory> directory;
  std::shared_ptr<db_pool_counts> db_counts;
  bool started = false; // every permanent actor of the tree was running at return
};

// Returns once every permanent actor of the tree is running and in the
// directory, as OTP's start_link does, or after 10 s with `started` false.
// Until then a request would find no db_pool and be refused with 503, so the
// server listens only after this (main.cpp). Blocks: call it from outside
// the actor system's threads. The database need not be up: a db_worker is
// running while it retries its connection.
// volume: this data directory's (storage/volume_id.hpp), whose expired
// uploads the retention reaper removes.
// live_tus: the ids of this machine's live tus sessions (tus_registry), which
// the retention reaper must not expire under a running PATCH. trim: when the
// heap_trimmer gives freed memory back (without idle_after, no trimmer).
actor_tree start_actor_tree(caf::actor_system& sys, const config& cfg, reaped_volume volume = {},
                            std::function<std::vector<std::string>()> live_tus = {},
                            heap_trim_options trim = {});

} // namespace portal

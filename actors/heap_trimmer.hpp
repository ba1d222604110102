// Gives the heap's free memory back to the operating system once the server
// is idle (issue 14: after a burst, RSS within 20 % of the idle figure within
// a minute). glibc keeps what a burst freed in its arenas (one per thread
// that allocated, up to 8 per core) and returns only the top of each heap by
// itself; malloc_trim(0) also releases the free pages inside them
// (MADV_DONTNEED). Measured before this actor: 17 MiB idle, 98 MiB still
// held 60 s after 256 concurrent 1 MiB uploads (bench/RESULTS.md, run 8);
// malloc_trim alone brought it to 56 MiB, the rest was the chunk pool's
// recycled buffers (up to the 32 MiB budget).
//
// Every `period` it asks `idle()` (no upload is admitted: nothing streams);
// when idle it first lets `release_caches()` free what the server keeps for
// reuse (the chunk pool's buffers), then, if the arenas hold `slack_bytes`
// more free than after the last trim, trims.
// Not while uploads run: the next chunk would fault the pages back in.
// Detached: malloc_trim takes each arena's lock and walks it (milliseconds),
// which must not stall the cooperative scheduler's threads.
#pragma once

#include "actors/actor_probe.hpp"

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include <chrono>
#include <cstddef>
#include <functional>

namespace portal {

struct heap_trim_options {
  std::chrono::milliseconds period{10000};
  std::size_t slack_bytes = std::size_t{8} << 20; // free heap bytes worth a trim
  std::function<bool()> idle;                     // true while no upload runs
  std::function<void()> release_caches;           // run when idle, before a trim
};

caf::actor spawn_heap_trimmer(caf::local_actor* sup, probe_ptr probe, heap_trim_options opts);

} // namespace portal

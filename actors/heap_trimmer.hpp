// Gives the heap's free memory back to the operating system once a burst of
// uploads is over (issue 14: after a burst, RSS within 20 % of the idle
// figure within a minute). glibc keeps what a burst freed in its arenas (one
// per thread that allocated, up to 8 per core) and returns only the top of
// each heap by itself; malloc_trim(0) also releases the free pages inside
// them (MADV_DONTNEED). The chunk pool keeps its recycled buffers (up to the
// 32 MiB budget) for the next upload; they go first.
//
// Every `period` it asks `idle_after()`: nullopt while an upload runs (the
// next chunk would fault freed pages back in), else how many uploads were
// admitted since the start. When that count changed since the last trim, a
// burst came and went: it frees the caches (`release_caches()`) and trims,
// once. bench/RESULTS.md run 9: 256 concurrent 1 MiB uploads left 94.6 MiB
// resident 60 s later without it (run 8), 24.4 MiB with it, 10 s after.
// Detached: malloc_trim takes each arena's lock and walks it (milliseconds),
// which must not stall the cooperative scheduler's threads.
#pragma once

#include "actors/actor_probe.hpp"

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

namespace portal {

struct heap_trim_options {
  std::chrono::milliseconds period{10000};
  std::function<std::optional<uint64_t>()> idle_after; // upload_admission::idle_after
  std::function<void()> release_caches;                // before each trim
};

// Whether a look that found `idle_after` trims, given the count at the last
// trim (`trimmed_after`, updated when it does): only after a burst.
bool heap_trim_due(std::optional<uint64_t> idle_after, uint64_t& trimmed_after);

caf::actor spawn_heap_trimmer(caf::local_actor* sup, probe_ptr probe, heap_trim_options opts);

} // namespace portal

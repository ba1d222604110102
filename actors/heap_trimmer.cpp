#include "actors/heap_trimmer.hpp"

#include "config/log.hpp"

#include <caf/all.hpp>

#include <malloc.h>

namespace portal {

bool heap_trim_due(std::optional<uint64_t> idle_after, uint64_t& trimmed_after) {
  if (!idle_after || *idle_after == trimmed_after)
    return false;
  trimmed_after = *idle_after;
  return true;
}

namespace {

using trim_atom = caf::atom_constant<caf::atom("trim")>;

struct trimmer_state {
  uint64_t trimmed_after = 0; // uploads admitted when it last trimmed
  const char* name = "heap_trimmer";
};

caf::behavior heap_trimmer(caf::stateful_actor<trimmer_state>* self, probe_ptr probe,
                           heap_trim_options opts) {
  self->delayed_send(self, opts.period, trim_atom::value);
  return probed(self, probe, [=](trim_atom) {
    // An optimisation: whatever goes wrong here is logged, never a crash
    // that would count against root's restart intensity.
    try {
      if (heap_trim_due(opts.idle_after(), self->state.trimmed_after)) {
        if (opts.release_caches)
          opts.release_caches();
        ::malloc_trim(0);
        log::info("heap trimmed", {{"uploads_admitted", self->state.trimmed_after}});
      }
    } catch (const std::exception& e) {
      log::error("heap trim failed", {{"error", e.what()}});
    }
    self->delayed_send(self, opts.period, trim_atom::value);
  });
}

} // namespace

caf::actor spawn_heap_trimmer(caf::local_actor* sup, probe_ptr probe, heap_trim_options opts) {
  return sup->spawn<caf::detached>(heap_trimmer, std::move(probe), std::move(opts));
}

} // namespace portal

#include "actors/heap_trimmer.hpp"

#include "config/log.hpp"

#include <caf/all.hpp>

#include <malloc.h>

namespace portal {

namespace {

using trim_atom = caf::atom_constant<caf::atom("trim")>;

struct trimmer_state {
  // Free heap bytes right after the last trim: pages released inside the
  // arenas stay free chunks to malloc, so only what was freed since counts.
  std::size_t free_after_trim = 0;
  const char* name = "heap_trimmer";
};

// Free bytes the arenas hold: chunks in their free lists plus the
// releasable top of each heap (mallinfo2 sums every arena).
std::size_t free_heap_bytes() {
  auto info = ::mallinfo2();
  return info.fordblks;
}

caf::behavior heap_trimmer(caf::stateful_actor<trimmer_state>* self, probe_ptr probe,
                           heap_trim_options opts) {
  self->delayed_send(self, opts.period, trim_atom::value);
  return probed(self, probe, [=](trim_atom) {
    auto& st = self->state;
    bool idle = !opts.idle || opts.idle();
    if (idle && opts.release_caches)
      opts.release_caches();
    auto free_now = free_heap_bytes();
    if (idle && free_now > st.free_after_trim + opts.slack_bytes) {
      ::malloc_trim(0);
      st.free_after_trim = free_heap_bytes();
      log::info("heap trimmed", {{"free_heap_bytes", free_now}});
    } else if (free_now < st.free_after_trim) {
      st.free_after_trim = free_now; // reused since: a later burst counts from here
    }
    self->delayed_send(self, opts.period, trim_atom::value);
  });
}

} // namespace

caf::actor spawn_heap_trimmer(caf::local_actor* sup, probe_ptr probe, heap_trim_options opts) {
  return sup->spawn<caf::detached>(heap_trimmer, std::move(probe), std::move(opts));
}

} // namespace portal

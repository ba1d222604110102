#include "actors/archive_reader.hpp"

#include "config/log.hpp"

#include <caf/all.hpp>

namespace portal {

namespace {

// A stored archive passed the upload's check, so this bound only matters for
// a file damaged on disk since.
constexpr std::size_t max_listed_entries = 100000;

struct reader_state {
  const char* name = "archive_reader";
};

archive_reader_actor::behavior_type
archive_reader(archive_reader_actor::stateful_pointer<reader_state> self, probe_ptr probe) {
  return probed(self, probe, [](list_atom, const entries_job& job) {
    try {
      job.done(storage::list_entries(job.archive, job.format, max_listed_entries));
    } catch (const std::exception& e) {
      log::error("stored archive unreadable",
                 {{"archive", job.archive.filename().string()}, {"error", e.what()}});
      job.done(std::nullopt);
    }
  });
}

} // namespace

archive_reader_actor spawn_archive_reader(caf::local_actor* sup, probe_ptr probe) {
  return sup->spawn<caf::detached>(archive_reader, std::move(probe));
}

} // namespace portal

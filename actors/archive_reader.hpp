// An archive_reader lists the members of stored archives for
// GET /api/v1/uploads/{id}/entries. Reading a large archive from disk blocks
// for a while, so readers are detached actors of their own (a small fixed
// pool): they never hold up a db worker or a storage writer.
//
//   (list_atom, entries_job)   runs libarchive over the file, then calls job.done
#pragma once

#include "actors/actor_probe.hpp"
#include "storage/archive_entries.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>

#include <functional>
#include <optional>
#include <vector>

namespace portal {

struct entries_job {
  std::filesystem::path archive;
  storage::archive_format format = storage::archive_format::tar_gz;
  // nullopt: the archive could not be read. Called on the reader's thread.
  std::function<void(std::optional<std::vector<storage::archive_entry_info>>)> done;
};

caf::actor spawn_archive_reader(caf::event_based_actor* sup, probe_ptr probe);

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::entries_job)

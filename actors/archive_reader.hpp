// An archive_reader lists the members of stored archives for
// GET /api/v1/uploads/{id}/entries. Reading a large archive from disk blocks
// for a while, so readers are detached actors of their own (a small fixed
// pool): they never hold up a db worker or a storage writer.
//
// The answer goes to the job's callback (on the reader's thread), not as a
// reply: its caller is a connection, not an actor.
#pragma once

#include "actors/actor_probe.hpp"
#include "actors/messages.hpp"
#include "storage/archive_entries.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/local_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

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

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::entries_job)

namespace portal {

// Runs libarchive over the job's file, then calls job.done.
using archive_reader_actor = caf::typed_actor<caf::reacts_to<list_atom, entries_job>>;

archive_reader_actor spawn_archive_reader(caf::local_actor* sup, probe_ptr probe);

} // namespace portal

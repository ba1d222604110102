// A storage writer owns the temporary files of the uploads it serves and
// does their blocking I/O (write + SHA-256, fsync, rename) on its own thread
// (spawned `detached`; a fixed pool, chosen per upload by id). If the upload
// session that owns a file dies, the writer removes the file; if the writer
// itself dies, its files' destructors do.
//
//   (chunk_atom, id, chunk_ptr) -> upload_failure   first chunk creates <tmp>/<id>.part
//   (commit_atom, id)           -> commit_result    fsync, rename into archives/, fsync dir
//   (discard_atom, id)                              remove the temporary file
//   (remove_atom, id)                               remove a committed archive
#pragma once

#include "actors/actor_probe.hpp"
#include "storage/data_dir.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

#include <string>

namespace portal {

caf::actor spawn_storage_writer(caf::event_based_actor* sup, probe_ptr probe,
                                storage::data_dir_layout layout);

// The writer for an upload id among `count` writers named storage_writer_1..N.
std::string storage_writer_name(const std::string& upload_id, unsigned count);

} // namespace portal

// A storage writer owns the temporary files of the uploads it serves and
// does their blocking I/O (write + SHA-256, fsync, rename) on its own thread
// (spawned `detached`; a fixed pool, chosen per upload by id). If the upload
// session that owns a file dies, the writer removes the file; if the writer
// itself dies, its files' destructors do.
//
// Errors are caf::errors of category "portal" (actors/caf_error.hpp):
// insufficient_storage (the disk is full), storage_unavailable (any other
// I/O failure), internal (commit of an id it holds no file for). After a
// failed write the file is gone.
#pragma once

#include "actors/actor_probe.hpp"
#include "actors/upload_types.hpp"
#include "storage/data_dir.hpp"

#include <caf/local_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <string>

namespace portal {

using storage_writer_actor = caf::typed_actor<
  // Appends to <tmp>/<id>.part, created by the first chunk.
  caf::replies_to<chunk_atom, std::string, chunk_ptr>::with<caf::ok_atom>,
  // fsync, rename into archives/<id>, fsync the directory.
  caf::replies_to<commit_atom, std::string>::with<commit_result>,
  caf::reacts_to<discard_atom, std::string>, // remove the temporary file
  caf::reacts_to<remove_atom, std::string>>; // remove a committed archive

storage_writer_actor spawn_storage_writer(caf::local_actor* sup, probe_ptr probe,
                                          storage::data_dir_layout layout);

// The writer for an upload id among `count` writers named storage_writer_1..N.
std::string storage_writer_name(const std::string& upload_id, unsigned count);

} // namespace portal

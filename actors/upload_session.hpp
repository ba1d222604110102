// One upload_session per upload: it owns the upload's phases, limits and
// credit window (docs/ARCHITECTURE.md, "One upload"). Its phases, in order:
//
//   receiving   each chunk from the connection goes to the validator and to
//               the storage writer at once; when both have consumed it, one
//               credit goes back to the connection, which only then reads on
//   draining    the body ended; the last chunks are still being consumed
//   validating  the validator checks the end of the archive
//   committing  the writer fsyncs and renames the file into archives/
//   recording   the row goes into the database; then 201 with the upload
//   over        answered: a refusal or failure (from any phase) answers the
//               client once, discards the temporary file and ends the session
//
// The connection holds an upload_session_actor (actors/upload_types.hpp):
// (chunk_atom, chunk_ptr), (eof_atom), and (abort_atom) when the client is
// gone. The answer goes back through the upload_link, exactly once.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/upload_admission.hpp"
#include "actors/upload_types.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace portal {

struct upload_limits {
  uint64_t max_bytes = 0;          // PORTAL_MAX_UPLOAD_BYTES
  storage::archive_limits archive; // entries, 32 x max_bytes uncompressed
  std::chrono::milliseconds db_deadline{2000};
  std::optional<unsigned> retention_days;
  unsigned storage_writers = 1;
  uint64_t quota = 0;                 // the owner's quota, 0 = none
  std::optional<uint64_t> quota_left; // what the quota allowed at the start
  std::string volume_id;              // recorded on the row (storage/volume_id.hpp)
};

upload_session_actor spawn_upload_session(caf::actor_system& sys,
                                          std::shared_ptr<actor_directory> dir,
                                          upload_limits limits, upload_request req,
                                          upload_admission::ticket_ptr ticket,
                                          upload_link_ptr link);

} // namespace portal

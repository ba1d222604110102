// One upload_session per upload: it owns the upload's state machine, limits
// and credit window (docs/ARCHITECTURE.md, "One upload").
//
//   streaming  each chunk from the connection goes to the validator and to
//              the storage writer at once; when both have consumed it, one
//              credit goes back to the connection, which only then reads on
//   finishing  after the body's end: validator finish -> storage commit
//              (fsync, rename) -> the row in the database -> 201
//   failed     any refusal or failure answers the client once, discards the
//              temporary file and ends the session
//
// Messages from the connection: (chunk_atom, chunk_ptr), (eof_atom),
// (abort_atom) when the client is gone.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/upload_admission.hpp"
#include "actors/upload_types.hpp"

#include <caf/actor.hpp>
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
};

upload_session_actor spawn_upload_session(caf::actor_system& sys, std::shared_ptr<actor_directory> dir,
                                upload_limits limits, upload_request req,
                                upload_admission::ticket_ptr ticket, upload_link_ptr link);

} // namespace portal

// One upload's validator: runs storage::archive_check over the chunks in
// order. It is CPU work that never blocks (libarchive pulls from a fiber that
// yields), so it runs on the cooperative scheduler, in parallel with the
// storage writer that sees the same chunks. Linked to its upload_session.
//
// A refusal (SPEC §5.3: unsupported_media_type, invalid_archive,
// unsafe_entry, archive_bomb) is the request's error, a caf::error of
// category "portal" (actors/caf_error.hpp), as soon as it is certain; every
// later request gets the same one.
#pragma once

#include "actors/actor_probe.hpp"
#include "actors/upload_types.hpp"
#include "storage/archive_check.hpp"

#include <caf/local_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace portal {

using archive_validator_actor =
  caf::typed_actor<caf::replies_to<chunk_atom, chunk_ptr>::with<caf::ok_atom>, // the next bytes
                   caf::replies_to<finish_atom>::with<validation_result>>;     // the end of stream

archive_validator_actor spawn_archive_validator(caf::local_actor* session, probe_ptr probe,
                                                storage::archive_format format,
                                                storage::archive_limits limits);

} // namespace portal

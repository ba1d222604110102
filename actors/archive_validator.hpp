// One upload's validator: runs storage::archive_check over the chunks in
// order. It is CPU work that never blocks (libarchive pulls from a fiber that
// yields), so it runs on the cooperative scheduler, in parallel with the
// storage writer that sees the same chunks. Linked to its upload_session.
//
//   (chunk_atom, chunk_ptr) -> upload_failure      (status 0: keep going)
//   (finish_atom)           -> validation_result
#pragma once

#include "actors/actor_probe.hpp"
#include "storage/archive_check.hpp"

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>

namespace portal {

caf::actor spawn_archive_validator(caf::event_based_actor* session, probe_ptr probe,
                                   storage::archive_format format, storage::archive_limits limits);

} // namespace portal

// One tus_session per tus upload (SPEC §5.2, docs/TUS.md, docs/ARCHITECTURE.md
// "One tus upload"): it owns the partial file, the validator and the running
// SHA-256, and serialises every request about the upload. It LIVES ACROSS
// PATCHes, so a PATCH never replays the prefix; it stops after
// PORTAL_TUS_SESSION_IDLE_SECONDS without a request, and the next request
// spawns a new one, which replays the durable prefix from disk to rebuild the
// validator and the digest (lazily, at its first PATCH).
//
// Spawned `detached`: its file I/O (append, fsync, replay) blocks its own
// thread only. Found through the tus_registry (actors/tus_registry.hpp).
//
// A PATCH in two steps, so that 409 comes before any body byte is read:
//   (tus_begin_atom, tus_begin)  the head: offset check; the session stops
//       an older PATCH still streaming (its durable bytes kept, it is
//       answered 408), then answers the PATCH's number, or the refusal.
//   (tus_attach_atom, n, link, feed)  the body: the connection streams into
//       `feed` (spawn_tus_feed), which tags chunk/eof/abort with n, so bytes
//       of a PATCH that was stopped are never appended to a newer one.
// The PATCH's answer comes back through the link, exactly once.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/upload_admission.hpp"
#include "actors/upload_types.hpp"
#include "storage/data_dir.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace portal {

class tus_registry;

using tus_begin_atom = caf::atom_constant<caf::atom("tusbegin")>;   // a PATCH's head
using tus_attach_atom = caf::atom_constant<caf::atom("tusattach")>; // a PATCH's body
using tus_head_atom = caf::atom_constant<caf::atom("tushead")>;     // HEAD: the offset
using tus_delete_atom = caf::atom_constant<caf::atom("tusdelete")>; // termination
using tus_idle_atom = caf::atom_constant<caf::atom("tusidle")>;     // the idle timer

// What the session knows of its upload (its tus_uploads row).
struct tus_upload_info {
  std::string id;
  db::identity owner;
  std::string filename;
  storage::archive_format format = storage::archive_format::tar_gz;
  uint64_t length = 0; // Upload-Length
  int64_t expires_at = 0;
};

struct tus_limits {
  storage::data_dir_layout layout;
  storage::archive_limits archive;
  std::chrono::milliseconds db_deadline{2000};
  std::optional<unsigned> retention_days;
  uint64_t quota = 0; // the owner's quota, 0 = none
  uint64_t sync_bytes = uint64_t{64} << 20;
  std::chrono::seconds expiry{24 * 3600};
  std::chrono::seconds idle{60};
  std::string machine_id; // FLY_MACHINE_ID, or empty
  std::string volume_id;  // recorded on the upload's row (storage/volume_id.hpp)
};

// Upload-Checksum (tus checksum extension): the algorithm and the digest the
// PATCH's body must have.
struct tus_checksum {
  std::string algorithm; // "sha1" | "sha256"
  std::string digest;    // raw bytes
};

// The durable offset, or why there is none (not_found: the partial is gone).
using tus_offset = std::variant<uint64_t, failure>;

struct tus_begin {
  uint64_t offset = 0; // Upload-Offset
  // Content-Length, none when chunked: past Upload-Length it is 413, judged
  // after the offset (a stale offset is 409, which a client recovers from).
  std::optional<uint64_t> body_length;
  std::optional<tus_checksum> checksum;
  bool creation = false; // a POST with a body (creation-with-upload)
  // The caller's user id: a PATCH sent to a live session without the
  // database lookup is judged here as the lookup would judge it (404 for
  // another user's upload, 410 once expired).
  int64_t caller = 0;
  upload_admission::ticket_ptr ticket;
  std::string ip;
  std::string request_id;
  // The PATCH's number for tus_attach_atom, or the refusal (409 offset_mismatch...).
  std::function<void(std::variant<uint64_t, failure>)> reply;
};

using tus_reply = std::function<void(tus_offset)>;

using tus_session_actor = caf::typed_actor<
  caf::reacts_to<tus_begin_atom, tus_begin>,
  caf::reacts_to<tus_attach_atom, uint64_t, upload_link_ptr, upload_session_actor>,
  caf::reacts_to<chunk_atom, uint64_t, chunk_ptr>, caf::reacts_to<eof_atom, uint64_t>,
  caf::reacts_to<abort_atom, uint64_t>, caf::reacts_to<tus_head_atom, tus_reply>,
  caf::reacts_to<tus_delete_atom, tus_reply>, caf::reacts_to<tus_idle_atom, uint64_t>>;

tus_session_actor spawn_tus_session(caf::actor_system& sys, std::shared_ptr<actor_directory> dir,
                                    std::shared_ptr<tus_registry> registry, tus_limits limits,
                                    tus_upload_info info);

// The connection's end of PATCH number `patch`: forwards chunk/eof/abort to
// the session, tagged. It stops after abort_atom (from the connection, or
// from the session once the PATCH is answered) or when the session is gone.
upload_session_actor spawn_tus_feed(caf::actor_system& sys, tus_session_actor session,
                                    uint64_t patch);

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::tus_begin)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::tus_reply)

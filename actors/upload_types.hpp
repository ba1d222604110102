// What travels between the connection and the upload actors.
#pragma once

#include "actors/chunk_pool.hpp"
#include "actors/messages.hpp"
#include "config/error_code.hpp"
#include "db/identity.hpp"
#include "storage/archive_check.hpp"

#include <boost/json/object.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace portal {

// The validator's answer to finish_atom: the archive is whole.
struct validation_result {
  uint64_t entries = 0;
  uint64_t uncompressed_size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, validation_result& x) {
  return f(caf::meta::type_name("validation_result"), x.entries, x.uncompressed_size);
}

// The storage writer's answer to commit_atom: the archive is durable.
struct commit_result {
  std::string sha256;
  uint64_t size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_result& x) {
  return f(caf::meta::type_name("commit_result"), x.sha256, x.size);
}

// One upload's parameters, fixed when its headers were accepted.
struct upload_request {
  std::string id;
  std::string filename;
  storage::archive_format format = storage::archive_format::tar_gz;
  db::identity owner;
  std::string ip;
  std::string request_id;
  std::optional<uint64_t> declared_size; // Content-Length; none when chunked
  // Told once when the session refuses or fails the upload, with the bytes
  // it had received (net/ audits refusals with the status the client hears).
  std::function<void(const failure&, uint64_t bytes)> failed;
};

// SPEC §5.3: refused at the head (by Content-Length), in the body, or at the
// INSERT that rechecks under a lock.
inline failure over_quota() {
  return {error_code::quota_exceeded, "the upload would exceed your storage quota"};
}

// Where a tus upload stands after a PATCH or a POST with a body (SPEC §5.2):
// net/ turns it into Upload-Offset, Upload-Expires (and for a creation 201 +
// Location + Portal-Instance).
struct tus_progress {
  std::string id;
  uint64_t offset = 0;    // durable (fsynced) bytes
  int64_t expires_at = 0; // seconds since the epoch
  bool created = false;   // the answer to a creation-with-upload POST
  std::string instance;   // FLY_MACHINE_ID holding it (Portal-Instance), or empty
};

// The session's answer for the client: an error, or (error code none) the
// recorded upload object of SPEC §6, or for tus where the upload stands.
// net/ turns it into the HTTP response (handlers::upload_response), its
// status from net/error_table.
struct upload_answer {
  failure error;
  boost::json::object upload;
  std::optional<tus_progress> tus;
};

// The upload actors' way back to the connection. Both callbacks only post()
// onto the connection's strand. done() is answered exactly once: if the
// upload actor dies holding the link, the destructor answers `internal`, so
// a crash never leaves a client hanging.
class upload_link {
public:
  upload_link(std::function<void(std::size_t)> credit, std::function<void(upload_answer)> done)
    : credit_(std::move(credit)), done_(std::move(done)) {}
  upload_link(const upload_link&) = delete;
  upload_link& operator=(const upload_link&) = delete;
  ~upload_link() { done(upload_answer{{error_code::internal, "the upload failed"}, {}, {}}); }

  void credit(std::size_t n) const { credit_(n); }
  void done(upload_answer answer) {
    if (!answered_.exchange(true))
      done_(std::move(answer));
  }

private:
  std::function<void(std::size_t)> credit_;
  std::function<void(upload_answer)> done_;
  std::atomic<bool> answered_{false};
};

using upload_link_ptr = std::shared_ptr<upload_link>;

// The connection's handle on the upload it streams into: the body's chunks
// in order, its end, or that the client is gone. The answer comes back
// through the upload_link, never as a reply. (actors/upload_session.hpp)
using upload_session_actor = caf::typed_actor<caf::reacts_to<chunk_atom, chunk_ptr>,
                                              caf::reacts_to<eof_atom>, caf::reacts_to<abort_atom>>;

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::upload_link_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::upload_request)

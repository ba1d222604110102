// What travels between the connection and the upload actors.
#pragma once

#include "db/identity.hpp"
#include "storage/archive_check.hpp"

#include <boost/json/object.hpp>
#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/meta/type_name.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace portal {

// Why an upload stage refused or failed: the HTTP answer. status 0 = no failure.
struct upload_failure {
  int status = 0;
  std::string code;
  std::string message;
  explicit operator bool() const { return status != 0; }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_failure& x) {
  return f(caf::meta::type_name("upload_failure"), x.status, x.code, x.message);
}

// The validator's answer to finish_atom.
struct validation_result {
  upload_failure failure;
  uint64_t entries = 0;
  uint64_t uncompressed_size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, validation_result& x) {
  return f(caf::meta::type_name("validation_result"), x.failure, x.entries, x.uncompressed_size);
}

// The storage writer's answer to commit_atom.
struct commit_result {
  upload_failure failure;
  std::string sha256;
  uint64_t size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_result& x) {
  return f(caf::meta::type_name("commit_result"), x.failure, x.sha256, x.size);
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
};

// The answer for the client: status and JSON body.
struct upload_answer {
  int status = 500;
  boost::json::object body;
};

// The upload actors' way back to the connection. Both callbacks only post()
// onto the connection's strand. done() is answered exactly once: if the
// upload actor dies holding the link, the destructor answers 500, so a crash
// never leaves a client hanging.
class upload_link {
public:
  upload_link(std::function<void(std::size_t)> credit, std::function<void(upload_answer)> done)
    : credit_(std::move(credit)), done_(std::move(done)) {}
  upload_link(const upload_link&) = delete;
  upload_link& operator=(const upload_link&) = delete;
  ~upload_link() {
    done(upload_answer{500, {{"error", {{"code", "internal"}, {"message", "the upload failed"}}}}});
  }

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

// The connection's handle on the upload it streams into. The connection only
// ever sends it (chunk_atom, chunk_ptr), (eof_atom) and (abort_atom).
using upload_session_actor = caf::actor;

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::upload_link_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::upload_request)

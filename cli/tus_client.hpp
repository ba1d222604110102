// The client side of tus 1.0.0 (https://tus.io/protocols/resumable-upload:
// core, creation, checksum, expiration) against upload-portal's endpoint
// (SPEC §5.2, docs/TUS.md), one request per call and no retries (the caller,
// cli/push_command.cpp, decides those). Every request carries
// `Tus-Resumable: 1.0.0` and `Authorization: Bearer <token>`.
//
// Errors: a network failure is beast::system_error (from http_client); an
// unexpected status is tus_status_error, whose message is one line: the
// status and the server's error code and message when it sent the JSON
// error shape of SPEC §7.
#pragma once

#include "cli/http_client.hpp"

#include <boost/url/url.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace portal::cli {

struct tus_status_error : std::runtime_error {
  tus_status_error(unsigned status, const std::string& what,
                   std::optional<std::chrono::seconds> retry_after = std::nullopt)
    : std::runtime_error(what), status(status), retry_after(retry_after) {}
  unsigned status;
  std::optional<std::chrono::seconds> retry_after; // Retry-After in seconds, when given
  // 5xx, 423 Locked and 429 Too Many Requests: worth another try later.
  bool transient() const { return status >= 500 || status == 423 || status == 429; }
};

// What OPTIONS advertises.
struct tus_capabilities {
  bool sha256 = false;              // Tus-Checksum-Algorithm lists sha256
  std::optional<uint64_t> max_size; // Tus-Max-Size, bytes
};

// HEAD's answer: bytes the server holds (durable, SPEC §5.2) of `length`.
struct tus_offset {
  uint64_t offset = 0;
  uint64_t length = 0;
};

class tus_client {
public:
  // `base`: the server's base URL (a path prefix is kept); the tus endpoint
  // is <base>/api/v1/tus/. `token` is only ever sent, never shown.
  tus_client(http_client& http, boost::urls::url_view base, std::string token);

  tus_capabilities options();

  // POST: creates an upload of `length` bytes named `filename` (sent in
  // Upload-Metadata, base64); returns the resource's URL (absolute) and the
  // machine that holds it (Portal-Instance, SPEC §5.2; empty when not
  // given). A Location on another origin is refused (tus_status_error).
  struct created {
    std::string upload_url;
    std::string instance;
  };
  created create(uint64_t length, const std::string& filename);

  // Later HEADs and PATCHes carry `fly-force-instance-id: <instance>` (SPEC
  // §5.2: Fly's proxy then sends them to the machine holding the partial);
  // empty: none.
  void pin_instance(std::string instance) { instance_ = std::move(instance); }

  // HEAD `upload_url`; nullopt when the server no longer knows it (404, 410).
  std::optional<tus_offset> head(const std::string& upload_url);

  // PATCH `data` at `offset`, with `Upload-Checksum: sha256 <base64>` when
  // `checksum`; returns the server's new Upload-Offset. 409 (the offset
  // moved) is a tus_status_error like any other status but 204.
  uint64_t patch(const std::string& upload_url, uint64_t offset, std::string data, bool checksum);

  // GET <base>/api/v1/uploads/{id}: the upload object's JSON text.
  std::string upload_object(std::string_view id);

  // The last path segment of an upload URL: the upload's id (docs/TUS.md:
  // the tus resource and the upload object share it).
  static std::string id_of(const std::string& upload_url);

private:
  http_client::response send(http_client::request& req);
  std::string target_of(const std::string& url) const; // same origin, else tus_status_error

  http_client& http_;
  boost::urls::url base_;
  std::string token_;
  std::string instance_;
};

// "sha256 <base64 digest>" for Upload-Checksum; "<base64>" of any bytes.
std::string tus_checksum_sha256(std::string_view data);
std::string base64(std::string_view data);

} // namespace portal::cli

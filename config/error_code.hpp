// The contract's error vocabulary (SPEC §5.3, §5.2, §11): every refusal or
// failure the server can answer with, as one enum whose names are the
// snake_case `code` of the JSON error body {"error": {"code", "message"}}.
//
// This is the ground floor: storage/, db/ and the actors return these codes
// as values (expected outcomes are not exceptions), and exactly one table in
// net/ maps each code to its HTTP status. actors/ registers the enum with
// CAF 0.17's CAF_ERROR_CODE_ENUM so that a caf::error can carry it.
//
// Code 0 is reserved by caf::error for "no error". Adding a code: add it
// here, to to_string() below, and to the status table in net/; the unit
// test of that table fails until all three agree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace portal {

enum class error_code : uint8_t {
  none = 0,
  // The request itself (4xx)
  bad_request,                     // malformed HTTP or request body
  invalid_filename,                // SPEC §5.3 name rules
  invalid_limit,                   // a query parameter out of range
  invalid_cursor,                  // a forged or stale pagination cursor
  unauthorized,                    // no or unusable credentials
  forbidden,                       // authenticated, not allowed
  csrf_token_missing,              // cookie request without the right X-CSRF-Token
  not_found,                       // no such resource (or not yours: SPEC §4)
  method_not_allowed,              // known path, other method
  not_implemented,                 // unknown HTTP method or transfer coding
  request_timeout,                 // head or body too slow (SPEC §5.3, §11)
  unsupervised,                    // killing the root, which no supervisor restarts (409)
  payload_too_large,               // over PORTAL_MAX_UPLOAD_BYTES
  quota_exceeded,                  // over the owner's storage quota
  unsupported_media_type,          // first bytes not the declared compression
  range_not_satisfiable,           // a Range outside the archive
  request_header_fields_too_large, // head over 16 KiB
  too_many_requests,               // login rate limit
  too_many_uploads,                // upload concurrency or start rate
  // What the archive holds (422)
  invalid_archive, // corrupt compression or tar
  unsafe_entry,    // a member that would land outside the root
  archive_bomb,    // too many entries or too many uncompressed bytes
  // tus 1.0.0 (SPEC §5.2)
  tus_version_unsupported, // Tus-Resumable missing or not 1.0.0 (412)
  offset_mismatch,         // Upload-Offset is not the resource's offset (409)
  wrong_instance,          // a PATCH that reached another Fly machine (409)
  checksum_mismatch,       // Upload-Checksum does not match (460)
  gone,                    // expired or terminated (410)
  locked,                  // a previous request still holds the upload (423)
  // The server (5xx)
  internal,             // a bug or an unexpected failure
  unavailable,          // the database is away: retry
  storage_unavailable,  // the data directory is away: retry
  insufficient_storage, // the data directory is full
  // Not an answer anybody hears: the client went away first.
  client_closed,
};

// The contract's snake_case name of a code, as sent in the JSON body.
// One line per code: a table, kept so by hand.
// clang-format off
constexpr std::string_view to_string(error_code c) {
  switch (c) {
    case error_code::none: return "none";
    case error_code::bad_request: return "bad_request";
    case error_code::invalid_filename: return "invalid_filename";
    case error_code::invalid_limit: return "invalid_limit";
    case error_code::invalid_cursor: return "invalid_cursor";
    case error_code::unauthorized: return "unauthorized";
    case error_code::forbidden: return "forbidden";
    case error_code::csrf_token_missing: return "csrf_token_missing";
    case error_code::not_found: return "not_found";
    case error_code::method_not_allowed: return "method_not_allowed";
    case error_code::not_implemented: return "not_implemented";
    case error_code::request_timeout: return "request_timeout";
    case error_code::unsupervised: return "unsupervised";
    case error_code::payload_too_large: return "payload_too_large";
    case error_code::quota_exceeded: return "quota_exceeded";
    case error_code::unsupported_media_type: return "unsupported_media_type";
    case error_code::range_not_satisfiable: return "range_not_satisfiable";
    case error_code::request_header_fields_too_large: return "request_header_fields_too_large";
    case error_code::too_many_requests: return "too_many_requests";
    case error_code::too_many_uploads: return "too_many_uploads";
    case error_code::invalid_archive: return "invalid_archive";
    case error_code::unsafe_entry: return "unsafe_entry";
    case error_code::archive_bomb: return "archive_bomb";
    case error_code::tus_version_unsupported: return "tus_version_unsupported";
    case error_code::offset_mismatch: return "offset_mismatch";
    case error_code::wrong_instance: return "wrong_instance";
    case error_code::checksum_mismatch: return "checksum_mismatch";
    case error_code::gone: return "gone";
    case error_code::locked: return "locked";
    case error_code::internal: return "internal";
    case error_code::unavailable: return "unavailable";
    case error_code::storage_unavailable: return "storage_unavailable";
    case error_code::insufficient_storage: return "insufficient_storage";
    case error_code::client_closed: return "client_closed";
  }
  return "internal";
}
// clang-format on

// A refusal or failure as a value: the code and the human text that goes
// with it (which may name the offending entry or header). An empty failure
// (code none) means success.
struct failure {
  error_code code = error_code::none;
  std::string message;

  explicit operator bool() const { return code != error_code::none; }
};

} // namespace portal

// Validates a .tar.gz / .tar.zst stream as it arrives (SPEC §5.3), chunk by
// chunk, without ever holding more than the current chunk.
//
// Three units do the work; this one drives them:
//   compressed_stream  first bytes, decompression, gzip/zstd integrity and
//                      what follows the compressed stream;
//   tar_headers        every name and link target the raw tar headers carry,
//                      the layout, the end-of-archive marker;
//   entry_policy       whether each member is safe, given those before it.
// libarchive's tar reader walks the members. It is a pull parser: it asks a
// read callback for the next block. It runs on its own small fiber stack
// whose read callback *yields* back to feed() instead of blocking a thread,
// so one thread (an actor's) can drive any number of checks, and the caller
// keeps the push model of the network.
#pragma once

#include "config/error_code.hpp"
#include "storage/archive_format.hpp"
#include "storage/compressed_stream.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <variant>

namespace portal::storage {

struct archive_limits {
  uint64_t max_entries = 100000; // more: archive_bomb
  uint64_t max_uncompressed = 0; // bytes of the decompressed tar stream; more: archive_bomb
  gzip_inflater inflater = gzip_inflater::zlib; // not a limit, but chosen with them, per server
};

struct archive_summary {
  uint64_t entries = 0;           // every tar member: files, dirs, links (SPEC §11)
  uint64_t uncompressed_size = 0; // bytes of the decompressed tar stream
};

class archive_check {
public:
  archive_check(archive_format expected, archive_limits limits);
  ~archive_check();
  archive_check(const archive_check&) = delete;
  archive_check& operator=(const archive_check&) = delete;

  // The next bytes of the compressed stream. The bytes are not referenced
  // after feed() returns. Returns the refusal as soon as one is certain
  // (none otherwise); after a refusal, further calls return the same one.
  // The refusals (SPEC §5.3): unsupported_media_type, invalid_archive,
  // unsafe_entry (the message names the entry), archive_bomb; internal for a
  // failure of the check itself (out of memory).
  failure feed(const char* data, std::size_t size);

  // The end of the stream: completes the walk.
  std::variant<archive_summary, failure> finish();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace portal::storage

// Validates a .tar.gz / .tar.zst stream as it arrives (SPEC §5.3), chunk by
// chunk, without ever holding more than the current chunk.
//
// libarchive is a pull parser: it asks a read callback for the next block.
// The check runs libarchive on its own small fiber stack whose read callback
// *yields* back to feed() instead of blocking a thread, so one thread (an
// actor's) can drive any number of checks, and the caller keeps the push
// model of the network.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace portal::storage {

enum class archive_format { tar_gz, tar_zst };

// "tar.gz" / "tar.zst"
const char* to_string(archive_format f);

struct archive_limits {
  uint64_t max_entries = 100000; // more: archive_bomb
  uint64_t max_uncompressed = 0; // bytes of the decompressed tar stream; more: archive_bomb
};

// Why an archive is refused: the HTTP status and the SPEC §5.3 error code.
struct archive_error {
  int status = 422; // 415 or 422
  std::string
    code; // "unsupported_media_type" | "invalid_archive" | "unsafe_entry" | "archive_bomb"
  std::string message; // human text; for unsafe_entry it names the entry
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
  // after feed() returns. Returns the refusal as soon as one is certain;
  // after a refusal, further calls return the same error.
  std::optional<archive_error> feed(const char* data, std::size_t size);

  // The end of the stream: completes the walk.
  std::variant<archive_summary, archive_error> finish();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace portal::storage

// Reads a backup file written by backup_writer (libarchive: its zstd filter,
// which checks the frame checksum, and its tar reader). Members are read in
// order and streamed out, hashed on the way; memory stays flat.
//
// A damaged or foreign file is backup_damaged, with libarchive's own words
// ("Truncated zstd input", "Restored data doesn't match checksum", "Damaged
// tar archive") and the member it happened in; failing to write what is read
// is storage_error.
#pragma once

#include "storage/backup_writer.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace portal::storage {

struct backup_damaged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct backup_member {
  std::string name;
  uint64_t size = 0;
  bool regular = false; // anything else (a directory, a link) is not ours
};

class backup_reader {
public:
  // Reads from `fd` (not owned, not closed). Throws storage_error.
  explicit backup_reader(int fd);
  ~backup_reader();
  backup_reader(const backup_reader&) = delete;
  backup_reader& operator=(const backup_reader&) = delete;

  // The next member's header; nullopt at the end of the tar stream.
  std::optional<backup_member> next();

  // The current member's data as a string; refuses (backup_damaged) more
  // than `max_bytes`, so a damaged header cannot make it allocate without bound.
  std::string read_all(std::size_t max_bytes);

  // Writes the current member's data to `fd`, hashing it. Throws
  // backup_damaged (also when fewer bytes arrive than its header promised)
  // or storage_error (the write).
  member_digest copy_to(int fd);

  // Compressed bytes consumed from the input so far (progress).
  uint64_t bytes_in() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace portal::storage

// Writes a backup file (SPEC §2 `backup FILE.tar.zst`): a tar stream
// (libarchive, POSIX pax) compressed as one zstd frame with a content
// checksum (libzstd streaming, so `zstd -t FILE` verifies it). Every member is
// hashed (SHA-256) on its way in. Memory stays flat: one 1 MiB copy buffer,
// libarchive's block and zstd's window (level 3: a few MiB), whatever the
// size of the archives streamed through.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace portal::storage {

struct member_digest {
  uint64_t size = 0;
  std::string sha256; // 64 lowercase hex
};

class backup_writer {
public:
  // Writes to `fd` (not owned, not closed). Throws storage_error.
  explicit backup_writer(int fd, int zstd_level = 3);
  // Without finish(): nothing more is written, so the output stays visibly
  // incomplete (no tar end, no zstd epilogue) and never passes for a backup.
  ~backup_writer();
  backup_writer(const backup_writer&) = delete;
  backup_writer& operator=(const backup_writer&) = delete;

  // A member holding `data`. Throws storage_error.
  member_digest add(const std::string& name, std::string_view data);

  // A member streamed from the regular file at `path` (symlinks refused).
  // Throws storage_error: ENOENT when the file is gone, EIO when it changed
  // size while being read.
  member_digest add_file(const std::string& name, const std::filesystem::path& path);

  // A member streamed from `fd`, bytes [0, size) read with pread.
  member_digest add_fd(const std::string& name, int fd, uint64_t size);

  // The tar end and the zstd epilogue. Throws storage_error.
  void finish();

  // Compressed bytes written to the fd so far.
  uint64_t bytes_out() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace portal::storage

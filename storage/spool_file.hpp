// An unnamed scratch file in a directory of the data dir (SPEC §9: never
// /tmp), for data whose size must be known before it can be written on
// (a tar member's header carries its size). O_TMPFILE: nothing is left behind
// whatever way the process ends; where the filesystem lacks it, a named file
// is created and unlinked at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace portal::storage {

class spool_file {
public:
  // Throws storage_error.
  explicit spool_file(const std::filesystem::path& dir);
  ~spool_file();
  spool_file(const spool_file&) = delete;
  spool_file& operator=(const spool_file&) = delete;

  // Appends all of it. Throws storage_error (ENOSPC: the disk is full).
  void append(std::string_view data);

  uint64_t size() const { return size_; }
  // For reading it back from offset 0 (pread), e.g. backup_writer::add_fd.
  int fd() const { return fd_; }

  // Marks `n` bytes written to fd() by someone else (backup_reader::copy_to).
  void wrote(uint64_t n) { size_ += n; }

private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Reads a spool_file back line by line ('\n'-separated, without it), from
// offset 0, with a 1 MiB buffer. A line longer than `max_line` bytes is an
// error (storage_error EFBIG): the file is input, not trusted to be sane.
class spool_lines {
public:
  explicit spool_lines(const spool_file& file, std::size_t max_line = std::size_t{16} << 20);
  // False at the end. A last line without '\n' still counts.
  bool next(std::string& line);

private:
  int fd_;
  uint64_t size_;
  uint64_t offset_ = 0;
  std::size_t max_line_;
  std::string buffer_;
  std::size_t pos_ = 0;
};

} // namespace portal::storage

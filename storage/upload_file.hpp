// The bytes of one upload on disk: written to <data_dir>/tmp/<id>.part while
// streaming, hashed on the way (SHA-256, OpenSSL), and made durable on commit:
// fsync the file, rename it to <data_dir>/archives/<id>, fsync the directory.
// Anything not committed is removed: abort() or the destructor unlinks it.
#pragma once

#include "storage/data_dir.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace portal::storage {

// A failed filesystem call; code() says which (ENOSPC: the disk is full).
struct storage_error : std::system_error {
  using std::system_error::system_error;
  bool disk_full() const { return code() == std::errc::no_space_on_device; }
};

// Throws storage_error for errno `err` of the call named by `what`
// ("open /data/tmp/x.part").
[[noreturn]] void throw_errno(int err, const std::string& what);

struct committed_file {
  std::filesystem::path path;
  std::string sha256; // 64 lowercase hex
  uint64_t size = 0;
};

class upload_file {
public:
  // Creates <tmp>/<id>.part exclusively (mode 0640). Throws storage_error
  // (EINVAL for an id that is not a valid_upload_id: config/upload_id.hpp).
  upload_file(const data_dir_layout& layout, std::string upload_id);
  ~upload_file(); // abort() unless committed
  upload_file(const upload_file&) = delete;
  upload_file& operator=(const upload_file&) = delete;

  // Appends all of it (retrying short writes and EINTR). Throws storage_error.
  void write(const char* data, std::size_t size);
  uint64_t size() const;

  // fsync, rename into archives/, fsync the directory. Throws storage_error
  // (and then the temporary file is already removed).
  committed_file commit();

  // Removes the temporary file; safe to call more than once.
  void abort() noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Removes a committed archive (its row could not be recorded, or the upload
// was deleted) and fsyncs the directory. Missing is not an error.
void remove_archive(const data_dir_layout& layout, const std::string& upload_id);

// --- helpers shared with reconcile and later storage code --------------------

// rename(from, to) that never replaces an existing `to` (storage_error EEXIST
// then): renameat2(RENAME_NOREPLACE), or link + unlink on filesystems without
// it (a directory falls back to check-then-rename, fine for single-threaded
// start-up work). Not durable by itself: fsync_directory() the target's dir.
void rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to);

// Makes the directory's entries (creations, renames, unlinks) durable.
void fsync_directory(const std::filesystem::path& dir);

} // namespace portal::storage

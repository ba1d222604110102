// One server at a time on a data directory (PORTAL_DATA_DIR). `serve` holds
// an exclusive flock(2) on <data_dir>/lock for as long as it runs: a second
// one on the same directory would run start-up reconciliation under the
// first (empty tmp/ under a streaming upload, set aside an archive committed
// a moment before its row, renew the volume id; SPEC §9, §11), so it is
// refused before it changes anything. The kernel drops the lock when the
// process ends, however it ends: a crash leaves no stale lock, unlike a pid
// file. `restore` does not take it: on Fly it runs beside the serving
// machine, which is restarted after it (deploy/README.md §10).
#pragma once

#include <filesystem>
#include <stdexcept>

namespace portal::storage {

// Another process holds the lock; what() names the directory, for one line.
struct data_dir_in_use : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class data_dir_lock {
public:
  // Takes the lock without waiting, held until destroyed. The file is made
  // (mode 0644, never through a symlink) when missing; only the lock on it
  // matters, never its content. Throws data_dir_in_use when another process
  // holds it, storage_error with the errno of a call that failed (ELOOP: the
  // file is a symlink; EROFS: a read-only filesystem, where serve could not
  // run anyway).
  explicit data_dir_lock(const std::filesystem::path& root);
  ~data_dir_lock();
  data_dir_lock(const data_dir_lock&) = delete;
  data_dir_lock& operator=(const data_dir_lock&) = delete;

private:
  int fd_ = -1;
};

} // namespace portal::storage

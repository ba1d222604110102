#include "storage/data_dir_lock.hpp"

#include "storage/upload_file.hpp"

#include <sys/file.h>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace portal::storage {

data_dir_lock::data_dir_lock(const std::filesystem::path& root) {
  auto file = root / "lock";
  // Read-only is enough for flock(2), so a lock file made by root (a serve
  // started by hand) still serves the unprivileged user; O_NONBLOCK, so a
  // FIFO put there cannot hang the start.
  fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_CREAT, 0644);
  if (fd_ < 0)
    throw storage_error(errno, std::system_category(), "open " + file.string());
  int rc;
  do
    rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw data_dir_in_use("the data directory " + root.string() +
                            " is in use: another upload-portal serve holds " + file.string());
    throw storage_error(err, std::system_category(), "lock " + file.string());
  }
}

data_dir_lock::~data_dir_lock() {
  ::close(fd_);
}

} // namespace portal::storage

#include "storage/fd_io.hpp"

#include "storage/upload_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace portal::storage {

void write_all(int fd, const char* data, std::size_t size, const std::string& what) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw storage_error(errno, std::system_category(), "write " + what);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void write_file_synced(const std::filesystem::path& file, std::string_view text, int open_flags) {
  int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | open_flags, 0640);
  if (fd < 0)
    throw storage_error(errno, std::system_category(), "create " + file.string());
  try {
    write_all(fd, text.data(), text.size(), file.string());
  } catch (...) {
    ::close(fd);
    ::unlink(file.c_str());
    throw;
  }
  bool synced = ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!synced) {
    ::unlink(file.c_str());
    throw storage_error(err, std::system_category(), "fsync " + file.string());
  }
}

} // namespace portal::storage

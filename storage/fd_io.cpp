#include "storage/fd_io.hpp"

#include "storage/upload_file.hpp"

#include <cerrno>
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

} // namespace portal::storage

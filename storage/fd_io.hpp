// Whole writes to a file descriptor: short writes and EINTR retried.
#pragma once

#include <cstddef>
#include <string>

namespace portal::storage {

// Writes all `size` bytes. Throws storage_error with errno, naming `what`.
void write_all(int fd, const char* data, std::size_t size, const std::string& what);

} // namespace portal::storage

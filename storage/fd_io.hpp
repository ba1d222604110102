// Whole writes to a file descriptor: short writes and EINTR retried.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace portal::storage {

// Writes all `size` bytes. Throws storage_error with errno, naming `what`.
void write_all(int fd, const char* data, std::size_t size, const std::string& what);

// Creates `file` (mode 0640) holding `text`, fsynced: a small file whose
// content must survive a crash (a volume id, a tus hold). `open_flags` adds
// O_EXCL (never over an existing file) or O_TRUNC (replacing it). A failed
// write or fsync removes the file. Its name is durable only once the caller
// fsyncs the directory. Throws storage_error.
void write_file_synced(const std::filesystem::path& file, std::string_view text, int open_flags);

} // namespace portal::storage

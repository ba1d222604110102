// The member list of a stored (already validated) archive, for
// GET /api/v1/uploads/{id}/entries (SPEC §6). Reads the file with blocking
// I/O: call it from a thread that may block.
#pragma once

#include "storage/archive_format.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace portal::storage {

struct archive_entry_info {
  std::string path;  // valid UTF-8: libarchive's UTF-8 form, else the raw bytes through utf8_text()
  std::string type;  // "file" | "dir" | "symlink" | "hardlink" (SPEC §11)
  uint64_t size = 0; // the member's data size (0 for dirs and links)
};

// The stored archive cannot be read (missing, unreadable, damaged, or with
// more members than asked for): a server-side problem, since it passed
// archive_check when it was uploaded.
struct archive_read_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Every member in archive order. Throws archive_read_error, or
// std::bad_alloc.
std::vector<archive_entry_info> list_entries(const std::filesystem::path& stored_archive,
                                             archive_format f, std::size_t max_entries);

} // namespace portal::storage

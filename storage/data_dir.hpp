// The data directory (PORTAL_DATA_DIR, the Fly volume): its layout and the
// health of the filesystem under it.
//
//   <data_dir>/archives/  finished uploads, named by upload id
//   <data_dir>/tmp/       uploads in progress (never /tmp: SPEC §9)
//   <data_dir>/orphans/   files found without a row at start (SPEC §11)
//   <data_dir>/partials/  tus partial uploads, <id>.part (storage/partial_file.hpp)
//   <data_dir>/volume-id  the directory's identity (storage/volume_id.hpp)
//   <data_dir>/lock       held by the one serve running here (storage/data_dir_lock.hpp)
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace portal::storage {

struct data_dir_layout {
  std::filesystem::path root, archives, tmp, orphans, partials;
};

data_dir_layout layout_of(const std::filesystem::path& root);

// Creates the directories (mode 0750). Throws std::filesystem::filesystem_error.
data_dir_layout prepare_data_dir(const std::filesystem::path& root);

// The upload ids whose archive is in archives/ (regular files named by a
// valid upload id; symlinks are not followed). Throws
// std::filesystem::filesystem_error when the directory cannot be listed.
std::vector<std::string> archive_ids(const data_dir_layout& layout);

// "ok", or why the data dir cannot take uploads: missing, read-only,
// not writable by us, or less than `min_free_bytes` available.
std::string probe_data_dir(const std::filesystem::path& root, uint64_t min_free_bytes);

// Bytes available to us on the data dir's filesystem (0 if unknown).
uint64_t free_bytes(const std::filesystem::path& root);

} // namespace portal::storage

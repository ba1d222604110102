#include "storage/data_dir.hpp"

#include "config/upload_id.hpp"

#include <sys/statvfs.h>

#include <unistd.h>

namespace portal::storage {

namespace fs = std::filesystem;

data_dir_layout layout_of(const fs::path& root) {
  return {root, root / "archives", root / "tmp", root / "orphans", root / "partials"};
}

data_dir_layout prepare_data_dir(const fs::path& root) {
  auto l = layout_of(root);
  for (auto& dir : {l.root, l.archives, l.tmp, l.orphans, l.partials}) {
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  }
  return l;
}

std::vector<std::string> archive_ids(const data_dir_layout& layout) {
  std::vector<std::string> ids;
  for (const auto& e : fs::directory_iterator(layout.archives)) {
    std::error_code ec;
    auto name = e.path().filename().string();
    if (e.symlink_status(ec).type() == fs::file_type::regular && !ec && valid_upload_id(name))
      ids.push_back(std::move(name));
  }
  return ids;
}

uint64_t free_bytes(const fs::path& root) {
  struct statvfs st {};
  if (::statvfs(root.c_str(), &st) != 0)
    return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::string probe_data_dir(const fs::path& root, uint64_t min_free_bytes) {
  // Metadata calls only: no data is written, so the probe cannot itself be
  // the thing that blocks on a sick disk for long.
  auto tmp = layout_of(root).tmp;
  struct statvfs st {};
  if (::statvfs(tmp.c_str(), &st) != 0)
    return "data directory missing";
  if (st.f_flag & ST_RDONLY)
    return "data directory is read-only";
  if (::access(tmp.c_str(), W_OK | X_OK) != 0)
    return "data directory not writable";
  if (static_cast<uint64_t>(st.f_bavail) * st.f_frsize < min_free_bytes)
    return "data directory low on free space";
  return "ok";
}

} // namespace portal::storage

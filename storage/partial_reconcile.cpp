#include "storage/partial_reconcile.hpp"

#include "config/log.hpp"
#include "config/upload_id.hpp"
#include "storage/partial_file.hpp"
#include "storage/upload_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <unistd.h>

namespace portal::storage {

partial_report reconcile_partials(const data_dir_layout& layout, const row_volumes& rows,
                                  const std::string& here) {
  partial_report report;
  std::set<std::string> found;
  for (auto& id : partial_ids(layout)) {
    if (valid_upload_id(id) && rows.count(id)) {
      found.insert(id);
      try {
        auto file = partial_file::open(layout, id); // fsync: the size is now the durable offset
        log::info("tus partial kept", {{"upload_id", id}, {"offset", file.size()}});
        report.kept.push_back(id);
      } catch (const storage_error& e) {
        log::error("tus partial not synced", {{"upload_id", id}, {"error", e.what()}});
      }
      continue;
    }
    auto path = layout.partials / (id + ".part");
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) {
      log::warn("tus partial without a row removed", {{"file", path.filename().string()}});
      report.removed.push_back(id);
    } else {
      log::error("tus partial without a row not removed", {{"file", path.filename().string()}});
    }
  }
  if (!report.removed.empty())
    fsync_directory(layout.partials);
  auto verdict = judge_rows(rows, here, found);
  for (auto& id : verdict.missing)
    log::warn("tus row without a partial", {{"upload_id", id}});
  report.missing = std::move(verdict.missing);
  report.holds_any = verdict.holds_any;
  report.claimed = std::move(verdict.claimed);
  report.unattributed = std::move(verdict.unattributed);
  return report;
}

std::vector<std::string> archived_partials(const data_dir_layout& layout,
                                           const row_volumes& tus_rows, const std::string& here) {
  std::vector<std::string> ids;
  for (const auto& [id, volume] : tus_rows) {
    if (!valid_upload_id(id) || (!volume.empty() && volume != here))
      continue;
    struct stat st {};
    if (::lstat((layout.archives / id).c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (::lstat(partial_path(layout, id).c_str(), &st) == 0 || errno != ENOENT)
      continue; // a partial (or an unreadable name): reconcile_partials() judges it
    ids.push_back(id);
  }
  return ids;
}

std::vector<std::string> return_unrecorded_archives(const data_dir_layout& layout,
                                                    const std::vector<std::string>& ids) {
  std::vector<std::string> moved;
  for (const auto& id : ids) {
    try {
      return_to_partials(layout, id);
      log::warn("tus archive returned to partials: its record never committed",
                {{"upload_id", id}});
      moved.push_back(id);
    } catch (const storage_error& e) {
      log::error("tus archive not returned to partials", {{"upload_id", id}, {"error", e.what()}});
    }
  }
  return moved;
}

} // namespace portal::storage

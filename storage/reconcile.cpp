#include "storage/reconcile.hpp"

#include "config/log.hpp"
#include "config/upload_id.hpp"
#include "storage/upload_file.hpp"

#include <cerrno>
#include <ctime>
#include <unistd.h>

namespace portal::storage {

namespace fs = std::filesystem;

namespace {

struct entry {
  std::string name;
  fs::file_type type; // of the entry itself: symlinks are never followed
};

// Names first, repairs after: no renaming or unlinking under a live iterator.
std::vector<entry> list(const fs::path& dir) {
  std::vector<entry> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::error_code ec;
    auto st = e.symlink_status(ec);
    out.push_back({e.path().filename().string(), ec ? fs::file_type::unknown : st.type()});
  }
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// e.g. 20261122T100000Z: sorts by time, contains nothing a shell minds.
std::string compact_utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Moves archives/<name> to orphans/, never over an existing file. Returns the
// name it got there.
std::string move_to_orphans(const data_dir_layout& layout, const std::string& name,
                            const std::string& stamp) {
  const auto from = layout.archives / name;
  std::string target = name;
  for (int attempt = 0;; ++attempt) {
    try {
      rename_no_replace(from, layout.orphans / target);
      return target;
    } catch (const storage_error& e) {
      if (e.code() != std::errc::file_exists || attempt >= 1000)
        throw;
    }
    target = name + "." + stamp + (attempt == 0 ? "" : "." + std::to_string(attempt));
  }
}

} // namespace

reconcile_report reconcile(const data_dir_layout& layout, const row_volumes& rows,
                           const std::string& here) {
  reconcile_report report;

  // Stale temporaries. Their removal is not fsynced: if it is lost in a
  // crash, the next start simply removes them again.
  for (const auto& e : list(layout.tmp)) {
    if (!ends_with(e.name, ".part") || e.type == fs::file_type::directory)
      continue;
    auto path = layout.tmp / e.name;
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) {
      report.removed_temp.push_back(e.name);
      log::info("removed stale temporary file", {{"file", e.name}, {"dir", "tmp"}});
    } else {
      std::error_code ec(errno, std::system_category());
      report.failed.push_back(e.name);
      log::error("could not remove stale temporary file",
                 {{"file", e.name}, {"dir", "tmp"}, {"error", ec.message()}});
    }
  }

  // Archives: keep what a row accounts for, move everything else aside.
  std::set<std::string> present;
  const std::string stamp = compact_utc_now();
  for (const auto& e : list(layout.archives)) {
    const bool known = rows.count(e.name) != 0;
    const bool regular = e.type == fs::file_type::regular;
    if (known && regular && valid_upload_id(e.name)) {
      present.insert(e.name);
      continue;
    }
    const char* why = !valid_upload_id(e.name) ? "name is not an upload id"
                      : !regular               ? "not a regular file"
                                               : "no database row";
    try {
      auto to = move_to_orphans(layout, e.name, stamp);
      report.orphaned.push_back(e.name);
      log::warn("moved unexpected archive entry to orphans",
                {{"file", e.name}, {"to", to}, {"reason", why}});
    } catch (const std::exception& ex) {
      report.failed.push_back(e.name);
      log::error("could not move archive entry to orphans",
                 {{"file", e.name}, {"reason", why}, {"error", ex.what()}});
    }
  }
  if (!report.orphaned.empty()) {
    fsync_directory(layout.orphans);
    fsync_directory(layout.archives);
  }

  auto verdict = judge_rows(rows, here, present);
  for (const auto& id : verdict.missing)
    log::warn("upload row has no archive file", {{"upload_id", id}, {"dir", "archives"}});
  for (const auto& id : verdict.foreign)
    log::warn("archive file kept: its row records another volume",
              {{"upload_id", id}, {"volume_id", rows.at(id)}});
  report.missing_files = std::move(verdict.missing);
  report.holds_any = verdict.holds_any;
  report.claimed = std::move(verdict.claimed);
  report.unattributed = std::move(verdict.unattributed);
  return report;
}

} // namespace portal::storage

#include "cli/backup_command.hpp"

#include "cli/backup_format.hpp"
#include "cli/database.hpp"
#include "cli/progress.hpp"
#include "cli/report.hpp"
#include "config/upload_id.hpp"
#include "db/backup_rows.hpp"
#include "storage/backup_writer.hpp"
#include "storage/data_dir.hpp"
#include "storage/failpoints.hpp"
#include "storage/spool_file.hpp"
#include "storage/upload_file.hpp"

#include <boost/json/object.hpp>
#include <sys/stat.h>

#include <cerrno>
#include <fcntl.h>
#include <iostream>
#include <unistd.h>

namespace portal::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* backup_usage =
  "usage: upload-portal [--config FILE] backup FILE.tar.zst  (- writes to stdout)\n";

// The backup's destination: a temporary sibling renamed into place when
// complete, or stdout.
class output_file {
public:
  explicit output_file(const std::string& name) : name_(name) {
    if (name == "-") {
      if (::isatty(STDOUT_FILENO) == 1)
        throw std::runtime_error("refusing to write a backup to a terminal; redirect stdout");
      fd_ = STDOUT_FILENO;
      return;
    }
    struct stat st {};
    if (::lstat(name.c_str(), &st) == 0)
      throw std::runtime_error(name + " exists; a backup never replaces a file");
    temp_ = name + ".partial-XXXXXX";
    fd_ = ::mkostemp(temp_.data(), O_CLOEXEC); // mode 0600: password and token hashes inside
    if (fd_ < 0)
      storage::throw_errno(errno, "create " + temp_);
  }
  ~output_file() {
    if (!temp_.empty()) { // not committed
      ::close(fd_);
      ::unlink(temp_.c_str());
    }
  }
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;

  int fd() const { return fd_; }

  void commit() {
    if (name_ == "-")
      return;
    if (::fsync(fd_) != 0)
      storage::throw_errno(errno, "fsync " + temp_);
    if (::close(fd_) != 0)
      storage::throw_errno(errno, "close " + temp_);
    fd_ = -1;
    storage::rename_no_replace(temp_, name_);
    temp_.clear();
    auto dir = fs::path(name_).parent_path();
    storage::fsync_directory(dir.empty() ? fs::path(".") : dir);
  }

private:
  std::string name_;
  std::string temp_;
  int fd_ = -1;
};

struct backup_summary {
  uint64_t uploads = 0;
  uint64_t upload_bytes = 0;
  std::map<std::string, uint64_t> rows;
  std::vector<std::string> skipped; // deleted while the backup ran
  int schema_version = 0;
  uint64_t written = 0;
};

// The archives of the snapshot's upload rows, hashed on the way in and
// checked against the row. A file missing now was deleted after the snapshot
// (a DELETE commits its row before it removes the file): the row is left out
// too, so the backup holds no row without its file.
void add_archives(db::backup_snapshot& snapshot, storage::backup_writer& writer,
                  const storage::data_dir_layout& layout, storage::spool_file& upload_rows,
                  backup_manifest& manifest, backup_summary& summary, progress& shown) {
  snapshot.for_each_upload([&](const db::snapshot_upload& up) {
    if (!valid_upload_id(up.id))
      throw std::runtime_error("upload id " + up.id + " is not a valid file name");
    std::string member = archive_prefix + up.id;
    storage::member_digest digest;
    try {
      digest = writer.add_file(member, layout.archives / up.id);
    } catch (const storage::storage_error& e) {
      if (e.code() != std::errc::no_such_file_or_directory)
        throw;
      summary.skipped.push_back(up.id);
      return;
    }
    if (digest.size != up.size || digest.sha256 != up.sha256)
      throw std::runtime_error(
        member + " differs from its database row (row: " + std::to_string(up.size) +
        " bytes, sha256 " + up.sha256 + "; file: " + std::to_string(digest.size) +
        " bytes, sha256 " + digest.sha256 + "): the stored file is damaged");
    manifest.members.push_back({member, digest});
    upload_rows.append(up.row_json);
    upload_rows.append("\n");
    ++summary.uploads;
    summary.upload_bytes += digest.size;
    shown.update(summary.upload_bytes, member);
  });
  summary.rows["uploads"] = summary.uploads;
}

void add_rows(db::backup_snapshot& snapshot, storage::backup_writer& writer,
              const storage::data_dir_layout& layout, storage::spool_file& upload_rows,
              backup_manifest& manifest, backup_summary& summary) {
  for (const auto& table : db::backup_tables()) {
    std::string member = rows_member(table);
    if (table == "uploads") {
      manifest.members.push_back(
        {member, writer.add_fd(member, upload_rows.fd(), upload_rows.size())});
      continue;
    }
    storage::spool_file rows(layout.tmp);
    uint64_t count = 0;
    snapshot.for_each_row(table, [&](std::string_view row) {
      rows.append(row);
      rows.append("\n");
      ++count;
    });
    manifest.members.push_back({member, writer.add_fd(member, rows.fd(), rows.size())});
    summary.rows[table] = count;
  }
}

// A file missing for a row that still exists was never deleted: this data
// directory is not the volume holding it (an unmounted volume, a mistyped
// PORTAL_DATA_DIR, another machine's volume) or the file is lost. A backup
// silently without it would pass every later check, so it is refused; only
// uploads deleted while it ran are left out. (With several machines no
// backup holds every upload, and this refuses it: deploy/README.md §16.)
void judge_left_out(const config& cfg, const std::string& conninfo, backup_summary& summary) {
  if (summary.skipped.empty())
    return;
  const auto live = db::live_upload_ids(conninfo, summary.skipped);
  if (live.empty())
    return;
  throw std::runtime_error(
    (live.size() > 1 ? "uploads " + *live.begin() + " and " + std::to_string(live.size() - 1) +
                         " more have rows but no files in "
                     : "upload " + *live.begin() + " has a row but no file in ") +
    "PORTAL_DATA_DIR " + cfg.data_dir.string() +
    ": is it the right volume? refusing an incomplete backup");
}

backup_summary run_backup(const config& cfg, const std::string& conninfo, output_file& out) {
  auto layout = storage::layout_of(cfg.data_dir);
  if (!fs::is_directory(layout.tmp))
    throw std::runtime_error("PORTAL_DATA_DIR " + cfg.data_dir.string() +
                             " is not a data directory (no tmp/ in it)");

  db::backup_snapshot snapshot(conninfo);
  backup_summary summary;
  summary.schema_version = snapshot.schema_version();
  if (summary.schema_version == 0)
    throw std::runtime_error("the database has no migrations applied: nothing to back up");
  auto unknown = snapshot.unknown_tables();
  if (!unknown.empty())
    throw std::runtime_error("table " + unknown.front() +
                             " is neither backed up nor left out on purpose"
                             " (db/backup_rows.cpp must decide); refusing an incomplete backup");
  auto totals = snapshot.upload_totals();
  storage::failpoints::after_backup_snapshot();

  progress shown("backup", totals.upload_bytes);
  storage::backup_writer writer(out.fd());
  writer.add(backup_header_name, to_json(backup_header{PORTAL_VERSION, summary.schema_version,
                                                       utc_now("%Y-%m-%dT%H:%M:%SZ")}));

  backup_manifest manifest;
  storage::spool_file upload_rows(layout.tmp);
  add_archives(snapshot, writer, layout, upload_rows, manifest, summary, shown);
  add_rows(snapshot, writer, layout, upload_rows, manifest, summary);
  snapshot.finish();
  judge_left_out(cfg, conninfo, summary);

  manifest.rows = summary.rows;
  manifest.skipped_uploads = summary.skipped;
  writer.add(manifest_name, to_json(manifest));
  writer.finish();
  shown.clear();
  out.commit();
  summary.written = writer.bytes_out();
  return summary;
}

std::string describe(const backup_summary& s) {
  auto count = [&](const char* table) {
    auto it = s.rows.find(table);
    return std::to_string(it == s.rows.end() ? 0 : it->second);
  };
  return std::to_string(s.uploads) + " uploads (" + human_bytes(s.upload_bytes) + "), " +
         count("users") + " users, " + count("api_tokens") + " tokens, " + count("audit_events") +
         " audit events, schema " + std::to_string(s.schema_version);
}

} // namespace

int backup_command(const config_loader& load, const args& words) {
  return guarded("backup", backup_usage, [&] {
    auto a = parse_args(words, 0);
    expect_positional(a, 1, "FILE.tar.zst");
    const std::string& file = a.positional[0];
    if (file.empty())
      throw usage_error("FILE.tar.zst is empty");
    const config cfg = load();
    const std::string& conninfo = direct_database(cfg);
    output_file out(file);
    auto summary = run_backup(cfg, conninfo, out);
    for (const auto& id : summary.skipped)
      std::cerr << "upload-portal: backup: upload " << id
                << " was deleted while the backup ran; left out\n";
    // The summary goes where it cannot mix with the backup itself.
    std::ostream& report = file == "-" ? std::cerr : std::cout;
    report << "backup: " << (file == "-" ? std::string("stdout") : file) << ": "
           << describe(summary) << "; " << human_bytes(summary.written) << " written\n";
    try {
      db::record_backup_created(conninfo,
                                boost::json::object{{"uploads", summary.uploads},
                                                    {"bytes", summary.upload_bytes},
                                                    {"schema_version", summary.schema_version}});
    } catch (const std::exception&) {
      std::cerr << "upload-portal: backup: warning: the backup is complete, but its audit event"
                   " could not be recorded\n";
    }
    return exit_ok;
  });
}

} // namespace portal::cli

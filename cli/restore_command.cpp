#include "cli/backup_command.hpp"
#include "cli/backup_format.hpp"
#include "cli/database.hpp"
#include "cli/progress.hpp"
#include "cli/report.hpp"
#include "config/upload_id.hpp"
#include "db/backup_rows.hpp"
#include "db/migrate.hpp"
#include "storage/backup_reader.hpp"
#include "storage/data_dir.hpp"
#include "storage/spool_file.hpp"
#include "storage/upload_file.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value_to.hpp>
#include <sys/stat.h>

#include <cerrno>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <unistd.h>

namespace portal::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* restore_usage =
  "usage: upload-portal [--config FILE] restore FILE.tar.zst [--force]  (- reads stdin)\n";
constexpr std::size_t max_header_bytes = std::size_t{64} << 10;
// ~150 bytes per upload: millions of uploads fit.
constexpr std::size_t max_manifest_bytes = std::size_t{512} << 20;

// A refusal before anything was changed: the target is not empty, the
// backup is newer than this binary, ...
struct refusal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0)
      ::close(fd);
  }
};

// Who owns what the restore creates: run as root (fly ssh console), the
// files take the data directory's owner, so the server can read them.
struct owner {
  bool change = false;
  uid_t uid = 0;
  gid_t gid = 0;

  static owner of(const fs::path& dir) {
    owner o;
    struct stat st {};
    if (::geteuid() == 0 && ::stat(dir.c_str(), &st) == 0 && st.st_uid != 0)
      o = {true, st.st_uid, st.st_gid};
    return o;
  }
  void apply(const fs::path& path) const {
    if (change && ::chown(path.c_str(), uid, gid) != 0)
      storage::throw_errno(errno, "chown " + path.string());
  }
};

// PORTAL_DATA_DIR/tmp/restore: one restore at a time; removed at the end,
// whatever the outcome.
class staging_dir {
public:
  explicit staging_dir(const storage::data_dir_layout& layout) : path_(layout.tmp / "restore") {
    if (::mkdir(path_.c_str(), 0750) != 0) {
      if (errno == EEXIST)
        throw refusal(
          path_.string() +
          " exists: another restore is running, or one was interrupted (then remove it)");
      storage::throw_errno(errno, "create " + path_.string());
    }
  }
  ~staging_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  staging_dir(const staging_dir&) = delete;
  staging_dir& operator=(const staging_dir&) = delete;
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

std::size_t count_entries(const fs::path& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    ++n;
  return n;
}

// Everything read from the backup, staged and hashed, not yet trusted.
struct staged_backup {
  backup_header header;
  std::optional<backup_manifest> manifest;
  std::map<std::string, storage::member_digest> members;            // name -> what arrived
  std::map<std::string, storage::member_digest> archives;           // upload id -> digest
  std::map<std::string, std::unique_ptr<storage::spool_file>> rows; // table -> JSON Lines
};

bool is_backup_table(const std::string& table) {
  const auto& tables = db::backup_tables();
  return std::find(tables.begin(), tables.end(), table) != tables.end();
}

// Reads the backup header; refuses a backup this binary or target cannot take.
backup_header read_header(storage::backup_reader& reader, const db::target_state& target) {
  auto first = reader.next();
  if (!first || first->name != backup_header_name || !first->regular)
    throw backup_format_error("not an upload-portal backup (it does not start with backup.json)");
  auto header = parse_backup_header(reader.read_all(max_header_bytes));
  int latest = db::latest_migration_version();
  if (header.schema_version > latest)
    throw refusal("the backup has schema " + std::to_string(header.schema_version) +
                  " (upload-portal " + header.portal_version +
                  "); this upload-portal knows schema " + std::to_string(latest) +
                  " at most: restore with a newer release");
  if (target.schema_version > header.schema_version)
    throw refusal("the database is at schema " + std::to_string(target.schema_version) +
                  ", newer than the backup's " + std::to_string(header.schema_version) +
                  ": restore into a fresh database with upload-portal " + header.portal_version +
                  " (the release that made the backup), then deploy this one (deploy/README.md)");
  return header;
}

void stage_members(storage::backup_reader& reader, const staging_dir& staging, const owner& files,
                   staged_backup& out, progress& shown) {
  while (auto m = reader.next()) {
    const std::string& name = m->name;
    if (out.manifest)
      throw backup_format_error("unexpected member " + name + " after manifest.json");
    if (!m->regular)
      throw backup_format_error("unexpected member " + name + " (not a regular file)");
    if (out.members.count(name) != 0 || name == backup_header_name)
      throw backup_format_error("member " + name + " appears twice");

    if (name == manifest_name) {
      out.manifest = parse_manifest(reader.read_all(max_manifest_bytes));
      continue;
    }
    if (auto id = upload_id_of(name); id && valid_upload_id(*id)) {
      auto path = staging.path() / *id;
      fd_closer file{::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640)};
      if (file.fd < 0)
        storage::throw_errno(errno, "create " + path.string());
      auto digest = reader.copy_to(file.fd);
      if (::fsync(file.fd) != 0)
        storage::throw_errno(errno, "fsync " + path.string());
      files.apply(path);
      out.members[name] = out.archives[*id] = digest;
    } else if (auto table = table_of(name); table && is_backup_table(*table)) {
      auto spool = std::make_unique<storage::spool_file>(staging.path());
      auto digest = reader.copy_to(spool->fd());
      spool->wrote(digest.size);
      out.members[name] = digest;
      out.rows[*table] = std::move(spool);
    } else {
      throw backup_format_error("unexpected member " + name);
    }
    shown.update(reader.bytes_in(), name);
  }
}

// Every member the manifest lists arrived with its size and sha256, nothing
// else arrived, every table is there, and the uploads rows and the archives
// match one to one.
void verify(const staged_backup& b) {
  if (!b.manifest)
    throw backup_format_error("the backup is incomplete: no manifest.json at its end"
                              " (was the backup interrupted?)");
  std::set<std::string> listed;
  for (const auto& e : b.manifest->members) {
    listed.insert(e.name);
    auto it = b.members.find(e.name);
    if (it == b.members.end())
      throw backup_format_error(e.name + " is listed in the manifest but missing from the backup");
    if (it->second.size != e.digest.size || it->second.sha256 != e.digest.sha256)
      throw backup_format_error(e.name + ": sha256 mismatch (manifest " + e.digest.sha256 +
                                ", read " + it->second.sha256 + "): the backup is damaged");
  }
  for (const auto& [name, digest] : b.members)
    if (listed.count(name) == 0)
      throw backup_format_error(name + " is in the backup but not in its manifest");
  for (const auto& table : db::backup_tables())
    if (b.rows.count(table) == 0)
      throw backup_format_error(rows_member(table) + " is missing from the backup");

  std::set<std::string> rows_seen;
  storage::spool_lines lines(*b.rows.at("uploads"));
  std::string line;
  while (lines.next(line)) {
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    if (ec || !value.is_object())
      throw backup_format_error(rows_member("uploads") + " holds a line that is not a JSON object");
    const auto& row = value.as_object();
    std::string id, sha256;
    uint64_t size = 0;
    try {
      id = boost::json::value_to<std::string>(row.at("id"));
      sha256 = boost::json::value_to<std::string>(row.at("sha256"));
      size = row.at("size").to_number<uint64_t>();
    } catch (const std::exception&) {
      throw backup_format_error(rows_member("uploads") + " holds a row without id, size or sha256");
    }
    auto it = b.archives.find(id);
    if (it == b.archives.end())
      throw backup_format_error("upload " + id + " has a row but no archive in the backup");
    if (it->second.size != size || it->second.sha256 != sha256)
      throw backup_format_error(archive_prefix + id + " differs from its row's size or sha256");
    rows_seen.insert(id);
  }
  for (const auto& [id, digest] : b.archives)
    if (rows_seen.count(id) == 0)
      throw backup_format_error(archive_prefix + id + " has no uploads row in the backup");
}

// Moves the verified archives into archives/ (with --force, what was there
// goes to orphans/replaced-<time>/ first: never deleted). undo() puts
// everything back as it was, for a failed commit.
class archive_swap {
public:
  archive_swap(const storage::data_dir_layout& layout, const fs::path& staged, const owner& files)
    : layout_(layout), staged_(staged), files_(files) {}

  void set_aside_existing() {
    std::vector<fs::path> existing;
    for (const auto& e : fs::directory_iterator(layout_.archives))
      existing.push_back(e.path());
    if (existing.empty())
      return;
    aside_dir_ = layout_.orphans / ("replaced-" + utc_now("%Y%m%dT%H%M%SZ"));
    fs::create_directories(aside_dir_);
    files_.apply(aside_dir_);
    for (const auto& from : existing) {
      auto to = aside_dir_ / from.filename();
      storage::rename_no_replace(from, to);
      aside_.emplace_back(from, to);
    }
    storage::fsync_directory(aside_dir_);
  }

  void move_in(const std::map<std::string, storage::member_digest>& archives) {
    for (const auto& [id, digest] : archives) {
      auto to = layout_.archives / id;
      storage::rename_no_replace(staged_ / id, to);
      moved_in_.push_back(to);
    }
    storage::fsync_directory(layout_.archives);
  }

  void undo() noexcept {
    for (const auto& path : moved_in_)
      ::unlink(path.c_str());
    for (const auto& [from, to] : aside_)
      ::rename(to.c_str(), from.c_str());
    try {
      storage::fsync_directory(layout_.archives);
    } catch (...) {
    }
  }

  const fs::path& aside_dir() const { return aside_dir_; }

private:
  storage::data_dir_layout layout_;
  fs::path staged_;
  owner files_;
  fs::path aside_dir_;
  std::vector<std::pair<fs::path, fs::path>> aside_;
  std::vector<fs::path> moved_in_;
};

struct restore_summary {
  backup_header header;
  std::map<std::string, uint64_t> rows;
  uint64_t archive_bytes = 0;
  std::size_t archives = 0;
  fs::path set_aside;
};

restore_summary run_restore(const config& cfg, const std::string& conninfo, int in_fd,
                            uint64_t in_size, bool force) {
  // Refusals first, before reading a byte of the backup.
  auto target = db::inspect_target(conninfo);
  if (!target.empty() && !force)
    throw refusal("the database holds " + std::to_string(target.users) + " users and " +
                  std::to_string(target.uploads) +
                  " uploads; restore only into an empty one (--force replaces them)");
  auto layout = storage::prepare_data_dir(cfg.data_dir);
  if (auto n = count_entries(layout.archives); n > 0 && !force)
    throw refusal("the data dir " + cfg.data_dir.string() + " holds " + std::to_string(n) +
                  " archives; restore only into an empty one (--force sets them aside)");

  owner files = owner::of(layout.root);
  staging_dir staging(layout);
  files.apply(staging.path());

  progress shown("restore", in_size);
  storage::backup_reader reader(in_fd);
  staged_backup backup;
  backup.header = read_header(reader, target);
  stage_members(reader, staging, files, backup, shown);
  shown.clear();
  verify(backup);

  // Verified: now the target changes. The schema of the backup first, so its
  // rows load as they were written; this binary's newer migrations last, over
  // the restored rows, as a deploy would run them.
  db::migrate(conninfo, backup.header.schema_version);
  db::restore_loader loader(conninfo);
  loader.prepare(force);
  for (const auto& table : db::backup_tables()) {
    storage::spool_lines lines(*backup.rows.at(table));
    loader.load(table, [&](std::string& line) { return lines.next(line); });
    auto expected = backup.manifest->rows.count(table) ? backup.manifest->rows.at(table) : 0;
    if (loader.loaded(table) != expected)
      throw backup_format_error(rows_member(table) + " holds " +
                                std::to_string(loader.loaded(table)) + " rows, the manifest says " +
                                std::to_string(expected));
  }

  // Files before the commit: a crash in between leaves files without rows,
  // which the server's start moves to orphans/; the other order would leave
  // rows whose files it then deletes.
  archive_swap swap(layout, staging.path(), files);
  restore_summary summary;
  try {
    if (force)
      swap.set_aside_existing();
    swap.move_in(backup.archives);
    loader.commit(boost::json::object{{"backup_created_at", backup.header.created_at},
                                      {"backup_portal_version", backup.header.portal_version},
                                      {"uploads", backup.archives.size()},
                                      {"force", force}});
  } catch (...) {
    swap.undo();
    throw;
  }
  try {
    db::migrate(conninfo);
  } catch (const std::exception& e) {
    throw std::runtime_error(
      "the backup is restored, but this release's newer migrations failed (" + one_line(e.what()) +
      "); run `upload-portal migrate`");
  }

  summary.header = backup.header;
  for (const auto& table : db::backup_tables())
    summary.rows[table] = loader.loaded(table);
  summary.archives = backup.archives.size();
  for (const auto& [id, digest] : backup.archives)
    summary.archive_bytes += digest.size;
  summary.set_aside = swap.aside_dir();
  return summary;
}

} // namespace

int restore_command(const config_loader& load, const args& words) {
  return guarded("restore", restore_usage, [&] {
    auto a = parse_args(words, 0, {}, {"--force"});
    expect_positional(a, 1, "FILE.tar.zst");
    const std::string& file = a.positional[0];
    if (file.empty())
      throw usage_error("FILE.tar.zst is empty");
    const bool force = a.has("--force");
    const config cfg = load();
    const std::string& conninfo = direct_database(cfg);
    fd_closer in{file == "-" ? -1 : ::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file != "-" && in.fd < 0)
      storage::throw_errno(errno, "open " + file);
    int fd = file == "-" ? STDIN_FILENO : in.fd;
    struct stat st {};
    uint64_t size =
      ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;

    auto s = run_restore(cfg, conninfo, fd, size, force);
    std::cout << "restore: " << s.archives << " uploads (" << human_bytes(s.archive_bytes) << "), "
              << s.rows["users"] << " users, " << s.rows["api_tokens"] << " tokens, "
              << s.rows["audit_events"] << " audit events from the backup of "
              << s.header.created_at << " (upload-portal " << s.header.portal_version << ", schema "
              << s.header.schema_version << "); every sha256 verified\n";
    if (!s.set_aside.empty())
      std::cout << "restore: the archives that were there are in " << s.set_aside.string() << "\n";
    return exit_ok;
  });
}

} // namespace portal::cli

#include "storage/partial_file.hpp"

#include "config/log.hpp"
#include "config/upload_id.hpp"
#include "storage/fd_io.hpp"
#include "storage/upload_file.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <optional>
#include <unistd.h>
#include <utility>

namespace portal::storage {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view suffix = ".part";

fs::path hold_path_of(const fs::path& partial) {
  auto hold = partial;
  return hold.replace_extension(".hold");
}

// A hold found on disk: the offset it names, none when it never got its
// content (a crash between its creation and its fsync: its PATCH had not
// appended anything yet).
struct found_hold {
  std::optional<uint64_t> offset;
};

// nullopt when there is no hold: the common case costs one failed open().
std::optional<found_hold> read_hold(const fs::path& hold) {
  int fd = ::open(hold.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return std::nullopt;
    throw_errno(errno, "open " + hold.string());
  }
  char text[24] = {};
  auto n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  uint64_t offset = 0;
  auto [end, ec] = std::from_chars(text, text + std::max<ssize_t>(n, 0), offset);
  if (ec != std::errc{} || end == text)
    return found_hold{};
  return found_hold{offset};
}

void unlink_hold(const fs::path& hold) {
  if (::unlink(hold.c_str()) != 0 && errno != ENOENT)
    throw_errno(errno, "unlink " + hold.string());
}

} // namespace

fs::path partial_path(const data_dir_layout& layout, const std::string& id) {
  if (!valid_upload_id(id))
    throw_errno(EINVAL, "invalid upload id");
  return layout.partials / (id + ".part");
}

partial_file::partial_file(fs::path path, int fd, uint64_t size)
  : path_(std::move(path)), fd_(fd), size_(size) {
  id_ = path_.filename().string();
  id_.resize(id_.size() - suffix.size());
}

partial_file::partial_file(partial_file&& other) noexcept
  : path_(std::move(other.path_)), id_(std::move(other.id_)), fd_(std::exchange(other.fd_, -1)),
    size_(other.size_), dirty_(other.dirty_), name_durable_(other.name_durable_),
    held_(other.held_) {}

partial_file& partial_file::operator=(partial_file&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      ::close(fd_);
    path_ = std::move(other.path_);
    id_ = std::move(other.id_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    dirty_ = other.dirty_;
    name_durable_ = other.name_durable_;
    held_ = other.held_;
  }
  return *this;
}

partial_file::~partial_file() {
  if (fd_ >= 0)
    ::close(fd_);
}

partial_file partial_file::create(const data_dir_layout& layout, const std::string& id) {
  auto path = partial_path(layout, id);
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    throw_errno(errno, "create " + path.string());
  // No fsync of partials/ here: the name becomes durable with the first
  // bytes (sync()). Until then a crash can only lose an empty file.
  return partial_file{path, fd, 0};
}

partial_file partial_file::open(const data_dir_layout& layout, const std::string& id) {
  auto path = partial_path(layout, id);
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0)
    throw_errno(errno, "open " + path.string());
  partial_file file{path, fd, 0};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw_errno(errno, "stat " + path.string());
  file.size_ = static_cast<uint64_t>(st.st_size);
  auto hold = hold_path_of(path);
  if (auto held = read_hold(hold)) {
    if (auto at = held->offset; at && *at < file.size_) {
      log::warn("tus partial cut back to its last verified offset",
                {{"upload_id", file.id_}, {"offset", *at}, {"unverified", file.size_ - *at}});
      file.cut_to(*at);
    }
    unlink_hold(hold);
    fsync_directory(layout.partials);
  }
  // What a killed process left in the page cache is durable before it
  // counts, name included. An empty file has nothing to make durable (a
  // crash may lose it, as create() says): the common case of a session
  // opening a partial just made.
  file.dirty_ = file.size_ > 0;
  file.sync();
  return file;
}

void partial_file::append(const char* data, std::size_t size) {
  dirty_ = true; // also when the write fails: a cut-back tail is synced away
  try {
    write_all(fd_, data, size, "write " + path_.string());
  } catch (const storage_error&) {
    // A short write leaves a tail nobody acknowledged: cut it, so the file
    // stays exactly what was appended before.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      // nothing more to do: the next open() believes the fsynced size
    }
    throw;
  }
  size_ += size;
}

void partial_file::sync() {
  sync_data();
  if (!name_durable_ && size_ > 0) {
    fsync_directory(path_.parent_path());
    name_durable_ = true;
  }
}

void partial_file::sync_data() {
  if (!dirty_)
    return;
  // fsync, not fdatasync: the size (inode metadata) is the offset.
  if (::fsync(fd_) != 0)
    throw_errno(errno, "fsync " + path_.string());
  dirty_ = false;
}

uint64_t partial_file::size() const {
  return size_;
}

void partial_file::cut_to(uint64_t n) {
  if (::ftruncate(fd_, static_cast<off_t>(n)) != 0)
    throw_errno(errno, "truncate " + path_.string());
  size_ = n;
  dirty_ = true;
  sync();
}

void partial_file::hold() {
  sync();
  write_file_synced(hold_path_of(path_), std::to_string(size_), O_TRUNC);
  fsync_directory(path_.parent_path());
  held_ = true;
}

void partial_file::release() {
  sync();
  if (!held_)
    return;
  unlink_hold(hold_path_of(path_));
  fsync_directory(path_.parent_path());
  held_ = false;
}

std::size_t partial_file::read_at(uint64_t offset, char* data, std::size_t size) const {
  for (;;) {
    ssize_t n = ::pread(fd_, data, size, static_cast<off_t>(offset));
    if (n >= 0)
      return static_cast<std::size_t>(n);
    if (errno != EINTR)
      throw_errno(errno, "read " + path_.string());
  }
}

fs::path partial_file::commit_to_archive(const data_dir_layout& layout) {
  sync_data(); // the name that must be durable is the new one
  auto target = layout.archives / id_;
  rename_no_replace(path_, target);
  ::close(std::exchange(fd_, -1));
  // archives/ only: the new name is what must survive a crash. Should the
  // old name in partials/ come back (a filesystem that lost half of the
  // rename), it is a partial without a row, removed at the next start
  // (storage/partial_reconcile.hpp), the archive's link untouched.
  fsync_directory(layout.archives);
  return target;
}

void return_to_partials(const data_dir_layout& layout, const std::string& id) {
  rename_no_replace(layout.archives / id, partial_path(layout, id));
  fsync_directory(layout.partials);
}

void remove_partial(const data_dir_layout& layout, const std::string& id) {
  auto path = partial_path(layout, id);
  // The hold first: a crash in between leaves a partial, which the next
  // start judges by its row, never a hold that nothing would remove.
  unlink_hold(hold_path_of(path));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw_errno(errno, "unlink " + path.string());
  fsync_directory(layout.partials);
}

std::vector<std::string> partial_ids(const data_dir_layout& layout) {
  std::vector<std::string> ids;
  for (auto& entry : fs::directory_iterator(layout.partials)) {
    auto name = entry.path().filename().string();
    if (name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    ids.push_back(name.substr(0, name.size() - suffix.size()));
  }
  return ids;
}

} // namespace portal::storage

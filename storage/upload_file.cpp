#include "storage/upload_file.hpp"

#include "config/crypto.hpp"
#include "config/upload_id.hpp"
#include "storage/failpoints.hpp"
#include "storage/sha256_hasher.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio> // renameat2, RENAME_NOREPLACE (glibc >= 2.28, _GNU_SOURCE: g++ defines it)
#include <fcntl.h>
#include <unistd.h>

namespace portal::storage {

namespace fs = std::filesystem;

void throw_errno(int err, const std::string& what) {
  throw storage_error(err, std::system_category(), what);
}

namespace {

void check_id(const std::string& id) {
  if (!valid_upload_id(id))
    throw_errno(EINVAL, "invalid upload id");
}

// Linux transfers at most 0x7ffff000 bytes per write(); asking for more only
// makes the short-write loop do the splitting.
constexpr std::size_t max_write = 0x7ffff000;

} // namespace

void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw_errno(errno, "open directory " + dir.string());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0)
    throw_errno(err, "fsync directory " + dir.string());
}

void rename_no_replace(const fs::path& from, const fs::path& to) {
#if defined(RENAME_NOREPLACE)
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
    return;
  // EINVAL: this filesystem does not support the flag; ENOSYS/EOPNOTSUPP:
  // neither does the kernel. Anything else is a real answer (EEXIST, ...).
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
    throw_errno(errno, "rename " + from.string() + " to " + to.string());
#endif
  // link() is atomic and fails with EEXIST, so the no-overwrite guarantee
  // holds; the name is then briefly in both places, harmless for files that
  // nobody else looks at.
  if (::link(from.c_str(), to.c_str()) == 0) {
    if (::unlink(from.c_str()) == 0)
      return;
    int err = errno;
    ::unlink(to.c_str()); // undo: leave exactly the state we found
    throw_errno(err, "unlink " + from.string());
  }
  int err = errno;
  struct stat st {};
  if (err == EPERM && ::lstat(from.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    // Directories cannot be hard-linked. Check then rename: racy against a
    // concurrent creator, which only start-up reconciliation (single
    // threaded, the only caller moving directories) can rule out.
    if (::lstat(to.c_str(), &st) == 0)
      throw_errno(EEXIST, "rename " + from.string() + " to " + to.string());
    if (::rename(from.c_str(), to.c_str()) == 0)
      return;
    err = errno;
  }
  throw_errno(err, "rename " + from.string() + " to " + to.string());
}

struct upload_file::impl {
  std::string id;
  fs::path tmp_path;     // <tmp>/<id>.part
  fs::path final_path;   // <archives>/<id>
  fs::path archives_dir; // fsynced after the rename
  int fd = -1;
  bool tmp_exists = false; // the .part is ours to unlink
  bool committed = false;
  uint64_t size = 0;
  sha256_hasher digest;

  void close_fd() noexcept {
    if (fd >= 0)
      ::close(fd); // on Linux the fd is gone even on EINTR: never retry
    fd = -1;
  }

  void remove_tmp() noexcept {
    close_fd();
    if (tmp_exists)
      ::unlink(tmp_path.c_str()); // ENOENT or worse: start-up removes stale .part files
    tmp_exists = false;
  }

  // Every commit() failure: nothing of this upload remains under tmp/.
  [[noreturn]] void fail(int err, const std::string& what) {
    remove_tmp();
    throw_errno(err, what);
  }
};

upload_file::upload_file(const data_dir_layout& layout, std::string upload_id)
  : impl_(std::make_unique<impl>()) {
  check_id(upload_id);
  auto& d = *impl_;
  d.id = std::move(upload_id);
  d.tmp_path = layout.tmp / (d.id + ".part");
  d.final_path = layout.archives / d.id;
  d.archives_dir = layout.archives;

  // The digest (a member, made above) comes first: if it fails there is no
  // file to clean up.

  // The temp file and tmp/ are deliberately not fsynced here: a temporary
  // file is never acknowledged to anyone, so after a crash it is fine for it
  // to be missing, and a stale .part that did survive is removed at start
  // (reconcile). Durability starts at commit().
  //
  // Buffered writes, the page cache absorbing the stream and commit()'s fsync
  // paying for writeback: measured against the two alternatives
  // (bench/RESULTS.md run 12, bench/stages.py), O_DIRECT saves about 0.1
  // CPU-s/GiB (~1 % of an upload's cost) but needs page-aligned offsets and
  // lengths, which chunks do not have (the first one goes out early at any
  // length, a tus PATCH ends anywhere): re-blocking them is a copy of every
  // byte, which costs more than that (~0.2 CPU-s/GiB in the same run's
  // profile). sync_file_range + DONTNEED every 8 MiB cost more than plain
  // buffered writes.
  d.fd = ::open(d.tmp_path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
  if (d.fd < 0)
    throw_errno(errno, "create " + d.tmp_path.string());
  d.tmp_exists = true;
}

upload_file::~upload_file() {
  abort();
}

void upload_file::write(const char* data, std::size_t size) {
  // Hot path (GiB/s): no allocation, no copy; the buffer goes straight to the
  // kernel and to the digest. Strings are built only when throwing.
  auto& d = *impl_;
  if (d.fd < 0)
    throw_errno(EBADF, "write after commit or abort: " + d.tmp_path.string());
  if (int err = failpoints::before_storage_write(d.size, size); err != 0)
    throw_errno(err, "write " + d.tmp_path.string() + " (failpoint)");

  const char* p = data;
  std::size_t left = size;
  while (left > 0) {
    ssize_t n = ::write(d.fd, p, std::min(left, max_write));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw_errno(errno, "write " + d.tmp_path.string());
    }
    if (n == 0) // not expected for a regular file; never spin on it
      throw_errno(EIO, "write " + d.tmp_path.string() + " wrote nothing");
    p += n;
    left -= static_cast<std::size_t>(n);
    d.size += static_cast<uint64_t>(n);
  }
  // After the write, so the digest always covers exactly the bytes in the file.
  d.digest.update(data, size);
}

uint64_t upload_file::size() const {
  return impl_->size;
}

committed_file upload_file::commit() {
  auto& d = *impl_;
  if (d.fd < 0)
    throw_errno(EBADF, "commit after commit or abort: " + d.tmp_path.string());

  // fsync, not fdatasync: the file is new, and its size (inode metadata) must
  // be durable along with the data or a crash could leave it truncated.
  if (::fsync(d.fd) != 0)
    d.fail(errno, "fsync " + d.tmp_path.string());

  std::string sha;
  try {
    sha = d.digest.hex_digest();
  } catch (const storage_error&) {
    d.remove_tmp();
    throw;
  }

  int fd = d.fd;
  d.fd = -1;
  if (::close(fd) != 0) // e.g. a deferred write error on network filesystems
    d.fail(errno, "close " + d.tmp_path.string());

  try {
    rename_no_replace(d.tmp_path, d.final_path);
  } catch (const storage_error&) {
    d.remove_tmp();
    throw;
  }
  d.tmp_exists = false;

  // No fsync of tmp/: if the old name's removal is lost in a crash, the
  // stale .part is a second link to the same inode, and start-up unlinking
  // it leaves the archive intact.
  try {
    fsync_directory(d.archives_dir);
  } catch (const storage_error&) {
    // Not durable, so not committed: take it back. If even this unlink is
    // lost, start-up finds a file without a row and moves it to orphans/.
    ::unlink(d.final_path.c_str());
    throw;
  }

  d.committed = true;
  return {d.final_path, std::move(sha), d.size};
}

void upload_file::abort() noexcept {
  if (impl_ && !impl_->committed)
    impl_->remove_tmp();
}

void remove_archive(const data_dir_layout& layout, const std::string& upload_id) {
  check_id(upload_id);
  auto path = layout.archives / upload_id;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw_errno(errno, "unlink " + path.string());
  // Also when it was already missing: an earlier unlink may not be durable yet.
  fsync_directory(layout.archives);
}

} // namespace portal::storage

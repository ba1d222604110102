#include "storage/backup_writer.hpp"

#include "storage/fd_io.hpp"
#include "storage/sha256_hasher.hpp"
#include "storage/upload_file.hpp"

#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>
#include <vector>
#include <zstd.h>

namespace portal::storage {

namespace {

constexpr std::size_t write_buffer_bytes = std::size_t{1} << 20;

} // namespace

struct backup_writer::impl {
  int fd = -1;
  archive* tar = nullptr;
  ZSTD_CCtx* zstd = nullptr;
  std::vector<char> zout = std::vector<char>(ZSTD_CStreamOutSize());
  std::vector<char> copy = std::vector<char>(write_buffer_bytes);
  uint64_t bytes_out = 0;
  bool finishing = false; // the close callback may end the zstd frame
  bool abandoned = false; // the destructor runs without finish()

  ~impl() {
    abandoned = true;
    if (tar != nullptr)
      archive_write_free(tar); // closes: the callbacks below write nothing now
    ZSTD_freeCCtx(zstd);
  }

  void compress(const void* data, std::size_t size, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, size, 0};
    for (;;) {
      ZSTD_outBuffer out{zout.data(), zout.size(), 0};
      std::size_t left = ZSTD_compressStream2(zstd, &out, &in, mode);
      if (ZSTD_isError(left))
        throw_errno(EIO, std::string("zstd: ") + ZSTD_getErrorName(left));
      write_all(fd, zout.data(), out.pos, "the backup");
      bytes_out += out.pos;
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done)
        return;
    }
  }

  // libarchive's callbacks: errors become archive errors, reported by the
  // archive_write_* call that caused them.
  static la_ssize_t on_write(archive* a, void* self, const void* buf, size_t len) {
    auto* d = static_cast<impl*>(self);
    if (d->abandoned)
      return static_cast<la_ssize_t>(len);
    try {
      d->compress(buf, len, ZSTD_e_continue);
      return static_cast<la_ssize_t>(len);
    } catch (const std::exception& e) {
      archive_set_error(a, EIO, "%s", e.what());
      return -1;
    }
  }

  static int on_close(archive* a, void* self) {
    auto* d = static_cast<impl*>(self);
    if (d->abandoned || !d->finishing)
      return ARCHIVE_OK;
    try {
      d->compress(nullptr, 0, ZSTD_e_end);
      return ARCHIVE_OK;
    } catch (const std::exception& e) {
      archive_set_error(a, EIO, "%s", e.what());
      return ARCHIVE_FATAL;
    }
  }

  [[noreturn]] void fail(const std::string& what) {
    const char* why = archive_error_string(tar);
    int err = archive_errno(tar);
    throw_errno(err > 0 ? err : EIO, what + ": " + (why ? why : "libarchive error"));
  }

  void header(const std::string& name, uint64_t size) {
    archive_entry* e = archive_entry_new();
    if (e == nullptr)
      throw_errno(ENOMEM, "archive_entry_new");
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0640);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e, std::time(nullptr), 0);
    int rc = archive_write_header(tar, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK)
      fail("backup member " + name);
  }

  void data(const std::string& name, const char* p, std::size_t n) {
    if (archive_write_data(tar, p, n) != static_cast<la_ssize_t>(n))
      fail("backup member " + name);
  }

  void end_member(const std::string& name) {
    if (archive_write_finish_entry(tar) != ARCHIVE_OK)
      fail("backup member " + name);
  }
};

backup_writer::backup_writer(int fd, int zstd_level) : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  d.fd = fd;
  d.zstd = ZSTD_createCCtx();
  if (d.zstd == nullptr)
    throw_errno(ENOMEM, "ZSTD_createCCtx");
  // A frame checksum: `zstd -t` and every reader detect a damaged file.
  ZSTD_CCtx_setParameter(d.zstd, ZSTD_c_compressionLevel, zstd_level);
  ZSTD_CCtx_setParameter(d.zstd, ZSTD_c_checksumFlag, 1);

  d.tar = archive_write_new();
  if (d.tar == nullptr)
    throw_errno(ENOMEM, "archive_write_new");
  if (archive_write_set_format_pax_restricted(d.tar) != ARCHIVE_OK ||
      archive_write_open(d.tar, &d, nullptr, &impl::on_write, &impl::on_close) != ARCHIVE_OK)
    d.fail("start the backup");
}

backup_writer::~backup_writer() = default;

member_digest backup_writer::add(const std::string& name, std::string_view data) {
  auto& d = *impl_;
  sha256_hasher hash;
  d.header(name, data.size());
  hash.update(data.data(), data.size());
  d.data(name, data.data(), data.size());
  d.end_member(name);
  return {data.size(), hash.hex_digest()};
}

member_digest backup_writer::add_fd(const std::string& name, int fd, uint64_t size) {
  auto& d = *impl_;
  sha256_hasher hash;
  d.header(name, size);
  uint64_t offset = 0;
  while (offset < size) {
    std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(d.copy.size(), size - offset));
    ssize_t n = ::pread(fd, d.copy.data(), want, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw_errno(errno, "read " + name);
    }
    if (n == 0) // shrank while being read: the member would be short
      throw_errno(EIO, "read " + name + ": the file changed size while being backed up");
    hash.update(d.copy.data(), static_cast<std::size_t>(n));
    d.data(name, d.copy.data(), static_cast<std::size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  d.end_member(name);
  return {size, hash.hex_digest()};
}

member_digest backup_writer::add_file(const std::string& name, const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    throw_errno(errno, "open " + path.string());
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_it{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw_errno(errno, "stat " + path.string());
  if (!S_ISREG(st.st_mode))
    throw_errno(EINVAL, path.string() + " is not a regular file");
  return add_fd(name, fd, static_cast<uint64_t>(st.st_size));
}

void backup_writer::finish() {
  auto& d = *impl_;
  d.finishing = true;
  if (archive_write_close(d.tar) != ARCHIVE_OK)
    d.fail("finish the backup");
}

uint64_t backup_writer::bytes_out() const {
  return impl_->bytes_out;
}

} // namespace portal::storage

#include "storage/backup_reader.hpp"

#include "storage/fd_io.hpp"
#include "storage/sha256_hasher.hpp"
#include "storage/upload_file.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <unistd.h>
#include <vector>

namespace portal::storage {

namespace {

constexpr std::size_t read_buffer_bytes = std::size_t{1} << 20;
constexpr std::size_t read_block_bytes = std::size_t{64} << 10;

} // namespace

struct backup_reader::impl {
  archive* tar = nullptr;
  std::vector<char> copy = std::vector<char>(read_buffer_bytes);
  std::string member; // the current member's name, for messages
  uint64_t member_size = 0;

  ~impl() {
    if (tar != nullptr)
      archive_read_free(tar);
  }

  [[noreturn]] void fail(const std::string& what) {
    const char* why = archive_error_string(tar);
    throw backup_damaged(what + ": " + (why ? why : "unreadable"));
  }

  // Like read(2): 0 at the member's end.
  std::size_t read_some() {
    la_ssize_t n = archive_read_data(tar, copy.data(), copy.size());
    if (n < 0)
      fail("backup damaged in " + member);
    return static_cast<std::size_t>(n);
  }
};

backup_reader::backup_reader(int fd) : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  d.tar = archive_read_new();
  if (d.tar == nullptr)
    throw_errno(ENOMEM, "archive_read_new");
  // Only what backup_writer writes: zstd around tar.
  if (archive_read_support_filter_zstd(d.tar) != ARCHIVE_OK ||
      archive_read_support_format_tar(d.tar) != ARCHIVE_OK ||
      archive_read_open_fd(d.tar, fd, read_block_bytes) != ARCHIVE_OK)
    d.fail("not a backup (expected a zstd-compressed tar)");
}

backup_reader::~backup_reader() = default;

std::optional<backup_member> backup_reader::next() {
  auto& d = *impl_;
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(d.tar, &e);
  if (rc == ARCHIVE_EOF)
    return std::nullopt;
  if (rc != ARCHIVE_OK)
    d.fail(d.member.empty() ? std::string("backup damaged at its start")
                            : "backup damaged after " + d.member);
  backup_member m;
  const char* name = archive_entry_pathname(e);
  m.name = name ? name : "";
  m.size = archive_entry_size_is_set(e) ? static_cast<uint64_t>(archive_entry_size(e)) : 0;
  m.regular = archive_entry_filetype(e) == AE_IFREG;
  d.member = m.name;
  d.member_size = m.size;
  return m;
}

std::string backup_reader::read_all(std::size_t max_bytes) {
  auto& d = *impl_;
  if (d.member_size > max_bytes)
    throw backup_damaged("backup member " + d.member + " is too large (" +
                         std::to_string(d.member_size) + " bytes)");
  std::string out;
  while (std::size_t n = d.read_some()) {
    if (out.size() + n > max_bytes)
      throw backup_damaged("backup member " + d.member + " is too large");
    out.append(d.copy.data(), n);
  }
  return out;
}

member_digest backup_reader::copy_to(int fd) {
  auto& d = *impl_;
  sha256_hasher hash;
  uint64_t total = 0;
  while (std::size_t n = d.read_some()) {
    hash.update(d.copy.data(), n);
    write_all(fd, d.copy.data(), n, d.member);
    total += n;
  }
  if (total != d.member_size)
    throw backup_damaged("backup damaged in " + d.member + ": " + std::to_string(total) + " of " +
                         std::to_string(d.member_size) + " bytes");
  return {total, hash.hex_digest()};
}

uint64_t backup_reader::bytes_in() const {
  return static_cast<uint64_t>(archive_filter_bytes(impl_->tar, -1));
}

} // namespace portal::storage

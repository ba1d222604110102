#include "storage/spool_file.hpp"

#include "storage/fd_io.hpp"
#include "storage/upload_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace portal::storage {

spool_file::spool_file(const std::filesystem::path& dir) {
  fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ >= 0)
    return;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    throw_errno(errno, "create a scratch file in " + dir.string());
  std::string name = (dir / "spool-XXXXXX").string();
  fd_ = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd_ < 0)
    throw_errno(errno, "create a scratch file in " + dir.string());
  ::unlink(name.c_str());
}

spool_file::~spool_file() {
  if (fd_ >= 0)
    ::close(fd_);
}

void spool_file::append(std::string_view data) {
  write_all(fd_, data.data(), data.size(), "a scratch file");
  size_ += data.size();
}

spool_lines::spool_lines(const spool_file& file, std::size_t max_line)
  : fd_(file.fd()), size_(file.size()), max_line_(max_line) {}

bool spool_lines::next(std::string& line) {
  constexpr std::size_t chunk = std::size_t{1} << 20;
  for (;;) {
    auto newline = buffer_.find('\n', pos_);
    if (newline != std::string::npos) {
      line.assign(buffer_, pos_, newline - pos_);
      pos_ = newline + 1;
      return true;
    }
    if (buffer_.size() - pos_ > max_line_)
      throw_errno(EFBIG, "a line longer than " + std::to_string(max_line_) + " bytes");
    if (offset_ == size_) { // the end: a last line without '\n'
      if (pos_ == buffer_.size())
        return false;
      line.assign(buffer_, pos_, std::string::npos);
      pos_ = buffer_.size();
      return true;
    }
    buffer_.erase(0, pos_);
    pos_ = 0;
    auto old = buffer_.size();
    auto want = static_cast<std::size_t>(std::min<uint64_t>(chunk, size_ - offset_));
    buffer_.resize(old + want);
    ssize_t n = ::pread(fd_, buffer_.data() + old, want, static_cast<off_t>(offset_));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) {
        buffer_.resize(old);
        continue;
      }
      throw_errno(n < 0 ? errno : EIO, "read a scratch file");
    }
    buffer_.resize(old + static_cast<std::size_t>(n));
    offset_ += static_cast<uint64_t>(n);
  }
}

} // namespace portal::storage

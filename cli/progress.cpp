#include "cli/progress.hpp"

#include "cli/report.hpp"

#include <cstdio>
#include <unistd.h>

namespace portal::cli {

progress::progress(std::string verb, uint64_t total)
  : verb_(std::move(verb)), total_(total), tty_(::isatty(STDERR_FILENO) == 1) {}

progress::~progress() {
  clear();
}

void progress::update(uint64_t done, const std::string& what) {
  if (!tty_)
    return;
  auto now = std::chrono::steady_clock::now();
  if (shown_ && now - last_ < std::chrono::milliseconds(200))
    return;
  last_ = now;
  std::string line = verb_ + ": " + human_bytes(done);
  if (total_ > 0)
    line += " of " + human_bytes(total_) + " (" +
            std::to_string(done >= total_ ? 100 : done * 100 / total_) + "%)";
  if (!what.empty())
    line += "  " + what.substr(0, 40);
  // \r to the line's start, the text, then erase whatever an older, longer
  // line left to its right.
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void progress::clear() {
  if (tty_ && shown_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
  shown_ = false;
}

} // namespace portal::cli

#include "cli/progress.hpp"

#include "cli/report.hpp"

#include <cstdio>
#include <unistd.h>

namespace portal::cli {

progress::progress(std::string verb, uint64_t total, uint64_t start)
  : verb_(std::move(verb)), total_(total), tty_(::isatty(STDERR_FILENO) == 1), start_(start) {}

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
  double seconds = std::chrono::duration<double>(now - began_).count();
  if (total_ > 0 && done > start_ && seconds > 0.1) {
    double rate = static_cast<double>(done - start_) / seconds;
    line += "  " + human_bytes(static_cast<uint64_t>(rate)) + "/s";
    if (done < total_)
      line += "  ETA " +
              std::to_string(static_cast<uint64_t>(static_cast<double>(total_ - done) / rate)) +
              " s";
  }
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

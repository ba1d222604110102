// One self-rewriting progress line on stderr for long CLI commands (backup,
// restore, push), only when stderr is a terminal: logs and pipes get the
// final summary line alone. The line shows bytes done, and with a known total
// the percentage, the rate (bytes this object counted since it was made,
// per second) and the time left at that rate.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace portal::cli {

class progress {
public:
  // `verb`: "backup", "restore"; `total`: bytes expected, 0 if unknown;
  // `start`: bytes already done before this object counts (a resumed push),
  // left out of the rate.
  progress(std::string verb, uint64_t total, uint64_t start = 0);
  ~progress(); // ends the line

  // Shows `done` bytes (and a percentage when the total is known); redraws at
  // most every 200 ms.
  void update(uint64_t done, const std::string& what = {});
  void set_total(uint64_t total) { total_ = total; }

  // Erases the line (before printing something else).
  void clear();

private:
  std::string verb_;
  uint64_t total_;
  bool tty_;
  bool shown_ = false;
  uint64_t start_;
  std::chrono::steady_clock::time_point began_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

} // namespace portal::cli

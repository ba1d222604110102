// TEST-ONLY failpoints for the storage write path: slow or full disks on
// demand, so end-to-end tests can exercise backpressure and ENOSPC handling
// against the real binary. Compiled in only with -DPORTAL_FAILPOINTS=ON
// (CMake), which defines PORTAL_FAILPOINTS=1; otherwise every hook is an
// empty inline function and the release binary contains nothing of this.
//
//   PORTAL_FAILPOINT_STORAGE_DELAY_US     sleep this many microseconds in every
//                                         upload_file::write() call
//   PORTAL_FAILPOINT_STORAGE_ENOSPC_AFTER a write() fails with ENOSPC (nothing
//                                         of it written) once the file would
//                                         grow beyond this many bytes
//
//   PORTAL_FAILPOINT_BACKUP_PAUSE_FILE    `backup`, once its snapshot is taken,
//                                         creates <this>.ready and waits (up
//                                         to 60 s) until <this> exists, so a
//                                         test can change things in between
//
// Read once per process (the first write), so tests set them before start.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(PORTAL_FAILPOINTS) && PORTAL_FAILPOINTS
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#endif

namespace portal::storage::failpoints {

#if defined(PORTAL_FAILPOINTS) && PORTAL_FAILPOINTS

struct storage_config {
  uint64_t delay_us = 0;
  std::optional<uint64_t> enospc_after;
};

// Unset, empty or not a plain decimal number: the failpoint is off.
inline std::optional<uint64_t> parse_u64(const char* text) {
  if (text == nullptr || *text < '0' || *text > '9')
    return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0')
    return std::nullopt;
  return static_cast<uint64_t>(v);
}

inline storage_config parse_storage_config(const char* delay_us, const char* enospc_after) {
  return {parse_u64(delay_us).value_or(0), parse_u64(enospc_after)};
}

inline const storage_config& storage() {
  static const storage_config cfg =
    parse_storage_config(std::getenv("PORTAL_FAILPOINT_STORAGE_DELAY_US"),
                         std::getenv("PORTAL_FAILPOINT_STORAGE_ENOSPC_AFTER"));
  return cfg;
}

// Called at the start of upload_file::write(): 0, or the errno to fail with.
inline int before_storage_write(uint64_t current_size, std::size_t n) {
  const auto& cfg = storage();
  if (cfg.delay_us != 0)
    std::this_thread::sleep_for(std::chrono::microseconds(cfg.delay_us));
  if (cfg.enospc_after && current_size + n > *cfg.enospc_after)
    return ENOSPC;
  return 0;
}

// Creates <path>.ready, then waits (up to 60 s) until <path> exists.
inline void pause_at(const char* path) {
  if (path == nullptr || *path == '\0')
    return;
  std::ofstream(std::string(path) + ".ready").put('\n');
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(path) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// Called by `backup` right after its snapshot is established.
inline void after_backup_snapshot() {
  pause_at(std::getenv("PORTAL_FAILPOINT_BACKUP_PAUSE_FILE"));
}

// Called by `push` after each PATCH the server acknowledged.
inline void after_push_patch(uint64_t offset) {
  static bool paused = false;
  auto at = parse_u64(std::getenv("PORTAL_FAILPOINT_PUSH_PAUSE_AT"));
  if (paused || !at || offset < *at)
    return;
  paused = true;
  pause_at(std::getenv("PORTAL_FAILPOINT_PUSH_PAUSE_FILE"));
}

#else

inline constexpr int before_storage_write(uint64_t, std::size_t) {
  return 0;
}

inline void after_backup_snapshot() {}

inline void after_push_patch(uint64_t) {}

#endif

} // namespace portal::storage::failpoints

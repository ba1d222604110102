// Where `push` remembers its unfinished uploads between runs (issue 12):
// one small JSON file per local file in <state dir>/push/, named by the
// SHA-256 of the key (absolute path, size, mtime in ns), holding the key, the
// server's base URL, the tus upload URL and the machine holding it. A file that changed (size or
// mtime) has another key, so it starts a new upload; an entry is dropped when
// its upload completes or the server no longer knows it (404/410).
//
// The state dir is $XDG_STATE_HOME/upload-portal, else
// $HOME/.local/state/upload-portal (XDG Base Directory spec); created mode
// 0700, entries written mode 0600 through a temporary file renamed into
// place, so a crash leaves the old entry or the new one. A missing or
// unreadable entry is no entry (the upload starts afresh). Errors creating
// or writing entries throw std::filesystem::filesystem_error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace portal::cli {

struct push_key {
  std::string path; // absolute, lexically normal
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// The key of the regular file at `path` (stat; follows symlinks). Throws
// std::filesystem::filesystem_error, or std::runtime_error when `path` is not a
// regular file.
push_key push_key_of(const std::filesystem::path& path);

struct push_entry {
  std::string server;     // the --url it was made with
  std::string upload_url; // the tus resource
  std::string instance;   // Portal-Instance of its creation, or empty
};

class push_state {
public:
  explicit push_state(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // The state dir of the XDG rules above from these two variables' values
  // (nullptr when unset); throws std::runtime_error when neither is usable.
  static std::filesystem::path default_dir(const char* xdg_state_home, const char* home);

  std::optional<push_entry> find(const push_key& key) const;
  void remember(const push_key& key, const push_entry& entry);
  void forget(const push_key& key);

  // The entry's file (for tests and messages).
  std::filesystem::path file_of(const push_key& key) const;

private:
  std::filesystem::path dir_;
};

} // namespace portal::cli

// Is a tar member safe to extract, given the members before it? (SPEC §5.3
// "unsafe entries", §11 "Unsafe entries"). Pure: plain strings in, a verdict
// out; no libarchive, no I/O, so it is tested with strings.
//
// Safe means that what GNU tar or bsdtar would create stays inside the
// directory the archive is extracted into:
//   - a name is not empty, not absolute, has no ".." component and no
//     control character (0x01-0x1f, 0x7f);
//   - only files, directories, symlinks and hardlinks (no devices, FIFOs,
//     sockets or unknown types);
//   - no path runs through an earlier symlink of the archive, and a path that
//     was a symlink once stays one for the check (GNU tar keeps a symlink to a
//     directory when a directory entry of that name follows);
//   - a symlink's target, read from the symlink's own directory, stays inside:
//     lexically at once, through the archive's other symlinks at the end
//     (check_symlink_chains());
//   - a hardlink's target is relative, has no ".." and runs through no
//     symlink. A hardlink to a symlink is judged as that symlink at the
//     hardlink's path, and later members are judged through it: both tars
//     link the symlink itself (link(2) does not follow it), so the new path
//     is a symlink with the same target, read from its own directory.
// A member may carry several names or link targets (the headers a tar reader
// may believe: storage/tar_headers.hpp). Each must be safe, and each is
// remembered, so that what a member is does not depend on the reader.
#pragma once

#include "config/error_code.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace portal::storage {

enum class entry_type {
  file,
  directory,
  symlink,
  hardlink,
  char_device,
  block_device,
  fifo,
  socket,
  unknown
};

// A name or link target as one source gives it. `origin` names the header it
// came from ("pax path", "GNU long name", ...; see tar_headers.hpp) for the
// message, or is empty for the reading libarchive reports.
struct entry_text {
  std::string text;
  std::string origin;
};

struct tar_entry {
  entry_type type = entry_type::file;
  std::vector<entry_text> names; // at least one
  std::vector<entry_text> links; // symlink or hardlink targets; ignored for other types
};

class entry_policy {
public:
  // Judges `e` after the members checked before it, and remembers what it
  // creates. Returns none when safe; else
  //   unsafe_entry:    "unsafe entry \"<name>\": <why>" (the name as
  //                    quoted_text() shows it);
  //   invalid_archive: a member without any name;
  //   archive_bomb:    the symlinks to remember pass 16 MiB.
  failure check(const tar_entry& e);

  // After the last member: every symlink target followed through the
  // archive's symlinks (every target a path ever had), at most 40 links deep
  // as the kernel's ELOOP limit. Returns unsafe_entry for a target that
  // resolves outside or loops, archive_bomb when that takes more than 16 Mi
  // steps, else none.
  failure check_symlink_chains() const;

private:
  enum class resolution { inside, outside, loop, too_costly };

  std::optional<std::string> through_symlink(const std::vector<std::string_view>& parts) const;
  failure check_hardlink(const entry_text& name, const entry_text& target) const;
  failure check_symlink(const entry_text& name, const std::vector<std::string_view>& parts,
                        std::string_view target, const std::string& what) const;
  void remember(const std::vector<std::string_view>& parts,
                const std::vector<std::string>& targets);
  resolution resolve(std::vector<std::string> path, std::vector<std::size_t> hashes,
                     std::vector<std::string> todo, int expansions, uint64_t& steps) const;

  // Each path that was a symlink, with every target it had.
  std::map<std::string, std::vector<std::string>, std::less<>> symlinks_;
  std::unordered_set<std::size_t> symlink_hashes_; // cheap prefix filter
  std::size_t symlink_bytes_ = 0;
};

} // namespace portal::storage

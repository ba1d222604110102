// The tar headers of the decompressed stream, read as the bytes pass on
// their way to libarchive (SPEC §11 "Unsafe entries", "Counting").
//
// Why read them at all: a member's name and link target may be written in
// several places, and tar readers disagree about which one wins when they
// differ. libarchive reports one reading; GNU tar may take another (both
// checked: libarchive takes a GNU long name over a later pax path, GNU tar
// the pax path; GNU tar applies a pax global header's path to every later
// member, libarchive ignores it). libarchive offers no way to see the other
// sources, so this unit reads the 512-byte headers itself (tar only:
// compressed formats are never parsed here) and hands every name and link
// target each member's headers carry to the entry policy:
//   "ustar name"           name, or prefix "/" name when the magic is ustar's
//   "GNU long name"        the data of an 'L' header
//   "pax path"             a path record of an 'x'/'X' header
//   "GNU.sparse.name"      that record of an 'x'/'X' header
//   "pax global path"      the latest path record of the earlier 'g' headers
//   "ustar linkname", "GNU long link" ('K'), "pax linkpath",
//   "pax global linkpath"  the same for link targets.
//
// It also follows the layout, refusing (invalid_archive) what readers lay
// out differently, so that they cannot disagree about where members are:
//   - a link, directory, device or FIFO header with a non-zero size (GNU tar
//     skips that much data, libarchive does not: a member could hide in it);
//   - a pax 'g' header with a size record (GNU tar applies it to every later
//     member, libarchive ignores it), pax size records that disagree or are
//     not a decimal number;
//   - a Solaris ACL header 'A' (libarchive reads it as metadata, GNU tar
//     extracts it as a file);
//   - special headers ('x', 'g', 'L', 'K', 'V') with over 1 MiB of data
//     before one member.
// And it finds the end of the archive: the first all-zero block where a
// header is due starts the end-of-archive marker; the marker is two zero
// blocks, and everything after it must be zero (record padding). Non-zero
// data there is refused: "tar -i" would extract what follows, unchecked.
//
// A header whose checksum is wrong stops the reading silently: libarchive
// refuses the same header with its own message. The driver matches each
// member libarchive reports with the one read here by the offset of its
// first header (take()); a mismatch means the two readings differ.
#pragma once

#include "config/error_code.hpp"
#include "storage/entry_policy.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace portal::storage {

struct member_headers {
  uint64_t position = 0; // offset of its first header (special ones included) in the tar stream
  char typeflag = '0';
  std::vector<entry_text> names; // every name its headers carry, in header order
  std::vector<entry_text> links; // every link target they carry
};

class tar_headers {
public:
  // The next bytes of the tar stream, in order. Returns invalid_archive as
  // listed above, else none; after a refusal, the rest is ignored.
  failure scan(const unsigned char* data, std::size_t size);

  // The end of the tar stream. Returns invalid_archive when the
  // end-of-archive marker (two zero blocks) is missing; none when it is
  // there or when the reading stopped at a bad checksum.
  failure finish() const;

  // The member whose first header is at `position`, the next one in archive
  // order; nullopt when the next one read here starts elsewhere (or none is
  // pending).
  std::optional<member_headers> take(uint64_t position);

  // Offset of the end-of-archive marker, once it was seen.
  std::optional<uint64_t> end_marker() const { return end_; }

private:
  enum class state { header, special_data, member_data, sparse_header, after_end, stopped };

  failure on_block();
  failure on_special_data();
  failure on_member_header(char type, uint64_t size);
  failure add_pax_records(bool global);

  state state_ = state::header;
  uint64_t offset_ = 0; // bytes scanned
  uint64_t skip_ = 0;   // member_data: bytes of data and padding still to pass
  uint64_t group_ = 0;  // offset of the first header of the member being read
  unsigned char block_[512] = {};
  std::size_t have_ = 0;   // bytes in block_
  char special_ = 0;       // special_data: its type
  std::string data_;       // special_data: its data so far
  uint64_t data_left_ = 0; // special_data: bytes still to come, padding included
  uint64_t data_size_ = 0; // special_data: its size without padding

  // What the special headers before the member header said.
  bool in_group_ = false; // one was seen
  std::vector<entry_text> names_;
  std::vector<entry_text> links_;
  std::optional<uint64_t> pax_size_;
  uint64_t pending_bytes_ = 0; // their data in all
  // What the 'g' headers so far said, the latest of each.
  std::optional<entry_text> global_name_;
  std::optional<entry_text> global_link_;

  std::deque<member_headers> members_;
  std::optional<uint64_t> end_;
};

} // namespace portal::storage

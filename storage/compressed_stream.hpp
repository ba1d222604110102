// The compression layer of an upload (SPEC §5.3, §11 "Compression
// integrity"): checks the first bytes, decompresses as the bytes arrive, and
// verifies what `gzip -t` / `zstd -t` verify, which are the reference: what
// they call corrupt is refused, what they accept is accepted. The one
// exception is the opt-in gzip_inflater::isal, below.
//
//   gzip (RFC 1952): any number of members, each one's CRC-32 and ISIZE
//     checked when it ends; after the last member only NUL padding (what
//     tape-blocked writers add; gzip -t ignores it), anything else is
//     refused. Through zlib; or, with gzip_inflater::isal, zlib reads each
//     member's header and ISA-L inflates the data and checks the trailer,
//     accepting the one kind of stream gzip -t refuses that gzip_inflater
//     names.
//   zstd (RFC 8878), through libzstd: any number of frames, each one's
//     content checksum checked when the frame has one; skippable frames
//     (magic 0x184D2A50-0x184D2A5F, as pzstd writes first) anywhere; nothing
//     after the last frame. Frames needing a window over 128 MiB are refused
//     (libzstd's and zstd -t's default limit).
//   The first bytes: gzip's 1f 8b, or zstd's 28 b5 2f fd, possibly after
//     skippable frames (SPEC §5.3). Refused at the first byte that differs,
//     before any of that chunk is decompressed.
//
// Nothing in the compressed formats is parsed here by hand: zlib, ISA-L and
// libzstd decode, and libzstd's ZSTD_getFrameHeader() reads the skippable
// frames' headers for the first-bytes rule. Both gzip inflaters sit behind one small
// interface, with the rules between members written once.
#pragma once

#include "config/error_code.hpp"
#include "storage/archive_format.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace portal::storage {

// Receives the decompressed bytes in order. The block is valid only during
// the call. Returns false to stop the decoding (the receiver refused).
using block_sink = std::function<bool(const unsigned char* data, std::size_t size)>;

// Which library inflates gzip members (PORTAL_GZIP_INFLATER). zlib, the
// default, refuses exactly what gzip -t refuses. isal inflates for about a
// third of zlib's CPU per byte (bench/RESULTS.md run 12: 1.9 against 5.4
// CPU-s/GiB of compressed input) and agrees with zlib on every
// input tests/unit/inflater_agreement_test.cpp tries but one kind: a deflate
// block whose Huffman code set is incomplete, which ISA-L decodes and zlib
// (with gzip -t) refuses.
enum class gzip_inflater { zlib, isal };

class compressed_stream {
public:
  // `max_output`: decompressed bytes allowed; more is archive_bomb.
  compressed_stream(archive_format f, uint64_t max_output, gzip_inflater how = gzip_inflater::zlib);
  ~compressed_stream();
  compressed_stream(const compressed_stream&) = delete;
  compressed_stream& operator=(const compressed_stream&) = delete;

  // The next compressed bytes. Every decompressed byte goes to `out` before
  // this returns; the bytes are not referenced afterwards. Returns
  //   unsupported_media_type  the first bytes are not the format's;
  //   invalid_archive         corrupt data, a failed CRC-32/ISIZE/checksum,
  //                           or bytes after the end of the compressed stream;
  //   archive_bomb            more than max_output decompressed bytes;
  // else none. After a refusal, or once `out` returned false, further calls
  // do nothing and return none.
  failure push(const char* data, std::size_t size, const block_sink& out);

  // The end of the compressed bytes. Returns unsupported_media_type for a
  // body too short to show its format, invalid_archive for a stream cut
  // short, else none.
  failure finish();

  uint64_t output_bytes() const { return output_; }

  struct decoder; // one per format (compressed_stream.cpp)

private:
  failure check_first_bytes(const unsigned char* data, std::size_t size);

  const archive_format format_;
  const uint64_t max_output_;
  std::unique_ptr<decoder> decoder_;
  uint64_t output_ = 0;
  bool done_ = false; // refused, or the receiver stopped

  // The first-bytes rule: the magic so far, and (zstd) skippable frames.
  bool format_shown_ = false;
  unsigned char head_[8] = {};
  std::size_t head_have_ = 0;
  uint64_t skipping_ = 0; // bytes of a skippable frame still to pass
  uint64_t seen_ = 0;     // compressed bytes checked
};

} // namespace portal::storage

// Builds the archive_check test corpus in memory: tar streams written by
// libarchive's writer or by hand (for what the writer will not produce), and
// gzip/zstd compression and decompression done directly with zlib and
// libzstd, independently of the code under test.
#pragma once

#include "storage/archive_check.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace portal::test {

struct member {
  std::string path;
  char type;        // tar typeflag: 0 file, 1 hardlink, 2 symlink, 3 char, 4 block, 5 dir, 6 FIFO
  std::string data; // file content
  std::string link; // symlink or hardlink target
  bool utf8;        // names are UTF-8: written as pax records, as tar does

  member(std::string path, char type = '0', std::string data = {}, std::string link = {},
         bool utf8 = false)
    : path(std::move(path)), type(type), data(std::move(data)), link(std::move(link)), utf8(utf8) {}
};

// A tar stream from libarchive's writer (pax restricted: ustar headers, pax
// ones only where needed). `pad_record`: pad to the 10240-byte record as tar
// does by default; otherwise it ends right after the end-of-archive marker.
std::string write_tar(const std::vector<member>& members, bool pad_record = true);

// Hand-built pieces.
std::string ustar_header(const std::string& name, char type, uint64_t size,
                         const std::string& link = "", const std::string& prefix = "");
std::string pax_header(const std::vector<std::pair<std::string, std::string>>& records,
                       char type = 'x');
// A GNU long name ('L') or long link ('K') record: header and data.
std::string gnu_long(char type, const std::string& value);
std::string padded(const std::string& data); // zero-padded to a 512 multiple
std::string end_marker();                    // two zero blocks

// Member contents: `n` bytes of numbered lines (compressible), or of a
// seeded mt19937's output (incompressible).
std::string text(std::size_t n);
std::string random_bytes(std::size_t n, std::mt19937& rng);
std::string random_bytes(std::size_t n, unsigned seed);

// Streaming compression in the format's usual framing (zstd with a content
// checksum, as the zstd tool writes it).
class compressor {
public:
  explicit compressor(storage::archive_format f, int level = 6);
  ~compressor();
  compressor(const compressor&) = delete;
  compressor& operator=(const compressor&) = delete;
  void add(const std::string& bytes);
  void add_zeros(uint64_t n);
  std::string finish();

private:
  void add(const char* p, std::size_t n);
  struct state;
  state* s_;
};

// The two formats (SPEC §5.1), short.
inline constexpr storage::archive_format gz = storage::archive_format::tar_gz;
inline constexpr storage::archive_format zst = storage::archive_format::tar_zst;

// `s` with the byte at `at` XORed with `mask`: damage in a known place.
std::string flip(std::string s, std::size_t at, unsigned char mask = 0x55);

std::string compress(storage::archive_format f, const std::string& raw, int level = 6);
std::string gzip_stored(const std::string& raw); // deflate "stored" blocks: bytes appear verbatim
// Independent decompression (every gzip member / zstd frame).
std::string decompress(storage::archive_format f, const std::string& compressed);

// A zstd skippable frame (RFC 8878 §3.1.2) with magic 0x184D2A50 + variant.
std::string zstd_skippable(const std::string& content, unsigned variant = 0);

// Generous limits: 1 GiB decompressed, 100 000 entries.
storage::archive_limits default_limits();

// Runs a check over `bytes` in chunks of `chunk` bytes. `fed` is how many
// bytes were fed when the outcome was known.
struct check_run {
  std::variant<storage::archive_summary, failure> outcome;
  std::size_t fed = 0;
  bool refused_while_feeding = false;
};
check_run run_check(storage::archive_format f, const std::string& bytes, std::size_t chunk,
                    storage::archive_limits limits = default_limits());

} // namespace portal::test

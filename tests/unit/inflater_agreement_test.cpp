// ISA-L's inflate (PORTAL_GZIP_INFLATER=isal) against zlib's, the reference
// (issue 14). On every input here, hostile ones and random damage among
// them, both must give the same outcome: the same bytes when they accept,
// the same error code when they refuse, and before a refusal, output that
// one of them extends (both decode the same deflate stream up to where they
// stop, however the input is cut into chunks). The one known difference,
// incomplete Huffman code sets, has its own test at the end: random damage
// cannot reach it, as the CRC-32 refuses almost every damaged stream first.
#include "storage/compressed_stream.hpp"
#include "tests/unit/archive_corpus.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <zlib.h>

using namespace portal;
using storage::compressed_stream;
using storage::gzip_inflater;
using test::random_bytes;
using test::text;

namespace {

using test::gz;

struct outcome {
  failure refused;
  std::string output;
};

// Decodes `bytes` cut at the offsets `cuts` gives: chunk sizes in turn,
// cycling.
outcome decode(gzip_inflater how, const std::string& bytes, const std::vector<std::size_t>& cuts,
               uint64_t max_output) {
  compressed_stream s(gz, max_output, how);
  outcome o;
  auto out = [&](const unsigned char* p, std::size_t n) {
    o.output.append(reinterpret_cast<const char*>(p), n);
    return true;
  };
  std::size_t at = 0;
  for (std::size_t i = 0; at < bytes.size(); ++i) {
    std::size_t n = std::min(cuts[i % cuts.size()], bytes.size() - at);
    if ((o.refused = s.push(bytes.data() + at, n, out)))
      return o;
    at += n;
  }
  o.refused = s.finish();
  return o;
}

bool extends(const std::string& longer, const std::string& shorter) {
  return longer.compare(0, shorter.size(), shorter) == 0;
}

// Returns the outcome both inflaters agree on.
outcome agreed(const std::string& bytes, std::vector<std::size_t> cuts = {64 * 1024},
               uint64_t max_output = uint64_t(1) << 30) {
  outcome isal = decode(gzip_inflater::isal, bytes, cuts, max_output);
  outcome zlib = decode(gzip_inflater::zlib, bytes, cuts, max_output);
  INFO("ISA-L: " << (isal.refused ? isal.refused.message : "accepted") << ", " << isal.output.size()
                 << " bytes out");
  INFO("zlib:  " << (zlib.refused ? zlib.refused.message : "accepted") << ", " << zlib.output.size()
                 << " bytes out");
  INFO("input " << bytes.size() << " bytes, first chunk " << cuts[0]);
  REQUIRE(isal.refused.code == zlib.refused.code);
  if (!isal.refused)
    REQUIRE(isal.output == zlib.output);
  else
    REQUIRE((extends(isal.output, zlib.output) || extends(zlib.output, isal.output)));
  return isal;
}

std::string sample_tar(std::size_t file_size, unsigned seed) {
  std::mt19937 rng(seed);
  return test::write_tar(
    {{"d/", '5'}, {"d/a", '0', text(file_size)}, {"d/b", '0', random_bytes(file_size / 4, rng)}});
}

// The gzip header (RFC 1952 §2.3.1) of `compressed`, with FLG = `flags` and
// `fields` (the optional fields, in order) after its fixed 10 bytes; with
// FHCRC, the CRC-16 over the header is appended, or `hcrc_xor` spoils it.
std::string with_header(const std::string& compressed, unsigned char flags,
                        const std::string& fields, uint16_t hcrc_xor = 0) {
  std::string header = compressed.substr(0, 10);
  header[3] = static_cast<char>(flags);
  header += fields;
  if (flags & 0x02) {
    auto crc = static_cast<uint16_t>(
      crc32(0, reinterpret_cast<const Bytef*>(header.data()), static_cast<uInt>(header.size())) ^
      hcrc_xor);
    header += static_cast<char>(crc & 0xff);
    header += static_cast<char>(crc >> 8);
  }
  return header + compressed.substr(10);
}

std::string flipped(std::string s, std::size_t at, unsigned char mask) {
  s[at] = static_cast<char>(static_cast<unsigned char>(s[at]) ^ mask);
  return s;
}

} // namespace

TEST_CASE("both inflaters accept the same well-formed streams, byte for byte",
          "[compressed_stream][inflater]") {
  std::string tar = sample_tar(200000, 1);
  std::string members;
  for (std::size_t at = 0; at < tar.size(); at += 10240)
    members += test::compress(gz, tar.substr(at, 10240), 1 + int(at / 10240) % 9);
  for (const std::string& bytes :
       {test::compress(gz, tar, 1), test::compress(gz, tar, 6), test::compress(gz, tar, 9),
        test::gzip_stored(tar), members, test::compress(gz, "") + test::compress(gz, tar),
        test::compress(gz, tar) + std::string(10240, '\0')}) {
    for (std::vector<std::size_t> cuts :
         {std::vector<std::size_t>{1 << 20}, {1}, {7, 4096, 3}, {65536}}) {
      if (cuts[0] == 1 && bytes.size() > 300000)
        continue; // a byte at a time: the small streams are enough
      CHECK(agreed(bytes, cuts).output == tar);
    }
  }
}

TEST_CASE("both inflaters read and refuse the same gzip headers", "[compressed_stream][inflater]") {
  std::string tar = sample_tar(3000, 2);
  std::string bytes = test::compress(gz, tar);
  const std::string name("build-42.tar\0", 13);
  const std::string extra("\x06\x00"
                          "AB\x02\x00"
                          "xy",
                          8); // XLEN 6: subfield AB, 2 bytes

  SECTION("the optional fields, as gzip and others write them") {
    for (const std::string& b :
         {with_header(bytes, 0x08, name), with_header(bytes, 0x10, std::string("a comment\0", 10)),
          with_header(bytes, 0x04, extra), with_header(bytes, 0x02, ""),
          with_header(bytes, 0x1f, extra + name + std::string("c\0", 2)),
          with_header(bytes, 0x01, "")}) {
      for (std::size_t chunk : {std::size_t(1), std::size_t(5), b.size()}) {
        outcome o = agreed(b, {chunk});
        INFO("flags " << int(b[3]) << ": " << o.refused.message);
        CHECK(o.output == tar);
      }
    }
  }
  SECTION("a header that gzip -t refuses") {
    for (const std::string& b :
         {with_header(bytes, 0x02, "", 0x0001), with_header(bytes, 0x0a, name, 0x8000),
          with_header(bytes, 0x20, ""), with_header(bytes, 0x40, ""), with_header(bytes, 0x80, ""),
          flipped(bytes, 2, 0x0f), flipped(bytes, 1, 0x01)}) {
      for (std::size_t chunk : {std::size_t(1), b.size()})
        CHECK(agreed(b, {chunk}).refused);
    }
  }
  SECTION("a header cut short, field by field") {
    std::string full = with_header(bytes, 0x1e, extra + name + std::string("c\0", 2));
    for (std::size_t keep = 2; keep < 40; ++keep)
      CHECK(agreed(full.substr(0, keep), {1}).refused.code == error_code::invalid_archive);
  }
}

TEST_CASE("both inflaters refuse the same damage at every byte of a small stream",
          "[compressed_stream][inflater]") {
  std::string tar = sample_tar(1500, 3);
  std::string two =
    test::compress(gz, tar.substr(0, 1024), 9) + test::compress(gz, tar.substr(1024));
  for (const std::string& bytes :
       {test::compress(gz, tar), test::gzip_stored(tar.substr(0, 600)), two}) {
    for (std::size_t keep = 0; keep < bytes.size(); ++keep)
      agreed(bytes.substr(0, keep), {keep % 2 ? std::size_t(1) : std::size_t(4096)});
    for (std::size_t at = 0; at < bytes.size(); ++at)
      for (unsigned char mask : {0x01, 0x10, 0x80, 0xff})
        agreed(flipped(bytes, at, mask), {at % 3 == 0 ? std::size_t(1) : std::size_t(4096)});
  }
}

TEST_CASE("both inflaters treat what follows the last member alike",
          "[compressed_stream][inflater]") {
  std::string tar = sample_tar(3000, 4);
  std::string bytes = test::compress(gz, tar);
  std::string next = test::compress(gz, "more");
  for (const std::string& tail :
       {std::string(1, '\0'), std::string(512, '\0'), std::string("trailing garbage"),
        std::string(512, '\0') + "x", std::string(3, '\0') + "\x1f\x8b", std::string("\x1f\x8b"),
        std::string("\x1f"), next.substr(0, next.size() - 1), next.substr(0, 10), next + "x"}) {
    for (std::size_t chunk : {std::size_t(1), std::size_t(3), bytes.size() + tail.size()})
      agreed(bytes + tail, {chunk});
  }
}

TEST_CASE("both inflaters stop a bomb at the same limit", "[compressed_stream][inflater]") {
  test::compressor c(gz, 9);
  c.add_zeros(64ull << 20);
  std::string bomb = c.finish();
  CHECK(agreed(bomb, {bomb.size() / 64}, 1 << 20).refused.code == error_code::archive_bomb);
  std::string tar = sample_tar(5000, 5);
  std::string bytes = test::compress(gz, tar);
  CHECK_FALSE(agreed(bytes, {4096}, tar.size()).refused);
  CHECK(agreed(bytes, {4096}, tar.size() - 1).refused.code == error_code::archive_bomb);
}

TEST_CASE("both inflaters agree on randomly damaged streams", "[compressed_stream][inflater]") {
  const std::string tar = sample_tar(60000, 6);
  const std::vector<std::string> bases = {
    test::compress(gz, tar, 1), test::compress(gz, tar, 9), test::gzip_stored(tar),
    test::compress(gz, tar.substr(0, 20000)) + test::compress(gz, tar.substr(20000), 3)};
  std::mt19937 rng(20261201);
  int refused = 0;
  const int runs = 3000;
  for (int run = 0; run < runs; ++run) {
    std::string bytes = bases[rng() % bases.size()];
    const unsigned damage = rng() % 4; // flips, a cut, an overwritten run, or all three
    if (damage == 0 || damage == 3)
      for (unsigned n = 1 + rng() % 3; n > 0; --n)
        bytes = flipped(bytes, rng() % bytes.size(), static_cast<unsigned char>(1 + rng() % 255));
    if (damage == 1 || damage == 3)
      bytes.resize(rng() % bytes.size());
    if ((damage == 2 || damage == 3) && bytes.size() > 16) {
      std::size_t at = rng() % (bytes.size() - 16);
      for (std::size_t i = at; i < at + 1 + rng() % 16; ++i)
        bytes[i] = static_cast<char>(rng());
    }
    std::vector<std::size_t> cuts{1 + rng() % 9000, 1 + rng() % 7, 1 + rng() % 70000};
    INFO("run " << run << ", damage " << damage);
    if (agreed(bytes, cuts).refused)
      ++refused;
  }
  // The damage is real: most runs are refused (some flips land in a stored
  // block's padding-free bytes and are caught only by the CRC-32, some in
  // fields nothing checks, like MTIME).
  CHECK(refused > runs / 2);
}

namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

} // namespace

TEST_CASE("incomplete Huffman code sets: zlib refuses them, ISA-L decodes them",
          "[compressed_stream][inflater]") {
  // Hand-made members, each one final dynamic block with a correct CRC-32
  // and ISIZE (found by a review, 2026-12-01): the literal/length code, the
  // distance code and the code-length code incomplete in turn. gzip -t says
  // "invalid compressed data--format violated" to each. This is why the
  // server inflates with zlib unless PORTAL_GZIP_INFLATER=isal
  // (docs/CONFIGURATION.md); if ISA-L ever refuses them too, this test says
  // so and the option's caveat can go.
  struct hand_made {
    const char* hex;
    const char* output;
    const char* zlib_says;
  };
  for (const auto& m : {
         hand_made{"1f8b080000000000000305c001010000008090adfe9f08022d7307f003000000", "aaa",
                   "invalid literal/lengths set"},
         hand_made{"1f8b08000000000000030dc101010000008090adfe9f285945e598ad04000000", "aaaa",
                   "invalid distances set"},
         hand_made{"1f8b08000000000000030dc08101000000c03059a1bf12242c45e598ad04000000", "aaaa",
                   "invalid code lengths set"},
       }) {
    std::string bytes = from_hex(m.hex);
    INFO(m.hex);
    outcome zlib = decode(gzip_inflater::zlib, bytes, {bytes.size()}, 1 << 20);
    CHECK(zlib.refused.code == error_code::invalid_archive);
    CHECK_THAT(zlib.refused.message, Catch::Matchers::Contains(m.zlib_says));
    outcome isal = decode(gzip_inflater::isal, bytes, {bytes.size()}, 1 << 20);
    CHECK_FALSE(isal.refused);
    CHECK(isal.output == m.output);
    // The default is the strict one.
    compressed_stream s(gz, 1 << 20);
    auto ignore = [](const unsigned char*, std::size_t) { return true; };
    failure f = s.push(bytes.data(), bytes.size(), ignore);
    if (!f)
      f = s.finish();
    CHECK(f.code == error_code::invalid_archive);
  }
}

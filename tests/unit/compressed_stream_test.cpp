#include "storage/compressed_stream.hpp"
#include "tests/unit/archive_corpus.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace portal;
using Catch::Matchers::Contains;
using storage::compressed_stream;
using test::random_bytes;
using test::text;

namespace {

using test::gz;
using test::zst;

// Decodes `bytes` in chunks; the outcome, what came out, and how much was
// pushed when the outcome was known.
struct decoded {
  failure refused;
  std::string output;
  std::size_t pushed = 0;
  bool while_pushing = false;
};

decoded decode(storage::archive_format f, const std::string& bytes, std::size_t chunk = 64 * 1024,
               uint64_t max_output = uint64_t(1) << 30) {
  compressed_stream s(f, max_output);
  decoded d;
  auto out = [&](const unsigned char* p, std::size_t n) {
    d.output.append(reinterpret_cast<const char*>(p), n);
    return true;
  };
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    std::string piece = bytes.substr(at, chunk);
    d.refused = s.push(piece.data(), piece.size(), out);
    d.pushed = at + piece.size();
    if (d.refused) {
      d.while_pushing = true;
      return d;
    }
  }
  d.refused = s.finish();
  return d;
}

std::string accepted(storage::archive_format f, const std::string& bytes,
                     std::size_t chunk = 64 * 1024) {
  auto d = decode(f, bytes, chunk);
  INFO(d.refused.message);
  CHECK_FALSE(d.refused);
  return d.output;
}

failure refused_as(storage::archive_format f, const std::string& bytes, error_code code,
                   std::size_t chunk = 64 * 1024) {
  auto d = decode(f, bytes, chunk);
  INFO(d.refused.message);
  CHECK(d.refused.code == code);
  return d.refused;
}

std::string sample_tar() {
  return test::write_tar(
    {{"d/", '5'}, {"d/a", '0', text(30000)}, {"d/b", '0', random_bytes(5000, 1)}});
}

// Two gzip members, each a level-0 ("stored") deflate stream: their bytes
// appear verbatim, so one can be changed and still inflate.
std::string two_stored_members(const std::string& tar) {
  return test::gzip_stored(tar.substr(0, 1024)) + test::gzip_stored(tar.substr(1024));
}

} // namespace

TEST_CASE("the decompressed bytes are the original ones, however the input is cut",
          "[compressed_stream]") {
  auto f = GENERATE(gz, zst);
  std::string tar = sample_tar();
  std::string bytes = test::compress(f, tar);
  for (std::size_t chunk : {std::size_t(1), std::size_t(7), std::size_t(4096), bytes.size()}) {
    INFO("chunk " << chunk);
    CHECK(accepted(f, bytes, chunk) == tar);
  }
  compressed_stream s(f, 1 << 30);
  CHECK_FALSE(
    s.push(bytes.data(), bytes.size(), [](const unsigned char*, std::size_t) { return true; }));
  CHECK_FALSE(s.finish());
  CHECK(s.output_bytes() == tar.size());
}

TEST_CASE("several gzip members or zstd frames are one stream", "[compressed_stream]") {
  auto f = GENERATE(gz, zst);
  std::string tar = sample_tar();
  std::string bytes;
  for (std::size_t at = 0; at < tar.size(); at += 512)
    bytes += test::compress(f, tar.substr(at, 512)); // one member per tar block
  CHECK(accepted(f, bytes, 1000) == tar);
  CHECK(accepted(f, test::compress(f, "") + test::compress(f, tar)) == tar);
}

TEST_CASE("a body that is not the declared compression is unsupported_media_type",
          "[compressed_stream]") {
  std::string tar = sample_tar();
  std::string gz_bytes = test::compress(gz, tar);
  std::string zst_bytes = test::compress(zst, tar);

  SECTION("zstd declared as gzip, and the reverse, refused in the first chunk") {
    auto a = decode(gz, zst_bytes);
    CHECK(a.while_pushing);
    CHECK(a.output.empty());
    CHECK(a.refused.code == error_code::unsupported_media_type);
    CHECK_THAT(a.refused.message, Contains("gzip") && Contains("28 b5"));
    auto b = decode(zst, gz_bytes);
    CHECK(b.while_pushing);
    CHECK(b.refused.code == error_code::unsupported_media_type);
    CHECK_THAT(b.refused.message, Contains("zstd") && Contains("1f 8b"));
  }
  SECTION("an uncompressed tar or text") {
    refused_as(gz, tar, error_code::unsupported_media_type);
    refused_as(zst, tar, error_code::unsupported_media_type);
    refused_as(gz, text(100), error_code::unsupported_media_type);
  }
  SECTION("decided at the first wrong byte, one byte per push") {
    std::string almost = zst_bytes;
    almost[3] = '\x00';
    compressed_stream s(zst, 1 << 30);
    auto out = [](const unsigned char*, std::size_t) { return true; };
    CHECK_FALSE(s.push(almost.data(), 1, out));
    CHECK_FALSE(s.push(almost.data() + 1, 1, out));
    CHECK_FALSE(s.push(almost.data() + 2, 1, out));
    CHECK(s.push(almost.data() + 3, 1, out).code == error_code::unsupported_media_type);
    compressed_stream g(gz, 1 << 30);
    CHECK_FALSE(g.push("\x1f", 1, out));
    CHECK(g.push("\x8c", 1, out).code == error_code::unsupported_media_type);
  }
  SECTION("an empty or too short body") {
    for (auto f : {gz, zst}) {
      compressed_stream s(f, 1 << 30);
      CHECK(s.finish().code == error_code::unsupported_media_type);
    }
    refused_as(gz, "\x1f", error_code::unsupported_media_type);
    refused_as(zst, "\x28\xb5\x2f", error_code::unsupported_media_type);
  }
}

TEST_CASE("zstd skippable frames are accepted anywhere", "[compressed_stream]") {
  std::string tar = sample_tar();
  std::string frame = test::compress(zst, tar);
  std::string half1 = test::compress(zst, tar.substr(0, 7000));
  std::string half2 = test::compress(zst, tar.substr(7000));
  auto skippable = [](unsigned variant, std::size_t n = 4) {
    return test::zstd_skippable(random_bytes(n, variant), variant);
  };

  SECTION("before the first frame (pzstd writes one), every magic variant") {
    for (unsigned v = 0; v < 16; ++v) {
      INFO("variant " << v);
      CHECK(accepted(zst, skippable(v) + frame, 1) == tar);
    }
    CHECK(accepted(zst, skippable(0) + skippable(15, 0) + skippable(3, 100000) + frame, 999) ==
          tar);
  }
  SECTION("between frames and after the last one") {
    CHECK(accepted(zst, half1 + skippable(5) + half2) == tar);
    CHECK(accepted(zst, frame + skippable(9)) == tar);
    CHECK(accepted(zst, skippable(1) + half1 + skippable(2) + half2 + skippable(3), 5) == tar);
  }
  SECTION("the first-bytes rule still applies after them") {
    auto e =
      refused_as(zst, skippable(0) + test::compress(gz, tar), error_code::unsupported_media_type);
    CHECK_THAT(e.message, Contains("after 12 bytes of skippable frames") && Contains("1f 8b"));
    refused_as(zst, skippable(0) + "garbage", error_code::unsupported_media_type, 1);
    refused_as(zst, skippable(0), error_code::unsupported_media_type);
    refused_as(zst, skippable(0).substr(0, 6), error_code::unsupported_media_type);
    // A skippable frame claiming more than there is.
    refused_as(zst, skippable(0, 100).substr(0, 50), error_code::unsupported_media_type);
  }
}

TEST_CASE("truncated compression is invalid_archive", "[compressed_stream]") {
  auto f = GENERATE(gz, zst);
  std::string bytes = test::compress(f, sample_tar());
  for (std::size_t keep : {bytes.size() - 1, bytes.size() - 4, bytes.size() - 8, bytes.size() - 9,
                           bytes.size() / 2, std::size_t(20), std::size_t(9), std::size_t(5)}) {
    INFO("kept " << keep << " of " << bytes.size());
    refused_as(f, bytes.substr(0, keep), error_code::invalid_archive);
  }
  // A complete first member or frame, the second cut short.
  std::string second = test::compress(f, "more");
  refused_as(f, bytes + second.substr(0, second.size() - 1), error_code::invalid_archive);
}

TEST_CASE("corrupt compressed data is invalid_archive", "[compressed_stream]") {
  std::string tar = sample_tar();

  SECTION("bytes flipped inside the compressed data") {
    auto f = GENERATE(gz, zst);
    std::string bytes = test::compress(f, tar);
    for (std::size_t at :
         {bytes.size() / 3, bytes.size() / 2, bytes.size() * 3 / 4, std::size_t(30)}) {
      INFO("flipped at " << at << " of " << bytes.size());
      refused_as(f, test::flip(bytes, at), error_code::invalid_archive);
    }
  }
  SECTION("gzip: damage that still inflates is caught by the CRC-32") {
    std::string marker(64, 'Q');
    std::string stored = test::gzip_stored(marker + text(1000));
    auto at = stored.find(marker);
    REQUIRE(at != std::string::npos);
    auto e = refused_as(gz, test::flip(stored, at + 10, 0x01), error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("incorrect data check"));
  }
  SECTION("gzip: the trailer, one field or both") {
    std::string bytes = test::compress(gz, tar);
    refused_as(gz, test::flip(bytes, bytes.size() - 6), error_code::invalid_archive); // CRC-32
    refused_as(gz, test::flip(bytes, bytes.size() - 2), error_code::invalid_archive); // ISIZE
    std::string zeroed = bytes.substr(0, bytes.size() - 8) + std::string(8, '\0');
    auto e = refused_as(gz, zeroed, error_code::invalid_archive); // the example
    CHECK_THAT(e.message, Contains("member 1"));
  }
  SECTION("gzip: every member is checked, not only the last") {
    std::string stored = two_stored_members(tar);
    REQUIRE(accepted(gz, stored) == tar);
    // A byte inside the first member's stored block (a tar header's name).
    auto at = stored.find("d/a");
    REQUIRE(at < stored.size() / 2);
    auto first = test::flip(stored, at + 5, 0x01);
    auto e = refused_as(gz, first, error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("member 1") && Contains("incorrect data check"));
    // The first member's trailer zeroed.
    std::string one = test::gzip_stored(tar.substr(0, 1024));
    std::string bad =
      one.substr(0, one.size() - 8) + std::string(8, '\0') + test::gzip_stored(tar.substr(1024));
    refused_as(gz, bad, error_code::invalid_archive);
    // Only its ISIZE.
    refused_as(gz, test::flip(one, one.size() - 3) + test::gzip_stored(tar.substr(1024)),
               error_code::invalid_archive);
    // The middle one of three.
    std::string three = test::compress(gz, tar.substr(0, 512)) +
                        test::flip(test::gzip_stored(tar.substr(512, 512)), 20, 0x01) +
                        test::compress(gz, tar.substr(1024));
    CHECK_THAT(refused_as(gz, three, error_code::invalid_archive).message, Contains("member 2"));
  }
  SECTION("gzip: headers zlib does not accept") {
    std::string bytes = test::compress(gz, tar);
    refused_as(gz, test::flip(bytes, 3, 0xe0), error_code::invalid_archive); // reserved flag bits
    std::string not_deflate = bytes;
    not_deflate[2] = '\x07';
    refused_as(gz, not_deflate, error_code::invalid_archive);
  }
  SECTION("zstd: a damaged content checksum") {
    std::string bytes = test::compress(zst, tar);
    auto e = refused_as(zst, test::flip(bytes, bytes.size() - 1), error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("checksum"));
  }
}

TEST_CASE("gzip headers with optional fields are accepted", "[compressed_stream]") {
  std::string tar = sample_tar();
  std::string bytes = test::compress(gz, tar);
  // FNAME, as "gzip file.tar" writes it: flag 0x08 and a name after the
  // fixed 10-byte header.
  bytes[3] = '\x08';
  bytes.insert(10, std::string("build-42.tar\0", 13));
  CHECK(accepted(gz, bytes) == tar);
}

TEST_CASE("after the compressed stream", "[compressed_stream]") {
  std::string tar = sample_tar();

  SECTION("gzip: NUL padding is accepted, as gzip -t does") {
    std::string bytes = test::compress(gz, tar);
    for (std::size_t n : {std::size_t(1), std::size_t(512), std::size_t(10240)}) {
      INFO(n << " NUL bytes");
      CHECK(accepted(gz, bytes + std::string(n, '\0'), 100) == tar);
    }
    std::string two = test::compress(gz, tar.substr(0, 512)) + test::compress(gz, tar.substr(512));
    CHECK(accepted(gz, two + std::string(512, '\0')) == tar);
  }
  SECTION("gzip: anything else is refused, also after NULs") {
    std::string bytes = test::compress(gz, tar);
    for (std::string tail :
         {std::string("trailing garbage"), std::string(512, '\0') + "x",
          std::string(3, '\0') + "\x1f\x8b", std::string("\x1f\x8b"), std::string("\x1f")}) {
      INFO(tail.size() << " bytes after the stream");
      refused_as(gz, bytes + tail, error_code::invalid_archive);
      refused_as(gz, bytes + tail, error_code::invalid_archive, 1);
    }
    auto e = refused_as(gz, bytes + "garbage", error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("after the end of the gzip stream"));
  }
  SECTION("zstd: anything that is not a frame is refused, NULs too (zstd -t does)") {
    std::string bytes = test::compress(zst, tar);
    for (std::string tail : {std::string("trailing garbage"), std::string(4, '\0'),
                             std::string(512, '\0'), std::string("\x28\xb5")}) {
      refused_as(zst, bytes + tail, error_code::invalid_archive);
      refused_as(zst, bytes + tail, error_code::invalid_archive, 3);
    }
    auto e = refused_as(zst, bytes + "garbage", error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("after the end of the zstd stream"));
  }
}

TEST_CASE("the decompressed size limit stops the decoding", "[compressed_stream]") {
  auto f = GENERATE(gz, zst);

  SECTION("exactly the limit is accepted, one byte less is not") {
    std::string tar = sample_tar();
    auto bytes = test::compress(f, tar);
    CHECK_FALSE(decode(f, bytes, 4096, tar.size()).refused);
    auto d = decode(f, bytes, 4096, tar.size() - 1);
    CHECK(d.refused.code == error_code::archive_bomb);
    CHECK_THAT(d.refused.message, Contains(std::to_string(tar.size() - 1)));
  }
  SECTION("a bomb is refused early, without inflating it to the end") {
    test::compressor c(f, 9);
    c.add_zeros(64ull << 20);
    std::string bytes = c.finish();
    auto d = decode(f, bytes, std::max<std::size_t>(1, bytes.size() / 64), 1 << 20);
    CHECK(d.refused.code == error_code::archive_bomb);
    CHECK(d.while_pushing);
    INFO("compressed " << bytes.size() << ", pushed " << d.pushed);
    CHECK(d.pushed < bytes.size() / 4);
    CHECK(d.output.size() <= (1 << 20));
  }
}

TEST_CASE("the receiver can stop the decoding", "[compressed_stream]") {
  auto f = GENERATE(gz, zst);
  std::string bytes = test::compress(f, sample_tar());
  compressed_stream s(f, 1 << 30);
  int calls = 0;
  auto stop = [&](const unsigned char*, std::size_t) {
    ++calls;
    return false;
  };
  CHECK_FALSE(s.push(bytes.data(), bytes.size(), stop));
  CHECK(calls == 1);
  CHECK_FALSE(s.push(bytes.data(), bytes.size(), stop));
  CHECK(calls == 1);
}

#include "storage/archive_check.hpp"
#include "storage/archive_entries.hpp"
#include "tests/unit/archive_corpus.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <unistd.h>

using namespace portal;
using Catch::Matchers::Contains;
using storage::archive_error;
using storage::archive_format;
using storage::archive_summary;
using test::member;

namespace {

constexpr archive_format gz = archive_format::tar_gz;
constexpr archive_format zst = archive_format::tar_zst;

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

std::string text(std::size_t n) {
  std::string s;
  while (s.size() < n)
    s += "All work and no play makes Jack a dull boy. " + std::to_string(s.size()) + "\n";
  s.resize(n);
  return s;
}

archive_summary accepted(const test::check_run& run) {
  if (auto* e = std::get_if<archive_error>(&run.outcome))
    FAIL("refused: " << e->status << " " << e->code << ": " << e->message);
  return std::get<archive_summary>(run.outcome);
}

archive_error refused(const test::check_run& run) {
  if (std::holds_alternative<archive_summary>(run.outcome))
    FAIL("accepted, expected a refusal");
  return std::get<archive_error>(run.outcome);
}

archive_error refused_as(const test::check_run& run, const std::string& code) {
  auto e = refused(run);
  INFO(e.message);
  CHECK(e.code == code);
  CHECK(e.status == (code == "unsupported_media_type" ? 415 : 422));
  return e;
}

test::check_run run(archive_format f, const std::string& bytes, std::size_t chunk = 64 * 1024,
                    storage::archive_limits limits = test::default_limits()) {
  return test::run_check(f, bytes, chunk, limits);
}

// A tar that exercises every accepted entry type.
std::vector<member> sample_members() {
  return {
    {"proj/", '5'},
    {"proj/README.md", '0', text(3000)},
    {"proj/bin/", '5'},
    {"proj/bin/data.bin", '0', random_bytes(100 * 1024, 1)},
    {"proj/empty", '0', ""},
    {"proj/latest", '2', "", "README.md"},
    {"proj/bin/up", '2', "", "../README.md"},
    {"proj/copy", '1', "", "proj/README.md"},
    {"proj/caf\xc3\xa9-\xe2\x82\xac.txt", '0', "utf-8 name", "", true},
  };
}

std::string tar_of(const std::vector<member>& members, bool pad = true) {
  return test::write_tar(members, pad);
}

std::string flip(std::string s, std::size_t at, unsigned char mask = 0x55) {
  s.at(at) = static_cast<char>(static_cast<unsigned char>(s.at(at)) ^ mask);
  return s;
}

struct temp_file {
  std::filesystem::path path;
  explicit temp_file(const std::string& bytes) {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("archive_check_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~temp_file() { std::filesystem::remove(path); }
};

} // namespace

TEST_CASE("a well-formed archive is accepted and counted exactly", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::string tar = tar_of(sample_members());
  std::string bytes = test::compress(f, tar);
  // Independently of the code under test.
  std::string plain = test::decompress(f, bytes);
  REQUIRE(plain == tar);

  auto summary = accepted(run(f, bytes));
  CHECK(summary.entries == 9);
  CHECK(summary.uncompressed_size == plain.size());
  CHECK(plain.size() % 10240 == 0); // the record padding counts too

  SECTION("without record padding") {
    std::string exact = tar_of(sample_members(), false);
    auto s = accepted(run(f, test::compress(f, exact)));
    CHECK(s.uncompressed_size == exact.size());
    CHECK(s.entries == 9);
  }
  SECTION("an empty archive") {
    auto s = accepted(run(f, test::compress(f, test::end_marker())));
    CHECK(s.entries == 0);
    CHECK(s.uncompressed_size == 1024);
  }
}

TEST_CASE("the outcome does not depend on how the stream is cut into chunks", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::vector<member> small = {{"d/", '5'}, {"d/a", '0', text(5000)}, {"d/l", '2', "", "a"}};
  std::string good = test::compress(f, tar_of(small));
  std::string tar_unsafe = tar_of({{"d/a", '0', "x"}, {"../evil", '0', "y"}});
  storage::archive_limits tight = test::default_limits();
  tight.max_uncompressed = 4096;

  struct item {
    const char* what;
    std::string bytes;
    storage::archive_limits limits;
  };
  std::vector<item> corpus = {
    {"valid", good, test::default_limits()},
    {"truncated", good.substr(0, good.size() / 2), test::default_limits()},
    {"unsafe", test::compress(f, tar_unsafe), test::default_limits()},
    {"bomb", good, tight},
    {"no end marker", test::compress(f, test::ustar_header("a", '0', 1) + test::padded("z")),
     test::default_limits()},
    {"corrupt", flip(good, good.size() / 2), test::default_limits()},
  };
  for (const auto& c : corpus) {
    INFO(c.what);
    auto whole = run(f, c.bytes, c.bytes.size() + 1, c.limits);
    for (std::size_t chunk : {std::size_t(1), std::size_t(7), std::size_t(4096)}) {
      INFO("chunk " << chunk);
      auto cut = run(f, c.bytes, chunk, c.limits);
      REQUIRE(whole.outcome.index() == cut.outcome.index());
      if (auto* s = std::get_if<archive_summary>(&whole.outcome)) {
        auto& t = std::get<archive_summary>(cut.outcome);
        CHECK(s->entries == t.entries);
        CHECK(s->uncompressed_size == t.uncompressed_size);
      } else {
        auto& a = std::get<archive_error>(whole.outcome);
        auto& b = std::get<archive_error>(cut.outcome);
        CHECK(a.status == b.status);
        CHECK(a.code == b.code);
      }
    }
  }
}

TEST_CASE("a body that is not the declared compression is 415", "[archive]") {
  std::string tar = tar_of(sample_members());
  std::string gz_bytes = test::compress(gz, tar);
  std::string zst_bytes = test::compress(zst, tar);

  SECTION("zstd declared as gzip, and the reverse, refused in the first chunk") {
    auto a = run(gz, zst_bytes);
    CHECK(a.refused_while_feeding);
    CHECK(a.fed == std::min<std::size_t>(zst_bytes.size(), 64 * 1024));
    CHECK_THAT(refused_as(a, "unsupported_media_type").message,
               Contains("gzip") && Contains("28 b5"));
    auto b = run(zst, gz_bytes);
    CHECK(b.refused_while_feeding);
    CHECK_THAT(refused_as(b, "unsupported_media_type").message,
               Contains("zstd") && Contains("1f 8b"));
  }
  SECTION("an uncompressed tar or text") {
    refused_as(run(gz, tar), "unsupported_media_type");
    refused_as(run(zst, tar), "unsupported_media_type");
    refused_as(run(gz, text(100)), "unsupported_media_type");
  }
  SECTION("magic split across feeds: decided when the deciding byte arrives") {
    // zstd magic with a wrong fourth byte.
    std::string almost = zst_bytes;
    almost[3] = '\x00';
    storage::archive_check c(zst, test::default_limits());
    CHECK_FALSE(c.feed(almost.data(), 1));
    CHECK_FALSE(c.feed(almost.data() + 1, 1));
    CHECK_FALSE(c.feed(almost.data() + 2, 1));
    auto e = c.feed(almost.data() + 3, 1);
    REQUIRE(e);
    CHECK(e->status == 415);
    CHECK(e->code == "unsupported_media_type");

    // gzip's second byte wrong.
    storage::archive_check d(gz, test::default_limits());
    CHECK_FALSE(d.feed("\x1f", 1));
    auto e2 = d.feed("\x8c", 1);
    REQUIRE(e2);
    CHECK(e2->status == 415);
  }
  SECTION("correct magic split across feeds is fine") {
    for (auto f : {gz, zst}) {
      std::string bytes = f == gz ? gz_bytes : zst_bytes;
      storage::archive_check c(f, test::default_limits());
      CHECK_FALSE(c.feed(bytes.data(), 1));
      CHECK_FALSE(c.feed(bytes.data() + 1, 1));
      CHECK_FALSE(c.feed(bytes.data() + 2, 1));
      CHECK_FALSE(c.feed(bytes.data() + 3, bytes.size() - 3));
      auto outcome = c.finish();
      REQUIRE(std::holds_alternative<archive_summary>(outcome));
      CHECK(std::get<archive_summary>(outcome).entries == 9);
    }
  }
  SECTION("an empty or too short body") {
    for (auto f : {gz, zst}) {
      storage::archive_check c(f, test::default_limits());
      auto outcome = c.finish();
      REQUIRE(std::holds_alternative<archive_error>(outcome));
      CHECK(std::get<archive_error>(outcome).status == 415);
    }
    refused_as(run(gz, "\x1f"), "unsupported_media_type");
    refused_as(run(zst, "\x28\xb5\x2f"), "unsupported_media_type");
  }
}

TEST_CASE("truncated compression is invalid_archive", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::string bytes = test::compress(f, tar_of(sample_members()));
  for (std::size_t keep :
       {bytes.size() - 1, bytes.size() - 4, bytes.size() - 8, bytes.size() - 9, bytes.size() / 2,
        std::size_t(100), std::size_t(20), std::size_t(9), std::size_t(5)}) {
    INFO("kept " << keep << " of " << bytes.size());
    refused_as(run(f, bytes.substr(0, keep)), "invalid_archive");
  }
}

TEST_CASE("corrupt compressed data is invalid_archive", "[archive]") {
  std::string tar = tar_of(sample_members());

  SECTION("bytes flipped inside the compressed data") {
    auto f = GENERATE(gz, zst);
    std::string bytes = test::compress(f, tar);
    for (std::size_t at :
         {bytes.size() / 3, bytes.size() / 2, bytes.size() * 3 / 4, std::size_t(30)}) {
      INFO("flipped at " << at << " of " << bytes.size());
      refused_as(run(f, flip(bytes, at)), "invalid_archive");
    }
  }
  SECTION("gzip: damage that still inflates is caught by the CRC-32") {
    // Stored blocks carry the bytes verbatim: flipping one inside a file's
    // content leaves a stream that inflates fine and a tar that parses.
    std::string marker(64, 'Q');
    std::string stored = test::gzip_stored(tar_of({{"f", '0', marker + text(1000)}}));
    auto at = stored.find(marker);
    REQUIRE(at != std::string::npos);
    auto e = refused_as(run(gz, flip(stored, at + 10, 0x01)), "invalid_archive");
    CHECK_THAT(e.message, Contains("CRC"));
  }
  SECTION("gzip: a damaged trailer") {
    std::string bytes = test::compress(gz, tar);
    refused_as(run(gz, flip(bytes, bytes.size() - 6)), "invalid_archive"); // CRC-32
    refused_as(run(gz, flip(bytes, bytes.size() - 2)), "invalid_archive"); // length
  }
  SECTION("gzip: a header libarchive's gzip reader does not accept") {
    std::string bytes = test::compress(gz, tar);
    bytes[3] = '\xe0'; // reserved flag bits
    refused_as(run(gz, bytes), "invalid_archive");
    std::string not_deflate = test::compress(gz, tar);
    not_deflate[2] = '\x07';
    refused_as(run(gz, not_deflate), "invalid_archive");
  }
  SECTION("zstd: a damaged content checksum") {
    std::string bytes = test::compress(zst, tar);
    refused_as(run(zst, flip(bytes, bytes.size() - 1)), "invalid_archive");
  }
}

TEST_CASE("gzip headers with optional fields are accepted", "[archive]") {
  std::string tar = tar_of(sample_members());
  std::string bytes = test::compress(gz, tar);
  // FNAME, as "gzip file.tar" writes it: flag 0x08 and a name after the
  // fixed 10-byte header.
  bytes[3] = '\x08';
  bytes.insert(10, std::string("build-42.tar\0", 13));
  auto s = accepted(run(gz, bytes));
  CHECK(s.uncompressed_size == tar.size());
}

TEST_CASE("a stream that is not tar is invalid_archive", "[archive]") {
  auto f = GENERATE(gz, zst);
  refused_as(run(f, test::compress(f, text(20000))), "invalid_archive");
  refused_as(run(f, test::compress(f, random_bytes(5000, 7))), "invalid_archive");
  refused_as(run(f, test::compress(f, "")), "invalid_archive");
  refused_as(run(f, test::compress(f, "short")), "invalid_archive");
}

TEST_CASE("a bad tar header checksum is invalid_archive", "[archive]") {
  auto f = GENERATE(gz, zst);
  // Header 512 + data 512 per member, unpadded record.
  std::string tar = tar_of({{"a", '0', "first"}, {"b", '0', "second"}, {"c", '0', "third"}}, false);
  REQUIRE(tar.substr(1024, 1) == "b");

  SECTION("in a later header") {
    auto e = refused_as(run(f, test::compress(f, flip(tar, 1024 + 1, 0x01))), "invalid_archive");
    CHECK_THAT(e.message, Contains("checksum"));
  }
  SECTION("in the checksum field itself") {
    std::string bad = tar;
    bad[1024 + 148] = bad[1024 + 148] == '1' ? '2' : '1';
    refused_as(run(f, test::compress(f, bad)), "invalid_archive");
  }
  SECTION("in the first header") {
    refused_as(run(f, test::compress(f, flip(tar, 1, 0x01))), "invalid_archive");
  }
}

TEST_CASE("the end-of-archive marker is required", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::string members = test::ustar_header("a", '0', 5) + test::padded("hello") +
                        test::ustar_header("b", '0', 3) + test::padded("bye");

  SECTION("missing entirely") {
    auto e = refused_as(run(f, test::compress(f, members)), "invalid_archive");
    CHECK_THAT(e.message, Contains("end-of-archive"));
  }
  SECTION("only one zero block") {
    refused_as(run(f, test::compress(f, members + std::string(512, '\0'))), "invalid_archive");
  }
  SECTION("one zero block and a partial one") {
    refused_as(run(f, test::compress(f, members + std::string(900, '\0'))), "invalid_archive");
  }
  SECTION("missing, while the last member's data ends in zero blocks") {
    std::string zeros_at_end = test::ustar_header("z", '0', 4096) + std::string(4096, '\0');
    refused_as(run(f, test::compress(f, zeros_at_end)), "invalid_archive");
  }
  SECTION("present, with zero padding after it") {
    std::string tar = members + test::end_marker() + std::string(7 * 512, '\0');
    auto s = accepted(run(f, test::compress(f, tar)));
    CHECK(s.entries == 2);
    CHECK(s.uncompressed_size == tar.size());
  }
  SECTION("present, with padding that is not a whole block") {
    std::string tar = members + test::end_marker() + std::string(100, '\0');
    CHECK(accepted(run(f, test::compress(f, tar))).uncompressed_size == tar.size());
  }
  SECTION("non-zero data after it") {
    auto e = refused_as(run(f, test::compress(f, members + test::end_marker() + "garbage")),
                        "invalid_archive");
    CHECK_THAT(e.message, Contains("after the end-of-archive marker"));
    // Far behind the marker, after zero padding.
    refused_as(run(f, test::compress(f, members + test::end_marker() + std::string(20000, '\0') +
                                          "x" + std::string(511, '\0'))),
               "invalid_archive");
  }
  SECTION("a second archive appended (tar -i would extract it unchecked)") {
    std::string second = tar_of({{"../escape", '0', "x"}});
    refused_as(run(f, test::compress(f, members + test::end_marker() + second)), "invalid_archive");
    std::string benign = tar_of({{"c", '0', "x"}});
    refused_as(run(f, test::compress(f, tar_of({{"a", '0', "y"}}) + benign)), "invalid_archive");
  }
  SECTION("a pax global header after the last member") {
    std::string tar =
      members + test::pax_header({{"comment", "built by ci"}}, 'g') + test::end_marker();
    CHECK(accepted(run(f, test::compress(f, tar))).entries == 2);
    refused_as(run(f, test::compress(f, members + test::pax_header({{"comment", "x"}}, 'g'))),
               "invalid_archive");
  }
}

TEST_CASE("data after the end of the compressed stream", "[archive]") {
  std::string tar = tar_of(sample_members());

  SECTION("garbage is refused") {
    auto f = GENERATE(gz, zst);
    std::string bytes = test::compress(f, tar);
    refused_as(run(f, bytes + "trailing garbage"), "invalid_archive");
    refused_as(run(f, bytes + std::string(4, '\0')), "invalid_archive");
    refused_as(run(f, bytes + "\x1f\x8b"), "invalid_archive");
    // Fed separately, after the stream has ended.
    storage::archive_check c(f, test::default_limits());
    REQUIRE_FALSE(c.feed(bytes.data(), bytes.size()));
    auto late = c.feed("x", 1);
    auto outcome = c.finish();
    REQUIRE(std::holds_alternative<archive_error>(outcome));
    CHECK(std::get<archive_error>(outcome).code == "invalid_archive");
    if (late)
      CHECK(late->code == "invalid_archive");
  }
  SECTION("several gzip members or zstd frames are one stream") {
    auto f = GENERATE(gz, zst);
    std::size_t cut = tar.size() / 3 + 17;
    std::string bytes = test::compress(f, tar.substr(0, cut)) + test::compress(f, tar.substr(cut));
    REQUIRE(test::decompress(f, bytes) == tar);
    auto s = accepted(run(f, bytes));
    CHECK(s.uncompressed_size == tar.size());
    CHECK(s.entries == 9);
  }
}

namespace {

struct unsafe_case {
  const char* what;
  std::vector<member> members;
  std::string named; // expected in the message
};

std::vector<unsafe_case> unsafe_cases() {
  return {
    {"absolute path", {{"/etc/passwd", '0', "x"}}, "\"/etc/passwd\""},
    {"absolute dir", {{"/tmp/", '5'}}, "/tmp"},
    {"leading ..", {{"../x", '0', "x"}}, "\"../x\""},
    {".. inside the root", {{"a/", '5'}, {"a/../b", '0', "x"}}, "\"a/../b\""},
    {"trailing ..", {{"a/..", '5'}}, "\"a/.."},
    {"0x01",
     {{"a\x01"
       "b",
       '0', "x"}},
     "\"a\\x01b\""},
    {"0x1f", {{"a\x1f", '0', "x"}}, "\"a\\x1f\""},
    {"0x7f", {{"del\x7f", '0', "x"}}, "\"del\\x7f\""},
    {"newline", {{"line\nbreak", '0', "x"}}, "\"line\\nbreak\""},
    {"tab", {{"t\tab", '0', "x"}}, "\"t\\tab\""},
    {"char device", {{"dev/null", '3'}}, "character device"},
    {"block device", {{"dev/sda", '4'}}, "block device"},
    {"FIFO", {{"pipe", '6'}}, "FIFO"},
    {"absolute symlink target", {{"l", '2', "", "/etc"}}, "\"l\""},
    {"symlink escaping", {{"a/", '5'}, {"a/link", '2', "", "../../x"}}, "\"a/link\""},
    {"symlink to the parent of the root", {{"up", '2', "", ".."}}, "\"up\""},
    {"symlink escaping after descending", {{"s", '2', "", "a/b/../../../x"}}, "\"s\""},
    {"symlink with a control character", {{"s", '2', "", "a\nb"}}, "\"s\""},
    {"hardlink absolute", {{"h", '1', "", "/etc/passwd"}}, "\"h\""},
    {"hardlink ..", {{"h", '1', "", "../x"}}, "\"h\""},
    {"hardlink .. inside", {{"a/", '5'}, {"b", '0', "x"}, {"h", '1', "", "a/../b"}}, "\"h\""},
    {"path through a symlink", {{"a", '2', "", "."}, {"a/a/b", '2', "", "../../.."}}, "\"a/a/b\""},
    {"file through a symlink", {{"d", '2', "", "sub"}, {"d/f", '0', "x"}}, "\"d/f\""},
    {"symlink chain escaping",
     {{"d/", '5'}, {"d/l", '2', "", "."}, {"d/s", '2', "", "l/../.."}},
     "\"d/s\""},
    {"symlink chain escaping, link defined later",
     {{"d/", '5'}, {"d/s", '2', "", "l/../.."}, {"d/l", '2', "", "."}},
     "\"d/s\""},
    {"directory entry over a symlink (tar keeps the symlink)",
     {{"l", '2', "", "."}, {"l/", '5'}, {"l/l/l/s", '2', "", "../../.."}},
     "\"l/l/l/s\""},
    {"symlink loop", {{"a", '2', "", "b/x"}, {"b", '2', "", "a/x"}}, "symlink loop"},
  };
}

} // namespace

TEST_CASE("unsafe entries are refused and named", "[archive]") {
  for (const auto& c : unsafe_cases()) {
    for (auto f : {gz, zst}) {
      INFO(c.what << " (" << storage::to_string(f) << ")");
      auto e = refused_as(run(f, test::compress(f, tar_of(c.members))), "unsafe_entry");
      CHECK_THAT(e.message, Contains(c.named));
    }
  }
}

TEST_CASE("names from pax headers are checked", "[archive]") {
  auto f = GENERATE(gz, zst);
  auto with_pax = [](const std::string& key, const std::string& value, char type = '0') {
    return test::pax_header({{key, value}}) + test::ustar_header("harmless", type, 0) +
           test::end_marker();
  };
  auto e = refused_as(run(f, test::compress(f, with_pax("path", "ok\x01name"))), "unsafe_entry");
  CHECK_THAT(e.message, Contains("ok\\x01name"));
  refused_as(run(f, test::compress(f, with_pax("path", "/abs/name"))), "unsafe_entry");
  refused_as(run(f, test::compress(f, with_pax("path", "x/../../y"))), "unsafe_entry");
  refused_as(run(f, test::compress(f, with_pax("linkpath", "/etc/shadow", '2'))), "unsafe_entry");
  refused_as(run(f, test::compress(f, with_pax("linkpath", "../../x", '1'))), "unsafe_entry");
  // UTF-8 names do not convert to the C locale; libarchive warns and keeps
  // the bytes, which are checked as they are.
  CHECK(accepted(run(f, test::compress(f, with_pax("path", "caf\xc3\xa9")))).entries == 1);
  CHECK(accepted(run(f, test::compress(f, with_pax("path", "raw\xff\xfe")))).entries == 1);
  refused_as(run(f, test::compress(f, with_pax("path", "caf\xc3\xa9/\x7f"))), "unsafe_entry");
  // A malformed pax record: libarchive would fall back to the ustar name,
  // another extractor might not.
  std::string malformed = test::ustar_header("PaxHeader/x", 'x', 12) +
                          test::padded("99 path=zz\n") + test::ustar_header("harmless", '0', 0) +
                          test::end_marker();
  refused_as(run(f, test::compress(f, malformed)), "invalid_archive");
}

TEST_CASE("safe names and links are accepted", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::vector<member> members = {
    {"./a/./b/", '5'},
    {"a/f", '0', "data"},
    {"b", '0', "b"},
    {"a/l", '2', "", "../b"},     // stays inside: resolves to "b"
    {"a/b/up", '2', "", "../.."}, // the root itself
    {"here", '2', "", "."},
    {"dangling", '2', "", "does/not/exist"}, // inside, even if missing
    {"h", '1', "", "a/f"},
    {"usr/lib/", '5'},
    {"usr/lib/x.so.1", '0', "elf"},
    {"lib", '2', "", "usr/lib"},
    {"usr/bin/", '5'},
    {"usr/bin/x", '2', "", "../../lib/x.so.1"}, // through the "lib" symlink, inside
    {"n\xc3\xa4me with spaces", '0', "", "", true},
    {"dots...", '0', "x"},
    {"..hidden", '0', "x"},
    {"l2", '2', "", "b"},
    {"l2", '2', "", "a/f"}, // replaced
    {"deep/er/", '5'},
    {"deep/er/l", '2', "", "../../lib/../usr/lib/x.so.1"},
  };
  CHECK(accepted(run(f, test::compress(f, tar_of(members)))).entries == members.size());
}

TEST_CASE("the entry limit counts every member", "[archive]") {
  auto f = GENERATE(gz, zst);
  storage::archive_limits limits = test::default_limits();
  limits.max_entries = 10;
  std::vector<member> members = {{"d/", '5'}, {"d/l", '2', "", "f0"}, {"d/h", '1', "", "d/f0"}};
  for (int i = 0; members.size() < 10; ++i)
    members.push_back({"d/f" + std::to_string(i), '0', "x"});
  members[2].link = "d/f0";
  std::swap(members[1], members[3]); // the hardlink's target first
  std::swap(members[2], members[3]);

  CHECK(accepted(run(f, test::compress(f, tar_of(members)), 4096, limits)).entries == 10);
  members.push_back({"one-more", '5'});
  auto e = refused_as(run(f, test::compress(f, tar_of(members)), 4096, limits), "archive_bomb");
  CHECK_THAT(e.message, Contains("10"));
}

TEST_CASE("the decompressed size limit", "[archive]") {
  auto f = GENERATE(gz, zst);

  SECTION("exactly the limit is accepted, one byte less is not") {
    std::string tar = tar_of(sample_members());
    storage::archive_limits limits = test::default_limits();
    limits.max_uncompressed = tar.size();
    auto bytes = test::compress(f, tar);
    CHECK(accepted(run(f, bytes, 4096, limits)).uncompressed_size == tar.size());
    limits.max_uncompressed = tar.size() - 1;
    refused_as(run(f, bytes, 4096, limits), "archive_bomb");
  }
  SECTION("a bomb is refused early, without inflating it to the end") {
    // A 64 MiB file of zeros compresses ~1000:1 (gzip) or far more (zstd).
    constexpr uint64_t file_size = 64ull << 20;
    test::compressor c(f, 9);
    c.add(test::ustar_header("zeros", '0', file_size));
    c.add_zeros(file_size + 1024);
    std::string bytes = c.finish();
    storage::archive_limits limits = test::default_limits();
    limits.max_uncompressed = 1 << 20;
    std::size_t chunk = std::max<std::size_t>(1, bytes.size() / 64);
    auto result = run(f, bytes, chunk, limits);
    auto e = refused_as(result, "archive_bomb");
    CHECK(result.refused_while_feeding);
    INFO("compressed " << bytes.size() << ", fed " << result.fed);
    CHECK(result.fed < bytes.size() / 4);
    CHECK_THAT(e.message, Contains("1048576"));
  }
}

TEST_CASE("after a refusal, feed and finish repeat it", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::string bytes = test::compress(f, tar_of({{"../x", '0', "x"}}));
  storage::archive_check c(f, test::default_limits());
  auto first = c.feed(bytes.data(), bytes.size());
  if (!first) {
    auto outcome = c.finish();
    REQUIRE(std::holds_alternative<archive_error>(outcome));
    first = std::get<archive_error>(outcome);
  }
  CHECK(first->code == "unsafe_entry");
  auto again = c.feed(bytes.data(), bytes.size());
  REQUIRE(again);
  CHECK(again->message == first->message);
  auto outcome = c.finish();
  REQUIRE(std::holds_alternative<archive_error>(outcome));
  CHECK(std::get<archive_error>(outcome).message == first->message);
}

TEST_CASE("finish is idempotent on success", "[archive]") {
  std::string bytes = test::compress(gz, tar_of(sample_members()));
  storage::archive_check c(gz, test::default_limits());
  REQUIRE_FALSE(c.feed(bytes.data(), bytes.size()));
  auto a = c.finish();
  auto b = c.finish();
  REQUIRE(std::holds_alternative<archive_summary>(a));
  REQUIRE(std::holds_alternative<archive_summary>(b));
  CHECK(std::get<archive_summary>(a).entries == std::get<archive_summary>(b).entries);
}

TEST_CASE("destroying a check at any point is clean", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::string bytes = test::compress(f, tar_of(sample_members()));
  { storage::archive_check never_fed(f, test::default_limits()); }
  {
    storage::archive_check magic_only(f, test::default_limits());
    REQUIRE_FALSE(magic_only.feed(bytes.data(), 2));
  }
  for (std::size_t cut : {std::size_t(4), std::size_t(11), bytes.size() / 3, bytes.size() - 1}) {
    storage::archive_check mid(f, test::default_limits());
    REQUIRE_FALSE(mid.feed(bytes.data(), cut));
  }
  {
    storage::archive_check fed_all(f, test::default_limits());
    REQUIRE_FALSE(fed_all.feed(bytes.data(), bytes.size()));
  }
  {
    storage::archive_check refused(f, test::default_limits());
    std::string bad = test::compress(f, tar_of({{"/abs", '0', "x"}}));
    refused.feed(bad.data(), bad.size());
    refused.finish();
  }
  SUCCEED("no crash; the sanitizer build checks for leaks");
}

TEST_CASE("many checks run interleaved on one thread", "[archive]") {
  std::vector<std::unique_ptr<storage::archive_check>> checks;
  std::vector<std::string> streams;
  for (int i = 0; i < 64; ++i) {
    auto f = i % 2 ? gz : zst;
    checks.push_back(std::make_unique<storage::archive_check>(f, test::default_limits()));
    auto members = sample_members();
    members.push_back({"n" + std::to_string(i), '0', random_bytes(i * 100, i)});
    if (i % 3 == 0)
      members.push_back({"../bad" + std::to_string(i), '0', "x"});
    streams.push_back(test::compress(f, tar_of(members)));
  }
  constexpr std::size_t chunk = 1000;
  std::vector<std::optional<archive_error>> refusals(checks.size());
  for (std::size_t at = 0;; at += chunk) {
    bool any = false;
    for (std::size_t i = 0; i < checks.size(); ++i) {
      if (at >= streams[i].size() || refusals[i])
        continue;
      any = true;
      refusals[i] =
        checks[i]->feed(streams[i].data() + at, std::min(chunk, streams[i].size() - at));
    }
    if (!any)
      break;
  }
  for (std::size_t i = 0; i < checks.size(); ++i) {
    INFO("check " << i);
    auto outcome = checks[i]->finish();
    if (i % 3 == 0) {
      REQUIRE(std::holds_alternative<archive_error>(outcome));
      CHECK_THAT(std::get<archive_error>(outcome).message, Contains("../bad" + std::to_string(i)));
    } else {
      REQUIRE(std::holds_alternative<archive_summary>(outcome));
      CHECK(std::get<archive_summary>(outcome).entries == 10);
    }
  }
}

TEST_CASE("list_entries reads a stored archive", "[archive]") {
  auto f = GENERATE(gz, zst);
  temp_file file(test::compress(f, tar_of(sample_members())));
  auto entries = storage::list_entries(file.path, f, 1000);
  REQUIRE(entries.size() == 9);
  CHECK(entries[0].path == "proj/");
  CHECK(entries[0].type == "dir");
  CHECK(entries[1].path == "proj/README.md");
  CHECK(entries[1].type == "file");
  CHECK(entries[1].size == 3000);
  CHECK(entries[3].path == "proj/bin/data.bin");
  CHECK(entries[3].size == 100 * 1024);
  CHECK(entries[4].type == "file");
  CHECK(entries[4].size == 0);
  CHECK(entries[5].path == "proj/latest");
  CHECK(entries[5].type == "symlink");
  CHECK(entries[5].size == 0);
  CHECK(entries[7].path == "proj/copy");
  CHECK(entries[7].type == "hardlink");
  CHECK(entries[8].path == "proj/caf\xc3\xa9-\xe2\x82\xac.txt");

  CHECK_THROWS_AS(storage::list_entries(file.path, f, 8), storage::archive_read_error);
  CHECK_THROWS_AS(storage::list_entries(file.path.string() + ".missing", f, 1000),
                  storage::archive_read_error);
  temp_file damaged(test::compress(f, tar_of(sample_members())).substr(0, 500));
  CHECK_THROWS_AS(storage::list_entries(damaged.path, f, 1000), storage::archive_read_error);
}

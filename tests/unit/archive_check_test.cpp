// The driver: the three units together over real archives, libarchive on its
// fiber, chunking, limits, and the readings of a member that only the raw
// headers show. The units' own cases are in compressed_stream_test.cpp,
// tar_headers_test.cpp and entry_policy_test.cpp.
#include "storage/archive_check.hpp"
#include "tests/unit/archive_corpus.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <random>

using namespace portal;
using Catch::Matchers::Contains;
using storage::archive_summary;
using test::member;
using test::random_bytes;
using test::text;

namespace {

using test::gz;
using test::zst;

archive_summary accepted(const test::check_run& run) {
  if (auto* e = std::get_if<failure>(&run.outcome))
    FAIL("refused: " << to_string(e->code) << ": " << e->message);
  return std::get<archive_summary>(run.outcome);
}

failure refused_as(const test::check_run& run, error_code code) {
  if (std::holds_alternative<archive_summary>(run.outcome))
    FAIL("accepted, expected " << to_string(code));
  auto e = std::get<failure>(run.outcome);
  INFO(e.message);
  CHECK(to_string(e.code) == to_string(code));
  return e;
}

test::check_run run(storage::archive_format f, const std::string& bytes,
                    std::size_t chunk = 64 * 1024,
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
  SECTION("gzip NUL padding and zstd skippable frames do not count") {
    std::string padded_gz = test::compress(gz, tar) + std::string(512, '\0');
    CHECK(accepted(run(gz, padded_gz)).uncompressed_size == tar.size());
    std::string pzstd_like = test::zstd_skippable("\x10\x00\x00\x00") + test::compress(zst, tar);
    CHECK(accepted(run(zst, pzstd_like, 3)).uncompressed_size == tar.size());
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
    {"corrupt", test::flip(good, good.size() / 2), test::default_limits()},
    {"conflicting names",
     test::compress(f, test::gnu_long('L', "../x") + test::ustar_header("a", '0', 0) +
                         test::end_marker()),
     test::default_limits()},
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
        CHECK(std::get<failure>(whole.outcome).code == std::get<failure>(cut.outcome).code);
      }
    }
  }
}

TEST_CASE("each unit's refusals come through the driver", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::string tar = tar_of(sample_members());
  std::string bytes = test::compress(f, tar);
  auto other = f == gz ? zst : gz;

  auto wrong = run(f, test::compress(other, tar));
  CHECK(wrong.refused_while_feeding);
  refused_as(wrong, error_code::unsupported_media_type);
  refused_as(run(f, bytes.substr(0, bytes.size() / 2)), error_code::invalid_archive);
  refused_as(run(f, bytes + "trailing garbage"), error_code::invalid_archive);
  refused_as(run(f, test::compress(f, tar_of({{"../x", '0', "x"}}))), error_code::unsafe_entry);
  refused_as(run(f, test::compress(f, test::ustar_header("s", '2', 512, "t") +
                                        std::string(512, 'A') + test::end_marker())),
             error_code::invalid_archive);
  // Fed separately, after the stream has ended.
  storage::archive_check c(f, test::default_limits());
  REQUIRE_FALSE(c.feed(bytes.data(), bytes.size()));
  auto late = c.feed("x", 1);
  CHECK(late.code == error_code::invalid_archive);
  auto outcome = c.finish();
  REQUIRE(std::holds_alternative<failure>(outcome));
  CHECK(std::get<failure>(outcome).code == error_code::invalid_archive);
}

TEST_CASE("a stream that is not tar is invalid_archive", "[archive]") {
  auto f = GENERATE(gz, zst);
  refused_as(run(f, test::compress(f, text(20000))), error_code::invalid_archive);
  refused_as(run(f, test::compress(f, random_bytes(5000, 7))), error_code::invalid_archive);
  refused_as(run(f, test::compress(f, "")), error_code::invalid_archive);
  refused_as(run(f, test::compress(f, "short")), error_code::invalid_archive);
}

TEST_CASE("a bad tar header checksum is invalid_archive", "[archive]") {
  auto f = GENERATE(gz, zst);
  // Header 512 + data 512 per member, unpadded record.
  std::string tar = tar_of({{"a", '0', "first"}, {"b", '0', "second"}, {"c", '0', "third"}}, false);
  REQUIRE(tar.substr(1024, 1) == "b");

  SECTION("in a later header") {
    auto e = refused_as(run(f, test::compress(f, test::flip(tar, 1024 + 1, 0x01))),
                        error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("checksum"));
  }
  SECTION("in the checksum field itself") {
    std::string bad = tar;
    bad[1024 + 148] = bad[1024 + 148] == '1' ? '2' : '1';
    refused_as(run(f, test::compress(f, bad)), error_code::invalid_archive);
  }
  SECTION("in the first header") {
    refused_as(run(f, test::compress(f, test::flip(tar, 1, 0x01))), error_code::invalid_archive);
  }
}

TEST_CASE("the end-of-archive marker is required", "[archive]") {
  auto f = GENERATE(gz, zst);
  std::string members = test::ustar_header("a", '0', 5) + test::padded("hello") +
                        test::ustar_header("b", '0', 3) + test::padded("bye");

  SECTION("missing entirely") {
    auto e = refused_as(run(f, test::compress(f, members)), error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("end-of-archive"));
  }
  SECTION("only one zero block, or one and a part") {
    refused_as(run(f, test::compress(f, members + std::string(512, '\0'))),
               error_code::invalid_archive);
    refused_as(run(f, test::compress(f, members + std::string(900, '\0'))),
               error_code::invalid_archive);
  }
  SECTION("present, with zero padding after it") {
    std::string tar = members + test::end_marker() + std::string(7 * 512 + 100, '\0');
    auto s = accepted(run(f, test::compress(f, tar)));
    CHECK(s.entries == 2);
    CHECK(s.uncompressed_size == tar.size());
  }
  SECTION("non-zero data after it") {
    auto e = refused_as(run(f, test::compress(f, members + test::end_marker() + "garbage")),
                        error_code::invalid_archive);
    CHECK_THAT(e.message, Contains("after the end-of-archive marker"));
  }
  SECTION("a second archive appended (tar -i would extract it unchecked)") {
    std::string second = tar_of({{"../escape", '0', "x"}});
    refused_as(run(f, test::compress(f, members + test::end_marker() + second)),
               error_code::invalid_archive);
  }
  SECTION("a pax global header after the last member") {
    std::string tar =
      members + test::pax_header({{"comment", "built by ci"}}, 'g') + test::end_marker();
    CHECK(accepted(run(f, test::compress(f, tar))).entries == 2);
    refused_as(run(f, test::compress(f, members + test::pax_header({{"comment", "x"}}, 'g'))),
               error_code::invalid_archive);
  }
}

TEST_CASE("unsafe entries in real archives are refused and named", "[archive]") {
  struct unsafe_case {
    const char* what;
    std::vector<member> members;
    std::string named;
  };
  std::vector<unsafe_case> cases = {
    {"absolute path", {{"/etc/passwd", '0', "x"}}, "\"/etc/passwd\""},
    {"leading ..", {{"../x", '0', "x"}}, "\"../x\""},
    {"newline", {{"line\nbreak", '0', "x"}}, "\"line\\nbreak\""},
    {"char device", {{"dev/null", '3'}}, "character device"},
    {"block device", {{"dev/sda", '4'}}, "block device"},
    {"FIFO", {{"pipe", '6'}}, "FIFO"},
    {"absolute symlink target", {{"l", '2', "", "/etc"}}, "\"l\""},
    {"symlink escaping", {{"a/", '5'}, {"a/link", '2', "", "../../x"}}, "\"a/link\""},
    {"hardlink ..", {{"h", '1', "", "../x"}}, "\"h\""},
    {"file through a symlink", {{"d", '2', "", "sub"}, {"d/f", '0', "x"}}, "\"d/f\""},
    {"symlink chain escaping",
     {{"d/", '5'}, {"d/l", '2', "", "."}, {"d/s", '2', "", "l/../.."}},
     "\"d/s\""},
    {"hardlink to a symlink (the issue's example)",
     {{"a/", '5'}, {"a/b/", '5'}, {"a/b/s", '2', "", "../../x.txt"}, {"h", '1', "", "a/b/s"}},
     "\"h\""},
    {"a path through a hardlink to a symlink",
     {{"a/", '5'},
      {"a/b/", '5'},
      {"a/b/s", '2', "", "../../x.txt"},
      {"c/", '5'},
      {"c/d/", '5'},
      {"c/d/h", '1', "", "a/b/s"},
      {"c/d/h/evil.txt", '0', "x"}},
     "\"c/d/h/evil.txt\""},
  };
  for (const auto& c : cases) {
    for (auto f : {gz, zst}) {
      INFO(c.what << " (" << storage::to_string(f) << ")");
      auto e = refused_as(run(f, test::compress(f, tar_of(c.members))), error_code::unsafe_entry);
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
  auto e =
    refused_as(run(f, test::compress(f, with_pax("path", "ok\x01name"))), error_code::unsafe_entry);
  CHECK_THAT(e.message, Contains("ok\\x01name"));
  refused_as(run(f, test::compress(f, with_pax("path", "/abs/name"))), error_code::unsafe_entry);
  refused_as(run(f, test::compress(f, with_pax("path", "x/../../y"))), error_code::unsafe_entry);
  refused_as(run(f, test::compress(f, with_pax("linkpath", "/etc/shadow", '2'))),
             error_code::unsafe_entry);
  refused_as(run(f, test::compress(f, with_pax("linkpath", "../../x", '1'))),
             error_code::unsafe_entry);
  // UTF-8 names do not convert to the C locale; libarchive warns and keeps
  // the bytes, which are checked as they are.
  CHECK(accepted(run(f, test::compress(f, with_pax("path", "caf\xc3\xa9")))).entries == 1);
  CHECK(accepted(run(f, test::compress(f, with_pax("path", "raw\xff\xfe")))).entries == 1);
  refused_as(run(f, test::compress(f, with_pax("path", "caf\xc3\xa9/\x7f"))),
             error_code::unsafe_entry);
  // A malformed pax record: libarchive would fall back to the ustar name,
  // another extractor might not.
  std::string malformed = test::ustar_header("PaxHeader/x", 'x', 12) +
                          test::padded("99 path=zz\n") + test::ustar_header("harmless", '0', 0) +
                          test::end_marker();
  refused_as(run(f, test::compress(f, malformed)), error_code::invalid_archive);
}

namespace {

// One place a tar header can carry a member's name (or, for a link, its
// target), written around a final ustar header.
enum class source { ustar, gnu_long, pax, pax_global };

const char* name_of(source s) {
  switch (s) {
  case source::ustar:
    return "ustar";
  case source::gnu_long:
    return "GNU long";
  case source::pax:
    return "pax";
  case source::pax_global:
    return "pax global";
  }
  return "?";
}

// A member whose name (link = false) or symlink target (link = true) is
// `first` in source a and `second` in source b, the special headers in that
// order; the ustar field holds "ustar-" + the kind when neither is ustar.
std::string member_with(source a, const std::string& first, source b, const std::string& second,
                        bool link) {
  std::string specials;
  std::string ustar_value = link ? "ustar-target" : "ustar-name";
  for (auto [s, value] : {std::pair{a, first}, std::pair{b, second}}) {
    switch (s) {
    case source::ustar:
      ustar_value = value;
      break;
    case source::gnu_long:
      specials += test::gnu_long(link ? 'K' : 'L', value);
      break;
    case source::pax:
      specials += test::pax_header({{link ? "linkpath" : "path", value}});
      break;
    case source::pax_global:
      specials += test::pax_header({{link ? "linkpath" : "path", value}}, 'g');
      break;
    }
  }
  if (link)
    return specials + test::ustar_header("dir/s", '2', 0, ustar_value);
  return specials + test::ustar_header(ustar_value, '0', 0);
}

} // namespace

TEST_CASE("a member whose safety depends on which header a reader believes is refused",
          "[archive]") {
  // Every pairing of sources, in both orders and both ways round: one says
  // something safe, the other something unsafe.
  const source all[] = {source::ustar, source::gnu_long, source::pax, source::pax_global};
  auto f = GENERATE(gz, zst);
  for (bool link : {false, true}) {
    std::string safe = link ? "inside" : "fine/name";
    std::string unsafe = link ? "../../outside" : "../evil";
    for (auto a : all) {
      for (auto b : all) {
        if (a == b)
          continue;
        INFO((link ? "link target: " : "name: ") << name_of(a) << " then " << name_of(b));
        std::string prefix = link ? test::ustar_header("dir/", '5', 0) : "";
        for (auto [x, y] : {std::pair{safe, unsafe}, std::pair{unsafe, safe}}) {
          INFO(name_of(a) << " says " << x << ", " << name_of(b) << " says " << y);
          auto tar = prefix + member_with(a, x, b, y, link) + test::end_marker();
          auto e = refused_as(run(f, test::compress(f, tar)), error_code::unsafe_entry);
          CHECK_THAT(e.message, Contains(unsafe));
        }
        // Both safe, though different: each reading is fine.
        auto tar = prefix + member_with(a, safe, b, safe + "2", link) + test::end_marker();
        CHECK(accepted(run(f, test::compress(f, tar))).entries == (link ? 2 : 1));
      }
    }
  }
}

TEST_CASE("a later member is judged through every reading of an earlier one", "[archive]") {
  auto f = GENERATE(gz, zst);
  // libarchive takes the GNU long name "a", GNU tar the pax path "b": "b" is
  // the symlink for GNU tar, so "b/x" goes through it.
  std::string tar = test::gnu_long('L', "a") + test::pax_header({{"path", "b"}}) +
                    test::ustar_header("c", '2', 0, "sub") + test::ustar_header("b/x", '0', 0) +
                    test::end_marker();
  auto e = refused_as(run(f, test::compress(f, tar)), error_code::unsafe_entry);
  CHECK_THAT(e.message, Contains("\"b/x\""));
  // And a pax global path renames every later member for GNU tar.
  std::string global = test::ustar_header("d", '2', 0, "sub") +
                       test::pax_header({{"path", "d/x"}}, 'g') +
                       test::ustar_header("harmless", '0', 0) + test::end_marker();
  refused_as(run(f, test::compress(f, global)), error_code::unsafe_entry);
}

TEST_CASE("the entry limit counts every member", "[archive]") {
  auto f = GENERATE(gz, zst);
  storage::archive_limits limits = test::default_limits();
  limits.max_entries = 10;
  std::vector<member> members = {
    {"d/", '5'}, {"d/f0", '0', "x"}, {"d/l", '2', "", "f0"}, {"d/h", '1', "", "d/f0"}};
  for (int i = 1; members.size() < 10; ++i)
    members.push_back({"d/f" + std::to_string(i), '0', "x"});

  CHECK(accepted(run(f, test::compress(f, tar_of(members)), 4096, limits)).entries == 10);
  members.push_back({"one-more", '5'});
  auto e =
    refused_as(run(f, test::compress(f, tar_of(members)), 4096, limits), error_code::archive_bomb);
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
    refused_as(run(f, bytes, 4096, limits), error_code::archive_bomb);
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
    auto e = refused_as(result, error_code::archive_bomb);
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
    REQUIRE(std::holds_alternative<failure>(outcome));
    first = std::get<failure>(outcome);
  }
  CHECK(first.code == error_code::unsafe_entry);
  auto again = c.feed(bytes.data(), bytes.size());
  CHECK(again.message == first.message);
  auto outcome = c.finish();
  REQUIRE(std::holds_alternative<failure>(outcome));
  CHECK(std::get<failure>(outcome).message == first.message);
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
  std::vector<failure> refusals(checks.size());
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
      REQUIRE(std::holds_alternative<failure>(outcome));
      CHECK_THAT(std::get<failure>(outcome).message, Contains("../bad" + std::to_string(i)));
    } else {
      REQUIRE(std::holds_alternative<archive_summary>(outcome));
      CHECK(std::get<archive_summary>(outcome).entries == 10);
    }
  }
}

#include "storage/tar_headers.hpp"
#include "tests/unit/archive_corpus.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>

using namespace portal;
using Catch::Matchers::Contains;
using storage::member_headers;
using storage::tar_headers;
using test::end_marker;
using test::gnu_long;
using test::padded;
using test::pax_header;
using test::ustar_header;

namespace {

struct scanned {
  failure refused; // from scan() or finish()
  std::vector<member_headers> members;
  std::optional<uint64_t> end;
};

// Scans `tar` in chunks of `chunk` bytes, then takes every member read in
// order.
scanned scan(const std::string& tar, std::size_t chunk = 512) {
  tar_headers h;
  scanned out;
  for (std::size_t at = 0; at < tar.size() && !out.refused; at += chunk) {
    auto piece = tar.substr(at, chunk);
    out.refused = h.scan(reinterpret_cast<const unsigned char*>(piece.data()), piece.size());
  }
  if (!out.refused)
    out.refused = h.finish();
  out.end = h.end_marker();
  // Positions are not known here: take() them in order, the way the driver
  // does with libarchive's.
  for (uint64_t pos = 0; pos < tar.size(); pos += 512)
    if (auto m = h.take(pos))
      out.members.push_back(std::move(*m));
  return out;
}

// "text (origin)" for each, to compare in one go.
std::vector<std::string> shown(const std::vector<storage::entry_text>& texts) {
  std::vector<std::string> out;
  for (const auto& t : texts)
    out.push_back(t.text + " (" + t.origin + ")");
  return out;
}

using strings = std::vector<std::string>;

} // namespace

TEST_CASE("every name and link source of a member is read", "[tar_headers]") {
  SECTION("ustar name, and prefix with the ustar magic") {
    auto s = scan(ustar_header("name", '0', 0, "", "pre/fix") + ustar_header("plain", '0', 0) +
                  end_marker());
    REQUIRE_FALSE(s.refused);
    REQUIRE(s.members.size() == 2);
    CHECK(shown(s.members[0].names) == strings{"pre/fix/name (ustar name)"});
    CHECK(shown(s.members[1].names) == strings{"plain (ustar name)"});
    CHECK(s.members[1].position == 512);
  }
  SECTION("GNU long name and long link, pax path and linkpath, GNU.sparse.name") {
    std::string tar = gnu_long('L', "long-name") + gnu_long('K', "long-link") +
                      pax_header({{"path", "pax-path"},
                                  {"linkpath", "pax-link"},
                                  {"GNU.sparse.name", "sparse-name"},
                                  {"mtime", "1"}}) +
                      ustar_header("ustar-name", '2', 0, "ustar-link") + end_marker();
    auto s = scan(tar, 100);
    REQUIRE_FALSE(s.refused);
    REQUIRE(s.members.size() == 1);
    CHECK(s.members[0].position == 0);
    CHECK(s.members[0].typeflag == '2');
    CHECK(shown(s.members[0].names) == strings{"ustar-name (ustar name)",
                                               "long-name (GNU long name)", "pax-path (pax path)",
                                               "sparse-name (GNU.sparse.name)"});
    CHECK(shown(s.members[0].links) == strings{"ustar-link (ustar linkname)",
                                               "long-link (GNU long link)",
                                               "pax-link (pax linkpath)"});
  }
  SECTION("the same source twice: both") {
    std::string tar = gnu_long('L', "first") + gnu_long('L', "second") +
                      pax_header({{"path", "p1"}, {"path", "p2"}}) + ustar_header("u", '0', 0) +
                      end_marker();
    auto s = scan(tar);
    REQUIRE(s.members.size() == 1);
    CHECK(shown(s.members[0].names) == strings{"u (ustar name)", "first (GNU long name)",
                                               "second (GNU long name)", "p1 (pax path)",
                                               "p2 (pax path)"});
  }
  SECTION("a pax global header's path and linkpath apply to every later member") {
    std::string tar = ustar_header("before", '0', 0) +
                      pax_header({{"path", "global"}, {"linkpath", "glink"}}, 'g') +
                      ustar_header("a", '0', 0) + ustar_header("b", '2', 0, "t") + end_marker();
    auto s = scan(tar);
    REQUIRE(s.members.size() == 3);
    CHECK(shown(s.members[0].names) == strings{"before (ustar name)"});
    CHECK(s.members[1].position == 512); // the 'g' header is part of the next member
    CHECK(shown(s.members[1].names) == strings{"a (ustar name)", "global (pax global path)"});
    CHECK(shown(s.members[2].names) == strings{"b (ustar name)", "global (pax global path)"});
    CHECK(shown(s.members[2].links) ==
          strings{"t (ustar linkname)", "glink (pax global linkpath)"});
  }
  SECTION("a later pax global record replaces an earlier one; an empty one removes it") {
    std::string tar = pax_header({{"path", "g1"}}, 'g') + ustar_header("a", '0', 0) +
                      pax_header({{"path", "g2"}}, 'g') + ustar_header("b", '0', 0) +
                      pax_header({{"path", ""}}, 'g') + ustar_header("c", '0', 0) + end_marker();
    auto s = scan(tar);
    REQUIRE(s.members.size() == 3);
    CHECK(shown(s.members[0].names) == strings{"a (ustar name)", "g1 (pax global path)"});
    CHECK(shown(s.members[1].names) == strings{"b (ustar name)", "g2 (pax global path)"});
    CHECK(shown(s.members[2].names) == strings{"c (ustar name)"});
  }
  SECTION("an empty ustar field beside another source is no reading") {
    auto s = scan(pax_header({{"path", "p"}, {"linkpath", "l"}}) + ustar_header("", '2', 0) +
                  end_marker());
    REQUIRE(s.members.size() == 1);
    CHECK(shown(s.members[0].names) == strings{"p (pax path)"});
    CHECK(shown(s.members[0].links) == strings{"l (pax linkpath)"});
  }
  SECTION("values stop at a NUL, as tar readers read them") {
    auto s = scan(pax_header({{"path", std::string("a\0b", 3)}}) + ustar_header("u", '0', 0) +
                  end_marker());
    REQUIRE(s.members.size() == 1);
    CHECK(shown(s.members[0].names) == strings{"u (ustar name)", "a (pax path)"});
  }
}

TEST_CASE("the layout: data sizes and where members start", "[tar_headers]") {
  SECTION("file data is passed over, whatever it holds") {
    std::string fake_header = ustar_header("inside-data", '0', 0);
    std::string tar = ustar_header("f", '0', fake_header.size() + 3) + padded(fake_header + "xyz") +
                      ustar_header("g", '0', 0) + end_marker();
    auto s = scan(tar, 7);
    REQUIRE_FALSE(s.refused);
    REQUIRE(s.members.size() == 2);
    CHECK(s.members[1].position == 1536);
  }
  SECTION("a pax size record overrides the header's size") {
    std::string tar = pax_header({{"size", "1000"}}) + ustar_header("big", '0', 0) +
                      padded(std::string(1000, 'z')) + ustar_header("next", '0', 0) + end_marker();
    auto s = scan(tar);
    REQUIRE_FALSE(s.refused);
    REQUIRE(s.members.size() == 2);
    CHECK(s.members[1].position == 1024 + 512 + 1024);
  }
  SECTION("old GNU sparse members with extension blocks") {
    std::string h = ustar_header("sparse", 'S', 512);
    h[482] = 1; // isextended
    // (the checksum does not cover the change: recompute)
    std::memset(&h[148], ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h)
      sum += c;
    std::snprintf(&h[148], 8, "%06o", sum);
    std::string ext(512, '\0');
    ext[504] = 1;
    std::string last(512, '\0');
    std::string tar =
      h + ext + last + std::string(512, 'd') + ustar_header("next", '0', 0) + end_marker();
    auto s = scan(tar);
    REQUIRE_FALSE(s.refused);
    REQUIRE(s.members.size() == 2);
    CHECK(s.members[1].position == 4 * 512);
  }
}

TEST_CASE("layouts tar readers disagree on are invalid_archive", "[tar_headers]") {
  struct layout_case {
    const char* what;
    std::string tar;
    std::string said;
  };
  std::vector<layout_case> cases;
  for (char type : {'1', '2', '3', '4', '5', '6'})
    cases.push_back({"a sized header that carries no data",
                     ustar_header("x", type, 512, "t") + std::string(512, 'A') + end_marker(),
                     std::string("type '") + type + "'"});
  cases.push_back({"a pax size on a symlink",
                   pax_header({{"size", "512"}}) + ustar_header("s", '2', 0, "t") + end_marker(),
                   "type '2'"});
  cases.push_back({"a pax global size",
                   pax_header({{"size", "0"}}, 'g') + ustar_header("a", '0', 0) + end_marker(),
                   "global header with a size"});
  cases.push_back({"pax sizes that disagree",
                   pax_header({{"size", "0"}}) + pax_header({{"size", "512"}}) +
                     ustar_header("a", '0', 0) + end_marker(),
                   "disagree"});
  cases.push_back({"a pax size that is not a number",
                   pax_header({{"size", "0x10"}}) + ustar_header("a", '0', 0) + end_marker(),
                   "not a decimal"});
  cases.push_back({"a Solaris ACL header",
                   ustar_header("acl", 'A', 0) + ustar_header("a", '0', 0) + end_marker(),
                   "Solaris ACL"});
  cases.push_back({"a special header over 1 MiB",
                   ustar_header("././@LongLink", 'L', 2 * 1024 * 1024) + end_marker(), "1 MiB"});
  std::string many;
  for (int i = 0; i < 3; ++i)
    many += gnu_long('L', std::string(400 * 1024, 'n'));
  cases.push_back({"special headers over 1 MiB before one member",
                   many + ustar_header("a", '0', 0) + end_marker(), "1 MiB"});
  for (const auto& c : cases) {
    INFO(c.what);
    auto s = scan(c.tar);
    CHECK(s.refused.code == error_code::invalid_archive);
    CHECK_THAT(s.refused.message, Contains(c.said));
  }
  // Directories, links and devices with size 0, and a pax size on a file,
  // are ordinary.
  auto ok =
    scan(ustar_header("d/", '5', 0) + ustar_header("l", '2', 0, "d") + pax_header({{"size", "3"}}) +
         ustar_header("f", '0', 99) + padded("abc") + end_marker());
  CHECK_FALSE(ok.refused);
  CHECK(ok.members.size() == 3);
}

TEST_CASE("the end-of-archive marker", "[tar_headers]") {
  std::string members = ustar_header("a", '0', 5) + padded("hello") + ustar_header("b", '0', 0);

  SECTION("two zero blocks, then zero padding of any length") {
    for (std::size_t extra : {std::size_t(0), std::size_t(100), std::size_t(7 * 512)}) {
      auto s = scan(members + end_marker() + std::string(extra, '\0'), 300);
      CHECK_FALSE(s.refused);
      CHECK(s.end == members.size());
    }
  }
  SECTION("missing, or shorter than two blocks") {
    for (std::size_t zeros : {std::size_t(0), std::size_t(512), std::size_t(900)}) {
      auto s = scan(members + std::string(zeros, '\0'));
      CHECK(s.refused.code == error_code::invalid_archive);
      CHECK_THAT(s.refused.message, Contains("end-of-archive"));
    }
  }
  SECTION("zero blocks inside a member's data are data") {
    auto s = scan(ustar_header("z", '0', 4096) + std::string(4096, '\0'));
    CHECK(s.refused.code == error_code::invalid_archive);
    CHECK_FALSE(s.end);
  }
  SECTION("anything but zeros after it") {
    for (std::string after : {std::string("garbage"), std::string(20000, '\0') + "x",
                              ustar_header("../second", '0', 0) + end_marker()}) {
      auto s = scan(members + end_marker() + after, 1000);
      CHECK(s.refused.code == error_code::invalid_archive);
      CHECK_THAT(s.refused.message, Contains("after the end-of-archive marker"));
    }
  }
  SECTION("a pax global header as the last header") {
    auto s = scan(members + pax_header({{"comment", "ci"}}, 'g') + end_marker());
    CHECK_FALSE(s.refused);
    CHECK(s.members.size() == 2);
  }
}

TEST_CASE("a header with a bad checksum stops the reading silently", "[tar_headers]") {
  std::string bad = ustar_header("b", '0', 0);
  bad[1] = 'X'; // the checksum no longer matches
  auto s = scan(ustar_header("a", '0', 0) + bad + ustar_header("c", '0', 0));
  CHECK_FALSE(s.refused); // libarchive refuses it with its own message
  CHECK(s.members.size() == 1);
}

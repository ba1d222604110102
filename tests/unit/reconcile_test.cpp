#include "storage/data_dir.hpp"
#include "storage/reconcile.hpp"
#include "temp_data_dir.hpp"
#include "tests/unit/file_text.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <unistd.h>

using namespace portal::storage;
namespace fs = std::filesystem;

using portal::test::read_all;
using portal::test::write_file;

namespace {

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

using names = std::vector<std::string>;

const std::string here = "this-volume";

// Rows that record this volume.
row_volumes ours(std::initializer_list<std::string> ids) {
  row_volumes rows;
  for (const auto& id : ids)
    rows.emplace(id, here);
  return rows;
}

} // namespace

TEST_CASE("reconcile: a clean data dir needs no repair", "[storage]") {
  temp_data_dir d;
  write_file(d.layout.archives / "known1", "one");
  auto r = reconcile(d.layout, ours({"known1"}), here);
  CHECK(r.removed_temp.empty());
  CHECK(r.orphaned.empty());
  CHECK(r.missing_files.empty());
  CHECK(r.failed.empty());
  CHECK(read_all(d.layout.archives / "known1") == "one");
}

TEST_CASE("reconcile: stale temporaries go, other tmp entries stay", "[storage]") {
  temp_data_dir d;
  write_file(d.layout.tmp / "a.part", "partial");
  write_file(d.layout.tmp / "known1.part", "partial of a known id");
  write_file(d.layout.tmp / "notes.txt", "not ours to judge");
  fs::create_directory(d.layout.tmp / "dir.part");
  auto r = reconcile(d.layout, ours({}), here);
  CHECK(sorted(r.removed_temp) == names{"a.part", "known1.part"});
  CHECK(names_in(d.layout.tmp) == names{"dir.part", "notes.txt"});
  CHECK(r.failed.empty());
}

TEST_CASE("reconcile: archives without rows move to orphans intact", "[storage]") {
  temp_data_dir d;
  write_file(d.layout.archives / "known1", "kept");
  write_file(d.layout.archives / "unknown1", "orphan bytes");
  write_file(d.layout.archives / "bad.name", "not an id");
  fs::create_directory(d.layout.archives / "somedir");
  write_file(d.layout.archives / "somedir" / "inner", "inside");
  write_file(d.layout.root / "target", "symlink target");
  fs::create_symlink(d.layout.root / "target", d.layout.archives / "link");

  auto r = reconcile(d.layout, ours({"known1", "missing1"}), here);

  CHECK(sorted(r.orphaned) == names{"bad.name", "link", "somedir", "unknown1"});
  CHECK(r.missing_files == names{"missing1"});
  CHECK(r.failed.empty());
  CHECK(names_in(d.layout.archives) == names{"known1"});
  CHECK(read_all(d.layout.archives / "known1") == "kept");
  CHECK(read_all(d.layout.orphans / "unknown1") == "orphan bytes");
  CHECK(read_all(d.layout.orphans / "bad.name") == "not an id");
  CHECK(read_all(d.layout.orphans / "somedir" / "inner") == "inside");
  // The symlink itself moved; what it pointed to was not touched.
  CHECK(fs::is_symlink(d.layout.orphans / "link"));
  CHECK(read_all(d.layout.root / "target") == "symlink target");
}

TEST_CASE("reconcile: a known id that is not a regular file is missing and moved", "[storage]") {
  temp_data_dir d;
  fs::create_directory(d.layout.archives / "known1");
  write_file(d.layout.archives / "known2", "a file of this volume");
  auto r = reconcile(d.layout, ours({"known1", "known2"}), here);
  CHECK(r.orphaned == names{"known1"});
  CHECK(r.missing_files == names{"known1"});
  CHECK(fs::is_directory(d.layout.orphans / "known1"));
  CHECK(names_in(d.layout.archives) == names{"known2"});
}

TEST_CASE("reconcile: known ids that are not valid ids are only reported", "[storage]") {
  temp_data_dir d;
  write_file(d.layout.archives / "present", "a file of this volume");
  auto r = reconcile(d.layout, ours({"../escape", "ok-id", "present"}), here);
  CHECK(r.missing_files == names{"../escape", "ok-id"});
  CHECK(names_in(d.layout.orphans).empty());
}

TEST_CASE("reconcile: a volume that holds none of its rows' files says so", "[storage]") {
  // volume-id written back by hand to the wrong directory: every row of
  // this id lacks its file here, which says the directory is not that volume.
  temp_data_dir d;
  auto r = reconcile(d.layout, ours({"a", "b"}), here);
  CHECK(r.missing_files == names{"a", "b"});
  CHECK_FALSE(r.holds_any); // the caller deletes none (main.cpp)
}

TEST_CASE("reconcile: a name taken in orphans gets a timestamp suffix", "[storage]") {
  temp_data_dir d;
  write_file(d.layout.orphans / "dup", "first");
  write_file(d.layout.archives / "dup", "second");
  auto r1 = reconcile(d.layout, ours({}), here);
  CHECK(r1.orphaned == names{"dup"});
  write_file(d.layout.archives / "dup", "third");
  auto r2 = reconcile(d.layout, ours({}), here);
  CHECK(r2.orphaned == names{"dup"});
  CHECK(r2.failed.empty());

  auto in_orphans = names_in(d.layout.orphans);
  REQUIRE(in_orphans.size() == 3);
  CHECK(read_all(d.layout.orphans / "dup") == "first");
  std::vector<std::string> contents;
  for (const auto& n : in_orphans) {
    CHECK(n.rfind("dup", 0) == 0);
    if (n != "dup") {
      CAPTURE(n);
      CHECK(n.size() >= std::string("dup.20260101T000000Z").size());
      CHECK(n.back() != '.');
    }
    contents.push_back(read_all(d.layout.orphans / n));
  }
  std::sort(contents.begin(), contents.end());
  CHECK(contents == names{"first", "second", "third"});
  CHECK(names_in(d.layout.archives).empty());
}

TEST_CASE("reconcile: only rows of this volume can be missing; rows of none are claimed",
          "[storage]") {
  temp_data_dir d;
  write_file(d.layout.archives / "mine", "1");
  write_file(d.layout.archives / "legacy-here", "2");
  write_file(d.layout.archives / "theirs-here", "3");
  row_volumes rows{{"mine", here},      {"mine-gone", here},      {"legacy-here", ""},
                   {"legacy-gone", ""}, {"theirs-here", "other"}, {"theirs", "other"}};
  auto r = reconcile(d.layout, rows, here);
  CHECK(r.missing_files == names{"mine-gone"});
  CHECK(r.claimed == names{"legacy-here"});
  CHECK(r.unattributed == names{"legacy-gone"});
  // a file whose row records another volume is not an orphan
  CHECK(r.orphaned.empty());
  CHECK(names_in(d.layout.archives) == names{"legacy-here", "mine", "theirs-here"});
}

TEST_CASE("reconcile: a fresh volume on a database of another volume repairs no row", "[storage]") {
  // The wrong directory (an unmounted volume): nothing here, every row is
  // another volume's or none's, and none of them is judged missing.
  temp_data_dir d;
  auto r =
    reconcile(d.layout, {{"a", "the-real-volume"}, {"b", "the-real-volume"}, {"c", ""}}, here);
  CHECK(r.missing_files.empty());
  CHECK(r.claimed.empty());
  CHECK(r.unattributed == names{"c"});
}

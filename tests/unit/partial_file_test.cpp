// storage/partial_file and storage/partial_reconcile: the tus partial is
// only appended to or cut back, its size after sync() is the offset, and
// start-up keeps partials with rows, removes those without.
#include "storage/partial_file.hpp"
#include "storage/partial_reconcile.hpp"
#include "storage/upload_file.hpp"
#include "temp_data_dir.hpp"
#include "tests/unit/file_text.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

using namespace portal::storage;
namespace fs = std::filesystem;

using portal::test::read_all;

TEST_CASE("partial_file: append, reopen at the synced size, cut back, read") {
  temp_data_dir dir;
  {
    auto file = partial_file::create(dir.layout, "abc");
    CHECK(file.size() == 0);
    file.append("hello ", 6);
    file.append("world", 5);
    file.sync();
    CHECK(file.size() == 11);
  }
  auto file = partial_file::open(dir.layout, "abc");
  CHECK(file.size() == 11);
  char buf[16] = {};
  CHECK(file.read_at(6, buf, sizeof buf) == 5);
  CHECK(std::string(buf, 5) == "world");
  file.cut_to(5);
  CHECK(file.size() == 5);
  CHECK(read_all(dir.layout.partials / "abc.part") == "hello");
  file.append("!", 1);
  CHECK(read_all(dir.layout.partials / "abc.part") == "hello!");
}

TEST_CASE("partial_file: a hold left by a crash cuts the unverified bytes at the next open") {
  temp_data_dir dir;
  auto hold = dir.layout.partials / "abc.hold";
  {
    auto file = partial_file::create(dir.layout, "abc");
    file.append("verified", 8);
    file.hold();
    CHECK(read_all(hold) == "8");
    file.append(" unverified", 11);
    file.sync();
    // the process dies here: no release(), the bytes are in the file
  }
  REQUIRE(fs::file_size(dir.layout.partials / "abc.part") == 19);
  SECTION("open cuts back to the hold and removes it") {
    auto file = partial_file::open(dir.layout, "abc");
    CHECK(file.size() == 8);
    CHECK(read_all(dir.layout.partials / "abc.part") == "verified");
    CHECK_FALSE(fs::exists(hold));
  }
  SECTION("a hold that never got its content cuts nothing") {
    std::ofstream{hold, std::ios::trunc}; // created, then the crash: empty
    auto file = partial_file::open(dir.layout, "abc");
    CHECK(file.size() == 19);
    CHECK_FALSE(fs::exists(hold));
  }
  SECTION("remove_partial takes the hold with it") {
    remove_partial(dir.layout, "abc");
    CHECK_FALSE(fs::exists(dir.layout.partials / "abc.part"));
    CHECK_FALSE(fs::exists(hold));
  }
}

TEST_CASE("partial_file: release keeps the verified bytes, crash or not") {
  temp_data_dir dir;
  {
    auto file = partial_file::create(dir.layout, "abc");
    file.append("first", 5);
    file.hold();
    file.append(" second", 7);
    file.release();
    CHECK_FALSE(fs::exists(dir.layout.partials / "abc.hold"));
    file.hold(); // the next checksummed PATCH, cut back: nothing of it stays
    file.append(" third", 6);
    file.cut_to(12);
    file.release();
  }
  auto file = partial_file::open(dir.layout, "abc");
  CHECK(file.size() == 12);
  CHECK(read_all(dir.layout.partials / "abc.part") == "first second");
  CHECK(partial_ids(dir.layout) == std::vector<std::string>{"abc"});
}

TEST_CASE("partial_file: create is exclusive, open needs the file, ids are checked") {
  temp_data_dir dir;
  partial_file::create(dir.layout, "one");
  CHECK_THROWS_AS(partial_file::create(dir.layout, "one"), storage_error);
  CHECK_THROWS_AS(partial_file::open(dir.layout, "two"), storage_error);
  CHECK_THROWS_AS(partial_file::create(dir.layout, "../x"), storage_error);
}

TEST_CASE("partial_file: commit moves the file into archives/") {
  temp_data_dir dir;
  auto file = partial_file::create(dir.layout, "done");
  file.append("data", 4);
  auto path = file.commit_to_archive(dir.layout);
  CHECK(path == dir.layout.archives / "done");
  CHECK(read_all(path) == "data");
  CHECK_FALSE(fs::exists(dir.layout.partials / "done.part"));
}

TEST_CASE("reconcile_partials: keeps partials with rows, removes the others, reports missing") {
  temp_data_dir dir;
  partial_file::create(dir.layout, "kept").append("abc", 3);
  partial_file::create(dir.layout, "orphan");
  std::ofstream(dir.layout.partials / "not-a-partial.txt") << "left alone";
  partial_file::create(dir.layout, "legacy").append("d", 1);
  partial_file::create(dir.layout, "theirs").append("e", 1);
  row_volumes rows{{"kept", "here"},    {"gone", "here"},        {"legacy", ""},
                   {"legacy-gone", ""}, {"theirs", "elsewhere"}, {"theirs-gone", "elsewhere"}};
  auto report = reconcile_partials(dir.layout, rows, "here");
  using names = std::vector<std::string>;
  std::sort(report.kept.begin(), report.kept.end()); // in directory order
  CHECK(report.kept == names{"kept", "legacy", "theirs"});
  CHECK(report.removed == names{"orphan"});
  CHECK(report.missing == names{"gone"}); // only this volume's rows
  CHECK(report.claimed == names{"legacy"});
  CHECK(report.unattributed == names{"legacy-gone"});
  CHECK(fs::exists(dir.layout.partials / "kept.part"));
  CHECK(fs::exists(dir.layout.partials / "theirs.part"));
  CHECK_FALSE(fs::exists(dir.layout.partials / "orphan.part"));
  CHECK(fs::exists(dir.layout.partials / "not-a-partial.txt"));
}

TEST_CASE("archived_partials: the archives of tus rows whose partial is gone") {
  temp_data_dir dir;
  auto archive = [&](const std::string& id) {
    auto file = partial_file::create(dir.layout, id);
    file.append("whole", 5);
    file.commit_to_archive(dir.layout);
  };
  archive("cut-off");    // a completion cut off before its record committed
  archive("legacy-cut"); // the same, a row of no volume
  archive("theirs");     // another volume's tus row: left alone
  archive("taken");      // its partial exists already: left to reconcile_partials()
  partial_file::create(dir.layout, "taken");
  fs::create_symlink("/etc/passwd", dir.layout.archives / "linked"); // not a regular file
  row_volumes tus_rows{{"cut-off", "here"}, {"legacy-cut", ""}, {"theirs", "elsewhere"},
                       {"taken", "here"},   {"linked", "here"}, {"no-archive", "here"},
                       {"../x", "here"}};
  auto found = archived_partials(dir.layout, tus_rows, "here");
  std::sort(found.begin(), found.end());
  CHECK(found == std::vector<std::string>{"cut-off", "legacy-cut"});

  SECTION("return_unrecorded_archives moves them back, whole") {
    auto moved = return_unrecorded_archives(dir.layout, {"cut-off", "gone-meanwhile"});
    CHECK(moved == std::vector<std::string>{"cut-off"});
    CHECK(read_all(dir.layout.partials / "cut-off.part") == "whole");
    CHECK_FALSE(fs::exists(dir.layout.archives / "cut-off"));
    CHECK(fs::exists(dir.layout.archives / "legacy-cut"));
  }
}

// storage/partial_file and storage/partial_reconcile: the tus partial is
// only appended to or cut back, its size after sync() is the offset, and
// start-up keeps partials with rows, removes those without.
#include "storage/partial_file.hpp"
#include "storage/partial_reconcile.hpp"
#include "storage/upload_file.hpp"
#include "temp_data_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

using namespace portal::storage;
namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

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
  auto report = reconcile_partials(dir.layout, {"kept", "gone"});
  CHECK(report.kept == std::vector<std::string>{"kept"});
  CHECK(report.removed == std::vector<std::string>{"orphan"});
  CHECK(report.missing == std::vector<std::string>{"gone"});
  CHECK(fs::exists(dir.layout.partials / "kept.part"));
  CHECK_FALSE(fs::exists(dir.layout.partials / "orphan.part"));
  CHECK(fs::exists(dir.layout.partials / "not-a-partial.txt"));
}

#include "storage/archive_entries.hpp"
#include "tests/unit/archive_corpus.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

using namespace portal;
using test::member;
using test::random_bytes;

namespace {

struct temp_file {
  std::filesystem::path path;
  explicit temp_file(const std::string& bytes) {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("archive_entries_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~temp_file() { std::filesystem::remove(path); }
};

std::vector<member> listed_members() {
  return {
    {"proj/", '5'},
    {"proj/README.md", '0', std::string(3000, 'r')},
    {"proj/bin/", '5'},
    {"proj/bin/data.bin", '0', random_bytes(100 * 1024, 1)},
    {"proj/empty", '0', ""},
    {"proj/latest", '2', "", "README.md"},
    {"proj/bin/up", '2', "", "../README.md"},
    {"proj/copy", '1', "", "proj/README.md"},
    {"proj/caf\xc3\xa9-\xe2\x82\xac.txt", '0', "utf-8 name", "", true},
  };
}

} // namespace

TEST_CASE("list_entries reads a stored archive", "[archive_entries]") {
  auto f = GENERATE(storage::archive_format::tar_gz, storage::archive_format::tar_zst);
  temp_file file(test::compress(f, test::write_tar(listed_members())));
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
  temp_file damaged(test::compress(f, test::write_tar(listed_members())).substr(0, 500));
  CHECK_THROWS_AS(storage::list_entries(damaged.path, f, 1000), storage::archive_read_error);
}

TEST_CASE("list_entries names are valid UTF-8 whatever the header bytes", "[archive_entries]") {
  // A Latin-1 name in a plain ustar header, and invalid UTF-8 in a pax path.
  std::string tar = test::ustar_header("caf\xe9.txt", '0', 0) +
                    test::pax_header({{"path", "bad\xff\xfe"}}) + test::ustar_header("x", '0', 0) +
                    test::end_marker();
  temp_file file(test::compress(storage::archive_format::tar_gz, tar));
  auto entries = storage::list_entries(file.path, storage::archive_format::tar_gz, 10);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].path == "caf\\xe9.txt");
  CHECK(entries[1].path == "bad\\xff\\xfe");
}

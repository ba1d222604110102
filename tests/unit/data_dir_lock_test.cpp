#include "storage/data_dir_lock.hpp"
#include "storage/upload_file.hpp"
#include "temp_data_dir.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <cerrno>
#include <optional>

using namespace portal::storage;

// flock(2) locks belong to an open file description, so a second lock in
// the same process conflicts exactly as a second server's would.
TEST_CASE("one lock at a time on a data dir, released with its holder", "[data_dir_lock]") {
  temp_data_dir d;
  std::optional<data_dir_lock> first;
  first.emplace(d.root);
  CHECK_THROWS_AS(data_dir_lock{d.root}, data_dir_in_use);
  CHECK_THROWS_WITH(data_dir_lock{d.root},
                    Catch::Contains(d.root.string()) && Catch::Contains("is in use"));
  first.reset();
  CHECK_NOTHROW(data_dir_lock{d.root});
}

TEST_CASE("locks on two data dirs do not conflict", "[data_dir_lock]") {
  temp_data_dir a, b;
  data_dir_lock on_a{a.root};
  CHECK_NOTHROW(data_dir_lock{b.root});
}

TEST_CASE("a lock file that is a symlink is refused, and a FIFO cannot hang the start",
          "[data_dir_lock]") {
  temp_data_dir d;
  SECTION("symlink") {
    std::filesystem::create_symlink(d.root / "elsewhere", d.root / "lock");
    try {
      data_dir_lock lock{d.root};
      FAIL("a symlink was followed");
    } catch (const storage_error& e) {
      CHECK(e.code().value() == ELOOP);
    }
    CHECK_FALSE(std::filesystem::exists(d.root / "elsewhere"));
  }
  SECTION("FIFO") {
    REQUIRE(::mkfifo((d.root / "lock").c_str(), 0644) == 0);
    // flock on a FIFO works; the open must not block without a writer.
    std::optional<data_dir_lock> lock;
    REQUIRE_NOTHROW(lock.emplace(d.root));
    CHECK_THROWS_AS(data_dir_lock{d.root}, data_dir_in_use);
  }
}

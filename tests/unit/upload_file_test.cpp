#include "config/upload_id.hpp"
#include "storage/data_dir.hpp"
#include "storage/failpoints.hpp"
#include "storage/upload_file.hpp"
#include "temp_data_dir.hpp"
#include "tests/unit/file_text.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <unistd.h>
#include <vector>

using namespace portal::storage;
namespace fs = std::filesystem;

using portal::test::read_all;
using portal::test::write_file;

namespace {

std::size_t count_entries(const fs::path& dir) {
  return static_cast<std::size_t>(
    std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// Independent of upload_file's incremental digest: OpenSSL's one-shot call.
std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 9)) & 0xff);
  return s;
}

} // namespace

TEST_CASE("upload_file: chunks then commit give the exact bytes and their sha256", "[storage]") {
  temp_data_dir d;
  std::string all;
  upload_file f(d.layout, "abc_DEF-123");
  CHECK(fs::exists(d.layout.tmp / "abc_DEF-123.part"));
  for (std::size_t n : {1u, 0u, 4096u, 65536u, 3u << 20, 17u}) {
    auto chunk = pattern(n, static_cast<unsigned>(all.size()));
    f.write(chunk.data(), chunk.size());
    all += chunk;
  }
  CHECK(f.size() == all.size());

  auto c = f.commit();
  CHECK(c.path == d.layout.archives / "abc_DEF-123");
  CHECK(c.size == all.size());
  CHECK(c.sha256 == sha256_hex(all));
  CHECK(read_all(c.path) == all);
  CHECK(fs::file_size(c.path) == all.size());
  CHECK(count_entries(d.layout.tmp) == 0);
  auto perms = fs::status(c.path).permissions();
  CHECK((perms & (fs::perms::others_all | fs::perms::group_write)) == fs::perms::none);
}

TEST_CASE("upload_file: known sha256 vectors", "[storage]") {
  temp_data_dir d;
  {
    upload_file f(d.layout, "abc");
    f.write("a", 1);
    f.write("bc", 2);
    CHECK(f.commit().sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }
  {
    upload_file f(d.layout, "empty");
    auto c = f.commit();
    CHECK(c.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(c.size == 0);
    CHECK(fs::file_size(c.path) == 0);
  }
}

TEST_CASE("upload_file: destroyed without commit leaves nothing", "[storage]") {
  temp_data_dir d;
  {
    upload_file f(d.layout, "gone");
    f.write("xyz", 3);
  }
  CHECK(count_entries(d.layout.tmp) == 0);
  CHECK(count_entries(d.layout.archives) == 0);
}

TEST_CASE("upload_file: abort is idempotent and ends the file", "[storage]") {
  temp_data_dir d;
  upload_file f(d.layout, "twice");
  f.write("xyz", 3);
  f.abort();
  f.abort();
  CHECK(count_entries(d.layout.tmp) == 0);
  CHECK_THROWS_AS(f.write("x", 1), storage_error);
  CHECK_THROWS_AS(f.commit(), storage_error);
  CHECK(count_entries(d.layout.archives) == 0);
}

TEST_CASE("upload_file: abort and destruction after commit keep the archive", "[storage]") {
  temp_data_dir d;
  {
    upload_file f(d.layout, "kept");
    f.write("data", 4);
    f.commit();
    f.abort();
    CHECK_THROWS_AS(f.commit(), storage_error);
  }
  CHECK(read_all(d.layout.archives / "kept") == "data");
}

TEST_CASE("upload_file: the same id twice is EEXIST", "[storage]") {
  temp_data_dir d;
  upload_file first(d.layout, "dup");
  try {
    upload_file second(d.layout, "dup");
    FAIL("second upload_file with the same id was created");
  } catch (const storage_error& e) {
    CHECK(e.code() == std::errc::file_exists);
    CHECK_FALSE(e.disk_full());
  }
  // The failed second one must not have removed the first one's file.
  first.write("ok", 2);
  CHECK(read_all(first.commit().path) == "ok");
}

TEST_CASE("upload_file: commit never overwrites an existing archive", "[storage]") {
  temp_data_dir d;
  write_file(d.layout.archives / "taken", "original");
  upload_file f(d.layout, "taken");
  f.write("intruder", 8);
  try {
    f.commit();
    FAIL("commit overwrote an existing archive");
  } catch (const storage_error& e) {
    CHECK(e.code() == std::errc::file_exists);
  }
  CHECK(read_all(d.layout.archives / "taken") == "original");
  CHECK(count_entries(d.layout.tmp) == 0);
  f.abort(); // still fine after a failed commit
}

TEST_CASE("upload_file: ids that are not url-safe are refused", "[storage]") {
  temp_data_dir d;
  for (const std::string& bad : std::vector<std::string>{"", "../x", "a/b", "a.b", "sp ace",
                                                         std::string(65, 'a'), ".part"}) {
    CAPTURE(bad);
    try {
      upload_file f(d.layout, bad);
      FAIL("accepted");
    } catch (const storage_error& e) {
      CHECK(e.code() == std::errc::invalid_argument);
    }
    CHECK_THROWS_AS(remove_archive(d.layout, bad), storage_error);
  }
  CHECK(count_entries(d.layout.tmp) == 0);
  CHECK(portal::valid_upload_id(std::string(64, 'Z')));
  CHECK(portal::valid_upload_id("a-b_C9"));
}

TEST_CASE("upload_file: a missing tmp dir is a storage_error", "[storage]") {
  temp_data_dir d;
  fs::remove(d.layout.tmp);
  try {
    upload_file f(d.layout, "nodir");
    FAIL("created without a tmp dir");
  } catch (const storage_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
  }
}

TEST_CASE("remove_archive is idempotent", "[storage]") {
  temp_data_dir d;
  {
    upload_file f(d.layout, "del");
    f.write("x", 1);
    f.commit();
  }
  write_file(d.layout.archives / "other", "stay");
  remove_archive(d.layout, "del");
  CHECK_FALSE(fs::exists(d.layout.archives / "del"));
  CHECK_NOTHROW(remove_archive(d.layout, "del"));
  CHECK_NOTHROW(remove_archive(d.layout, "never-existed"));
  CHECK(read_all(d.layout.archives / "other") == "stay");
}

TEST_CASE("rename_no_replace moves files and directories, never over a name", "[storage]") {
  temp_data_dir d;
  write_file(d.layout.tmp / "a", "A");
  write_file(d.layout.tmp / "b", "B");
  CHECK_THROWS_AS(rename_no_replace(d.layout.tmp / "a", d.layout.tmp / "b"), storage_error);
  CHECK(read_all(d.layout.tmp / "b") == "B");
  rename_no_replace(d.layout.tmp / "a", d.layout.orphans / "a");
  CHECK(read_all(d.layout.orphans / "a") == "A");
  CHECK_FALSE(fs::exists(d.layout.tmp / "a"));
  fs::create_directory(d.layout.tmp / "dir");
  rename_no_replace(d.layout.tmp / "dir", d.layout.orphans / "dir");
  CHECK(fs::is_directory(d.layout.orphans / "dir"));
}

TEST_CASE("upload_file: ENOSPC is disk_full() and abort frees the space", "[storage]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting a small tmpfs needs root");
    return;
  }
  temp_data_dir outer;
  const fs::path mnt = outer.root / "small";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0) {
    WARN("skipped: cannot mount a tmpfs here: " << std::strerror(errno));
    return;
  }
  struct unmount {
    fs::path p;
    ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } guard{mnt};

  auto layout = prepare_data_dir(mnt / "data");
  const std::string chunk = pattern(64 * 1024, 1);
  bool full = false;
  {
    upload_file f(layout, "big");
    try {
      for (int i = 0; i < 64; ++i) // 4 MiB: far more than fits
        f.write(chunk.data(), chunk.size());
    } catch (const storage_error& e) {
      full = e.disk_full();
      CHECK(e.code().value() == ENOSPC);
    }
    CHECK(f.size() <= 1024 * 1024); // tmpfs size=1m: at most 1 MiB of data fits
    f.abort();
  }
  CHECK(full);
  CHECK(count_entries(layout.tmp) == 0);
  CHECK(count_entries(layout.archives) == 0);
  // The space really is back: a file of most of the tmpfs fits again.
  upload_file g(layout, "after");
  const std::string half = pattern(512 * 1024, 2);
  CHECK_NOTHROW(g.write(half.data(), half.size()));
  g.abort();
}

#if defined(PORTAL_FAILPOINTS) && PORTAL_FAILPOINTS
TEST_CASE("failpoints: environment parsing", "[storage]") {
  using namespace portal::storage::failpoints;
  auto c = parse_storage_config("250", "1048576");
  CHECK(c.delay_us == 250);
  REQUIRE(c.enospc_after);
  CHECK(*c.enospc_after == 1048576);
  auto off = parse_storage_config(nullptr, "");
  CHECK(off.delay_us == 0);
  CHECK_FALSE(off.enospc_after);
  CHECK_FALSE(parse_u64("-1"));
  CHECK_FALSE(parse_u64("12abc"));
  CHECK(parse_u64("0") == std::optional<uint64_t>(0));
}

// The variables are read once per process, so this runs only on request:
//   PORTAL_FAILPOINT_STORAGE_ENOSPC_AFTER=1000 portal_unit_tests "[failpoints]"
TEST_CASE("failpoints: ENOSPC_AFTER fails the write that would pass it", "[.][failpoints]") {
  auto limit = portal::storage::failpoints::storage().enospc_after;
  if (!limit) {
    WARN("skipped: PORTAL_FAILPOINT_STORAGE_ENOSPC_AFTER is not set");
    return;
  }
  temp_data_dir d;
  upload_file f(d.layout, "fp");
  const std::string bytes(static_cast<std::size_t>(*limit), 'x');
  f.write(bytes.data(), bytes.size());
  try {
    f.write("y", 1);
    FAIL("no ENOSPC past the failpoint limit");
  } catch (const storage_error& e) {
    CHECK(e.disk_full());
  }
  CHECK(f.size() == *limit);
  f.abort();
  CHECK(count_entries(d.layout.tmp) == 0);
}
#endif

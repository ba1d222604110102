// The backup file's container (storage/backup_writer, backup_reader) and the
// scratch files behind it (storage/spool_file): what is written reads back
// with the same digests, and damage is reported as backup_damaged.
#include "storage/backup_reader.hpp"
#include "storage/backup_writer.hpp"
#include "storage/sha256_hasher.hpp"
#include "storage/spool_file.hpp"
#include "storage/upload_file.hpp"
#include "temp_data_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

using namespace portal::storage;
namespace fs = std::filesystem;

namespace {

std::string sha256_of(const std::string& data) {
  sha256_hasher h;
  h.update(data.data(), data.size());
  return h.hex_digest();
}

struct fd_file {
  int fd;
  explicit fd_file(const fs::path& p, int flags) : fd(::open(p.c_str(), flags | O_CLOEXEC, 0600)) {
    REQUIRE(fd >= 0);
  }
  ~fd_file() { ::close(fd); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

// A pseudo-random payload that zstd cannot shrink much.
std::string noise(std::size_t n, unsigned seed) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return out;
}

// Writes {"a.txt": small, "archives/big": 3 MiB from a file} to `out`.
void write_sample(const fs::path& dir, const fs::path& out, const std::string& big) {
  spit(dir / "big.bin", big);
  fd_file file(out, O_WRONLY | O_CREAT | O_TRUNC);
  backup_writer w(file.fd);
  auto a = w.add("a.txt", "hello\n");
  CHECK(a.size == 6);
  CHECK(a.sha256 == sha256_of("hello\n"));
  auto b = w.add_file("archives/big", dir / "big.bin");
  CHECK(b.size == big.size());
  CHECK(b.sha256 == sha256_of(big));
  w.finish();
  CHECK(w.bytes_out() == fs::file_size(out));
}

} // namespace

TEST_CASE("backup_writer and backup_reader round-trip members and digests") {
  temp_data_dir dir;
  auto big = noise(3 << 20, 1);
  write_sample(dir.root, dir.root / "b.tar.zst", big);

  fd_file in(dir.root / "b.tar.zst", O_RDONLY);
  backup_reader r(in.fd);
  auto m = r.next();
  REQUIRE(m);
  CHECK(m->name == "a.txt");
  CHECK(m->regular);
  CHECK(r.read_all(100) == "hello\n");

  m = r.next();
  REQUIRE(m);
  CHECK(m->name == "archives/big");
  CHECK(m->size == big.size());
  fd_file copy(dir.root / "copy.bin", O_WRONLY | O_CREAT | O_TRUNC);
  auto d = r.copy_to(copy.fd);
  CHECK(d.size == big.size());
  CHECK(d.sha256 == sha256_of(big));
  CHECK(slurp(dir.root / "copy.bin") == big);

  CHECK_FALSE(r.next());
  CHECK(r.bytes_in() == fs::file_size(dir.root / "b.tar.zst"));
}

TEST_CASE("read_all refuses a member larger than its limit") {
  temp_data_dir dir;
  write_sample(dir.root, dir.root / "b.tar.zst", noise(4096, 2));
  fd_file in(dir.root / "b.tar.zst", O_RDONLY);
  backup_reader r(in.fd);
  REQUIRE(r.next());
  CHECK_THROWS_AS(r.read_all(5), backup_damaged);
}

TEST_CASE("a damaged backup is backup_damaged, never a short success") {
  temp_data_dir dir;
  auto big = noise(1 << 20, 3);
  write_sample(dir.root, dir.root / "good.tar.zst", big);
  auto good = slurp(dir.root / "good.tar.zst");

  auto read_everything = [&](const std::string& bytes) {
    spit(dir.root / "bad.tar.zst", bytes);
    fd_file in(dir.root / "bad.tar.zst", O_RDONLY);
    backup_reader r(in.fd);
    fd_file sink(dir.root / "sink", O_WRONLY | O_CREAT | O_TRUNC);
    while (r.next())
      r.copy_to(sink.fd);
  };

  SECTION("a flipped byte in the compressed stream") {
    auto bad = good;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x01);
    CHECK_THROWS_AS(read_everything(bad), backup_damaged);
  }
  SECTION("cut off half-way") {
    CHECK_THROWS_AS(read_everything(good.substr(0, good.size() / 2)), backup_damaged);
  }
  SECTION("not zstd at all") {
    CHECK_THROWS_AS(read_everything(std::string(4096, 'x')), backup_damaged);
  }
}

TEST_CASE("a backup_writer destroyed before finish() leaves no end marker") {
  temp_data_dir dir;
  spit(dir.root / "x.bin", noise(4 << 20, 4)); // enough for zstd to flush blocks
  {
    fd_file out(dir.root / "cut.tar.zst", O_WRONLY | O_CREAT | O_TRUNC);
    backup_writer w(out.fd);
    w.add_file("archives/x", dir.root / "x.bin");
  } // no finish(): an error happened
  // Whatever zstd had flushed by then (maybe nothing) must not read as a
  // backup that ends well.
  auto read_all_members = [&] {
    fd_file in(dir.root / "cut.tar.zst", O_RDONLY);
    backup_reader r(in.fd);
    fd_file sink(dir.root / "sink", O_WRONLY | O_CREAT | O_TRUNC);
    while (r.next())
      r.copy_to(sink.fd);
  };
  CHECK_THROWS_AS(read_all_members(), backup_damaged);
}

TEST_CASE("add_file refuses a vanished file with ENOENT and a symlink") {
  temp_data_dir dir;
  fd_file out(dir.root / "b.tar.zst", O_WRONLY | O_CREAT | O_TRUNC);
  backup_writer w(out.fd);
  try {
    w.add_file("archives/gone", dir.root / "gone");
    FAIL("no exception");
  } catch (const storage_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
  }
  spit(dir.root / "real", "data");
  fs::create_symlink(dir.root / "real", dir.root / "link");
  CHECK_THROWS_AS(w.add_file("archives/link", dir.root / "link"), storage_error);
}

TEST_CASE("spool_file keeps nothing in the directory and reads back line by line") {
  temp_data_dir dir;
  spool_file spool(dir.layout.tmp);
  CHECK(std::distance(fs::directory_iterator(dir.layout.tmp), fs::directory_iterator()) == 0);

  std::string long_line(3 << 20, 'L'); // longer than the 1 MiB read buffer
  spool.append("one\n");
  spool.append("\n");
  spool.append(long_line + "\n");
  spool.append("last without newline");
  CHECK(spool.size() == 4 + 1 + long_line.size() + 1 + 20);

  spool_lines lines(spool);
  std::string line;
  std::vector<std::string> got;
  while (lines.next(line))
    got.push_back(line);
  REQUIRE(got.size() == 4);
  CHECK(got[0] == "one");
  CHECK(got[1].empty());
  CHECK(got[2] == long_line);
  CHECK(got[3] == "last without newline");

  spool_lines strict(spool, 1024);
  CHECK(strict.next(line));
  CHECK(strict.next(line));
  CHECK_THROWS_AS(strict.next(line), storage_error);
}

#include "storage/upload_file.hpp"
#include "storage/volume_id.hpp"
#include "temp_data_dir.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <fstream>

using namespace portal::storage;

namespace {

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

} // namespace

TEST_CASE("a data dir without a volume id gets one, kept across opens", "[volume_id]") {
  temp_data_dir d;
  auto first = open_volume_identity(d.layout, "");
  CHECK(first.created);
  CHECK(first.id.size() == 22);
  CHECK(file_text(d.root / "volume-id") == first.id + "\n");
  CHECK(std::filesystem::is_empty(d.layout.tmp)); // the draft was renamed, none is left

  auto again = open_volume_identity(d.layout, "");
  CHECK_FALSE(again.created);
  CHECK(again.id == first.id);
}

TEST_CASE("two data dirs get different volume ids", "[volume_id]") {
  temp_data_dir a, b;
  CHECK(open_volume_identity(a.layout, "").id != open_volume_identity(b.layout, "").id);
}

TEST_CASE("a volume id an operator wrote without a newline is read", "[volume_id]") {
  temp_data_dir d;
  std::ofstream(d.root / "volume-id") << "copied-by-hand_01";
  auto v = open_volume_identity(d.layout, "");
  CHECK_FALSE(v.created);
  CHECK(v.id == "copied-by-hand_01");
}

TEST_CASE("a volume-id file without a valid id is refused and never replaced", "[volume_id]") {
  const std::vector<std::string> refused{"",
                                         "\n",
                                         "../etc",
                                         "two words\n",
                                         std::string(65, 'a'),
                                         std::string(200, 'b'),
                                         "abc\nmachine one\n",
                                         "abc\nm\x01\n",
                                         "abc\nm1\nthird line\n",
                                         "abc\n\n"};
  for (const auto& bad : refused) {
    temp_data_dir d;
    std::ofstream(d.root / "volume-id") << bad;
    try {
      open_volume_identity(d.layout, "");
      FAIL("accepted " << bad);
    } catch (const storage_error& e) {
      CHECK(e.code() == std::errc::invalid_argument);
    }
    CHECK(file_text(d.root / "volume-id") == bad);
  }
}

TEST_CASE("a data dir that cannot take a volume id says why", "[volume_id]") {
  // Where the draft goes is not a directory: the create fails as a read-only
  // mount's would, whoever runs the test (root writes through file modes).
  temp_data_dir d;
  std::filesystem::remove(d.layout.tmp);
  std::ofstream(d.layout.tmp) << "a file";
  try {
    open_volume_identity(d.layout, "");
    FAIL("made a volume id");
  } catch (const storage_error& e) {
    CHECK(e.code() == std::errc::not_a_directory);
  }
  CHECK_FALSE(std::filesystem::exists(d.root / "volume-id"));
}

TEST_CASE("judge_rows: a volume deletes only its own rows and claims rows of none", "[volume_id]") {
  row_volumes rows{{"a", "v1"}, {"b", "v1"}, {"c", ""}, {"d", ""}, {"e", "v2"}, {"f", "v2"}};
  auto v = judge_rows(rows, "v1", {"a", "c", "e"});
  using names = std::vector<std::string>;
  CHECK(v.missing == names{"b"});
  CHECK(v.claimed == names{"c"});
  CHECK(v.unattributed == names{"d"});
  CHECK(v.foreign == names{"e"});

  // No volume id known here: nothing is missing, whatever the rows say.
  auto unknown = judge_rows(rows, "", {});
  CHECK(unknown.missing.empty());
  CHECK(unknown.unattributed == names{"c", "d"});
}

TEST_CASE("a volume id is bound to the machine it was made on; a copy elsewhere gets its own",
          "[volume_id]") {
  temp_data_dir d;
  auto original = open_volume_identity(d.layout, "m1");
  CHECK(original.created);
  CHECK(file_text(d.root / "volume-id") == original.id + "\nm1\n");
  CHECK(open_volume_identity(d.layout, "m1").id == original.id); // a restart on m1

  // The same directory (a forked volume, a snapshot) on machine m2: a new id,
  // and the original machine keeps its own.
  auto copy = open_volume_identity(d.layout, "m2");
  CHECK(copy.created);
  CHECK(copy.id != original.id);
  CHECK(copy.copied_from == original.id);
  CHECK(copy.copied_from_machine == "m1");
  CHECK(file_text(d.root / "volume-id") == copy.id + "\nm2\n");
  auto again = open_volume_identity(d.layout, "m2");
  CHECK_FALSE(again.created);
  CHECK(again.id == copy.id);
  CHECK(std::filesystem::is_empty(d.layout.tmp));

  // A directory made without FLY_MACHINE_ID, later served on a Fly machine:
  // as much a copy as any other.
  temp_data_dir plain;
  auto unbound = open_volume_identity(plain.layout, "");
  CHECK(open_volume_identity(plain.layout, "m3").copied_from == unbound.id);
}

TEST_CASE("judge_rows: a volume that holds none of its rows' files says so", "[volume_id]") {
  using names = std::vector<std::string>;
  auto v = judge_rows({{"a", "v1"}, {"b", "v1"}, {"c", ""}}, "v1", {"c"});
  CHECK(v.missing == names{"a", "b"});
  CHECK(v.claimed == names{"c"}); // a claimed file does not make the volume's own rows found
  CHECK_FALSE(v.holds_any);
  CHECK(judge_rows({{"a", "v1"}, {"b", "v1"}}, "v1", {"a"}).holds_any);
}

TEST_CASE("a renewed volume id replaces the old one, which it names", "[volume_id]") {
  temp_data_dir d;
  auto old = open_volume_identity(d.layout, "m1");
  auto renewed = renew_volume_identity(d.layout, "m1");
  CHECK(renewed.created);
  CHECK(renewed.id != old.id);
  CHECK(renewed.copied_from == old.id);
  CHECK(open_volume_identity(d.layout, "m1").id == renewed.id);
  temp_data_dir none;
  CHECK_THROWS_AS(renew_volume_identity(none.layout, ""), storage_error);
}

TEST_CASE("a volume-id that is a FIFO is refused at once, not waited on", "[volume_id]") {
  temp_data_dir d;
  REQUIRE(::mkfifo((d.root / "volume-id").c_str(), 0600) == 0);
  CHECK_THROWS_AS(open_volume_identity(d.layout, ""), storage_error);
}

TEST_CASE("a machine id of 255 characters keeps its volume id", "[volume_id]") {
  temp_data_dir d;
  const std::string machine(255, 'm');
  auto v = open_volume_identity(d.layout, machine);
  CHECK(open_volume_identity(d.layout, machine).id == v.id);
  CHECK_FALSE(open_volume_identity(d.layout, machine).created);
}

TEST_CASE("a volume-id that is a symlink is refused, dangling or not", "[volume_id]") {
  temp_data_dir d;
  std::filesystem::create_symlink(d.root / "nowhere", d.root / "volume-id");
  CHECK_THROWS_AS(open_volume_identity(d.layout, ""), storage_error);
  CHECK(std::filesystem::is_empty(d.layout.tmp)); // no draft left behind

  temp_data_dir other;
  auto real = open_volume_identity(other.layout, "");
  temp_data_dir linked;
  std::filesystem::create_symlink(other.root / "volume-id", linked.root / "volume-id");
  try {
    open_volume_identity(linked.layout, "");
    FAIL("followed the symlink to " << real.id);
  } catch (const storage_error& e) {
    CHECK(e.code() == std::errc::too_many_symbolic_link_levels);
  }
}

TEST_CASE("any printable machine id without spaces is a machine", "[volume_id]") {
  temp_data_dir d;
  auto v = open_volume_identity(d.layout, "web1.example:8080");
  CHECK(file_text(d.root / "volume-id") == v.id + "\nweb1.example:8080\n");
  CHECK(open_volume_identity(d.layout, "web1.example:8080").id == v.id);
  CHECK_THROWS_AS(open_volume_identity(d.layout, "two words"), storage_error);
}

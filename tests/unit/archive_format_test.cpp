#include "storage/archive_format.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace portal::storage;

TEST_CASE("the format from a filename's suffix", "[archive_format]") {
  CHECK(format_of_filename("build-42.tar.gz") == archive_format::tar_gz);
  CHECK(format_of_filename("build-42.TGZ") == archive_format::tar_gz);
  CHECK(format_of_filename("a.Tar.Zst") == archive_format::tar_zst);
  for (const char* name : {"archive", "archive.tar", "archive.gz", "archive.zst", ".tar.gz", ".tgz",
                           "archive.tar.gz.txt", "archive.tar.xz", "archive.tar.gz\xc4\xb1"}) {
    INFO(name);
    CHECK_FALSE(format_of_filename(name));
  }
}

TEST_CASE("every name of a format", "[archive_format]") {
  for (auto f : {archive_format::tar_gz, archive_format::tar_zst}) {
    CHECK(format_from_string(to_string(f)) == f);
    CHECK(format_of_filename(std::string("x.") + to_string(f)) == f);
  }
  CHECK(std::string(to_string(archive_format::tar_gz)) == "tar.gz");
  CHECK(std::string(to_string(archive_format::tar_zst)) == "tar.zst");
  CHECK(std::string(compression_name(archive_format::tar_gz)) == "gzip");
  CHECK(std::string(compression_name(archive_format::tar_zst)) == "zstd");
  CHECK(std::string(media_type(archive_format::tar_gz)) == "application/gzip");
  CHECK(std::string(media_type(archive_format::tar_zst)) == "application/zstd");
  CHECK_FALSE(format_from_string("tar.bz2"));
  CHECK_FALSE(format_from_string("TAR.GZ"));
}

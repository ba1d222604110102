// `upload-portal version` (SPEC §2): this build's version and the versions of
// the libraries it links, as an operator asks for in a bug report.
#include "cli/command_line.hpp"
#include "cli/commands.hpp"

#include <boost/version.hpp>
#include <caf/config.hpp>
#include <openssl/opensslv.h>
#include <pqxx/version.hxx>

#include <archive.h>
#include <iostream>
#include <sodium.h>
#include <zstd.h>

namespace portal::cli {

namespace {

constexpr const char* version_usage = "usage: upload-portal version\n";

} // namespace

int version_command(const config_loader&, const args& words) {
  return guarded("version", version_usage, [&] {
    expect_positional(parse_args(words, 0), 0);
    std::cout << "upload-portal " << PORTAL_VERSION << "\n"
              << "caf " << CAF_VERSION / 10000 << "." << CAF_VERSION / 100 % 100 << "."
              << CAF_VERSION % 100 << "\n"
              << "boost " << BOOST_VERSION / 100000 << "." << BOOST_VERSION / 100 % 1000 << "\n"
              << "libpqxx " << PQXX_VERSION << "\n"
              << "libarchive " << archive_version_string() << "\n"
              << "zstd " << ZSTD_versionString() << "\n"
              << "openssl " << OPENSSL_FULL_VERSION_STR << "\n"
              << "libsodium " << sodium_version_string() << "\n"
#ifdef PORTAL_FAILPOINTS
              << "failpoints on (test build)\n"
#endif
#if defined(__SANITIZE_ADDRESS__)
              << "sanitizers on (test build)\n"
#endif
      ;
    return exit_ok;
  });
}

} // namespace portal::cli

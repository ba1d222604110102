// upload-portal: one binary, the subcommands of SPEC §2.
#include "cli/backup_command.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "db/admin_commands.hpp"
#include "net/server.hpp"

#include <boost/version.hpp>
#include <caf/config.hpp>
#include <openssl/opensslv.h>
#include <pqxx/version.hxx>

#include <archive.h>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sodium.h>
#include <string>
#include <vector>
#include <zstd.h>

namespace {

constexpr const char* usage = R"(usage: upload-portal [--config FILE] COMMAND [ARGS]

commands:
  serve                                   run the server until SIGTERM/SIGINT
  migrate                                 apply pending database migrations
  user add NAME [--role admin|uploader] [--password-stdin]
  user list | user disable NAME | user quota NAME BYTES|default
  token create --user NAME [--name LABEL] [--expires-in DURATION]
  token list [--user NAME] | token revoke ID | token revoke --all [--user NAME]
  backup FILE.tar.zst | restore FILE.tar.zst [--force]
  check-config                            print the effective configuration, secrets redacted
  version                                 version and linked library versions
)";

int fail(const std::string& why, int code = 1) {
  std::cerr << "upload-portal: " << why << "\n";
  return code;
}

int version() {
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
  return 0;
}

int dispatch(const std::optional<std::string>& config_file, const std::vector<std::string>& words) {
  const auto& command = words.front();
  std::vector<std::string> rest(words.begin() + 1, words.end());
  if (command == "version")
    return version();
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << usage;
    return 0;
  }
  auto cfg = portal::load_config(config_file, portal::process_env());
  if (command == "serve")
    return portal::serve(cfg);
  if (command == "check-config") {
    for (auto& warning : portal::check_serve_rules(cfg))
      std::cerr << "warning: " << warning << "\n";
    std::cout << portal::render_redacted(cfg);
    return 0;
  }
  if (command == "migrate")
    return portal::db::migrate_command(cfg);
  if (command == "user")
    return portal::db::user_command(cfg, rest);
  if (command == "token")
    return portal::db::token_command(cfg, rest);
  if (command == "backup")
    return portal::cli::backup_command(cfg, rest);
  if (command == "restore")
    return portal::cli::restore_command(cfg, rest);
  std::cerr << usage;
  return fail("unknown command: " + command, 2);
}

} // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0)
    return fail("libsodium failed to initialise");
  std::optional<std::string> config_file;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && words.empty()) {
      if (++i == argc)
        return fail("--config needs a FILE", 2);
      config_file = argv[i];
    } else {
      words.push_back(std::move(arg));
    }
  }
  if (words.empty()) {
    std::cerr << usage;
    return 2;
  }
  try {
    return dispatch(config_file, words);
  } catch (const portal::config_error& e) {
    if (words.front() == "serve")
      portal::log::error("refusing to start", {{"error", e.what()}});
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

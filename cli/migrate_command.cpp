// `upload-portal migrate` (SPEC §2, §3): applies the pending migrations
// compiled into the binary (db/migrate.cpp) and says which.
#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/database.hpp"
#include "db/migrate.hpp"

#include <cstdio>
#include <iostream>
#include <map>

namespace portal::cli {

namespace {

constexpr const char* migrate_usage = "usage: upload-portal [--config FILE] migrate\n";

} // namespace

int migrate_command(const config_loader& load, const args& words) {
  return guarded("migrate", migrate_usage, [&] {
    expect_positional(parse_args(words, 0), 0);
    // SPEC §3: migrate bypasses a pooler when DATABASE_DIRECT_URL is set; its
    // advisory lock is session state (see db/migrate.cpp).
    const db::migrate_result r = db::migrate(direct_database(load()));
    // Names come from the embedded list; the result only carries versions.
    std::map<int, std::string> names;
    for (const auto& m : db::embedded_migrations()) {
      names[m.version] = m.name;
    }
    for (int v : r.applied) {
      char number[16];
      std::snprintf(number, sizeof number, "%04d", v);
      std::cout << "applied migration " << number << "_" << names[v] << "\n";
    }
    std::cout << "database at version " << r.current_version << "\n";
    return exit_ok;
  });
}

} // namespace portal::cli

// The database-side subcommands of SPEC §2, run synchronously from main():
// migrate, user add|list|disable, token create|list|revoke.
#pragma once

#include "config/config.hpp"

#include <string>
#include <vector>

namespace portal::db {

// Each returns the process exit code; failures print one line to stderr.
// `args` are the words after the subcommand name (e.g. {"add","alice","--role","admin"}).
int migrate_command(const config& cfg);
int user_command(const config& cfg, const std::vector<std::string>& args);
int token_command(const config& cfg, const std::vector<std::string>& args);

} // namespace portal::db

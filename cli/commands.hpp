// The subcommands of SPEC §2 that run once and exit (serve, the long-running
// one, is composed in main.cpp). Each takes the words after its name and
// returns the process exit code, following cli/command_line.hpp: `--help`
// prints its usage on stdout, a malformed command line is one line on stderr
// and exit 2, a refusal or failure one line and exit 1.
#pragma once

#include "cli/command_line.hpp"

namespace portal::cli {

int migrate_command(const config_loader& load, const args& words);
int user_command(const config_loader& load, const args& words);
int token_command(const config_loader& load, const args& words);
int check_config_command(const config_loader& load, const args& words);
int version_command(const config_loader& load, const args& words);

} // namespace portal::cli

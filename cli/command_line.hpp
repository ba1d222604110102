// The rules every subcommand's command line follows (SPEC §2), so that they
// all answer alike:
// - words that start with "--" are options ("--flag VALUE", "--flag=VALUE"
//   or a switch); "--" alone ends them; single-dash words are arguments (a
//   user name may start with '-');
// - `--help` anywhere among the options prints the command's usage on
//   stdout, exit 0;
// - a malformed command line (unknown command or option, missing or extra
//   argument, bad value) is one line on stderr naming the problem and
//   pointing at `--help`, exit 2;
// - a refusal or a failure is one line on stderr, exit 1.
#pragma once

#include "config/config.hpp"

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace portal::cli {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

using args = std::vector<std::string>;

// Loads the configuration (--config FILE and the environment). A command
// calls it after checking its own command line, so a malformed command line
// is reported before a configuration problem. Throws config_error.
using config_loader = std::function<config()>;

// A malformed command line (exit 2), as opposed to a refusal (exit 1).
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct parsed_args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values; // --flag VALUE or --flag=VALUE
  std::set<std::string> switches;            // --flag

  std::optional<std::string> value(const std::string& flag) const;
  bool has(const std::string& flag) const { return switches.count(flag) != 0; }
};

// Parses args[from..]. Throws usage_error for an unknown option, a value
// option given twice or without its value, a switch given a value; `--help`
// stops the command (guarded() prints its usage).
parsed_args parse_args(const std::vector<std::string>& args, std::size_t from,
                       const std::set<std::string>& value_flags = {},
                       const std::set<std::string>& switch_flags = {});

// Exactly n positional arguments, else usage_error naming the missing `what`
// or the first extra one.
void expect_positional(const parsed_args& a, std::size_t n, const std::string& what = "");

// A user name argument (SPEC §2: [A-Za-z0-9._-]{1,64}), else usage_error.
const std::string& require_username_arg(const std::string& name);

// Runs a command body and maps every way out to its exit code and output:
// `--help` prints `usage` on stdout (exit 0), usage_error one line ending in
// "(see upload-portal <command> --help)" (exit 2), anything else one line
// (exit 1). `command` is "" for the top level. Secrets never reach these
// lines: refusals are built from names and ids, database errors from server
// text that does not echo parameters.
int guarded(std::string_view command, std::string_view usage, const std::function<int()>& body);

// A command made of subcommands (`user add`, `token list`...): words[0]
// picks the handler, which gets all the words (its own name first).
// `help` or `--help` instead of a subcommand prints `usage`.
using subcommand = int (*)(const config_loader& load, const args& words);
using subcommand_table = std::map<std::string, subcommand, std::less<>>;
int run_subcommand(std::string_view command, std::string_view usage, const subcommand_table& table,
                   const config_loader& load, const args& words);

} // namespace portal::cli

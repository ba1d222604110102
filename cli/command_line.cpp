#include "cli/command_line.hpp"

#include "cli/report.hpp"
#include "db/users.hpp"

#include <pqxx/except.hxx>

#include <iostream>

namespace portal::cli {

namespace {

// Thrown by parse_args when it meets --help; only guarded() sees it.
struct help_requested {};

// Server messages can span lines ("...\nDETAIL: ..."); the contract is one
// line on stderr.
std::string on_one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text;
}

// Other control characters (an escape sequence in a file's name) are shown
// escaped: they reach a terminal.
void say(const std::string& what) {
  std::cerr << "upload-portal: " << printable(on_one_line(what)) << "\n";
}

} // namespace

std::optional<std::string> parsed_args::value(const std::string& flag) const {
  const auto it = values.find(flag);
  return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
}

parsed_args parse_args(const std::vector<std::string>& args, std::size_t from,
                       const std::set<std::string>& value_flags,
                       const std::set<std::string>& switch_flags) {
  parsed_args out;
  bool flags_done = false;
  for (std::size_t i = from; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (flags_done || word.rfind("--", 0) != 0) {
      out.positional.push_back(word);
      continue;
    }
    if (word == "--") {
      flags_done = true;
      continue;
    }
    if (word == "--help") {
      throw help_requested{};
    }
    const auto eq = word.find('=');
    const std::string flag = word.substr(0, eq);
    if (value_flags.count(flag) != 0) {
      if (out.values.count(flag) != 0) {
        throw usage_error(flag + " given twice");
      }
      if (eq == std::string::npos && i + 1 >= args.size()) {
        throw usage_error(flag + " needs a value");
      }
      out.values[flag] = eq != std::string::npos ? word.substr(eq + 1) : args[++i];
    } else if (switch_flags.count(flag) != 0 && eq == std::string::npos) {
      out.switches.insert(flag);
    } else if (switch_flags.count(flag) != 0) {
      throw usage_error(flag + " takes no value");
    } else {
      throw usage_error("unknown option " + flag);
    }
  }
  return out;
}

void expect_positional(const parsed_args& a, std::size_t n, const std::string& what) {
  if (a.positional.size() < n) {
    throw usage_error("missing " + what);
  }
  if (a.positional.size() > n) {
    throw usage_error("unexpected argument " + a.positional[n]);
  }
}

const std::string& require_username_arg(const std::string& name) {
  if (!db::valid_username(name)) {
    throw usage_error("invalid user name " + name + " (allowed: 1 to 64 of A-Z a-z 0-9 . _ -)");
  }
  return name;
}

int guarded(std::string_view command, std::string_view usage, const std::function<int()>& body) {
  try {
    return body();
  } catch (const help_requested&) {
    std::cout << usage;
    return exit_ok;
  } catch (const usage_error& e) {
    // Still one line: the reason, then where the full usage is.
    std::string help = command.empty() ? "upload-portal --help"
                                       : "upload-portal " + std::string(command) + " --help";
    say(std::string(e.what()) + " (see " + help + ")");
    return exit_usage;
  } catch (const db::refused& e) {
    say(e.what());
  } catch (const pqxx::broken_connection& e) {
    say(std::string("cannot reach the database: ") + e.what());
  } catch (const std::exception& e) {
    say(e.what());
  }
  return exit_failure;
}

int run_subcommand(std::string_view command, std::string_view usage, const subcommand_table& table,
                   const config_loader& load, const args& words) {
  return guarded(command, usage, [&] {
    if (words.empty()) {
      throw usage_error("missing subcommand");
    }
    const std::string& name = words[0];
    if (name == "help" || name == "--help") {
      throw help_requested{};
    }
    if (name.rfind("--", 0) == 0) {
      throw usage_error("unknown option " + name);
    }
    const auto it = table.find(name);
    if (it == table.end()) {
      throw usage_error("unknown subcommand " + name);
    }
    return it->second(load, words);
  });
}

} // namespace portal::cli

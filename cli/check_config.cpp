// `upload-portal check-config` (SPEC §2, §3): loads and checks the
// configuration as `serve` would, then prints it with every secret redacted.
#include "cli/command_line.hpp"
#include "cli/commands.hpp"

#include <iostream>

namespace portal::cli {

namespace {

constexpr const char* check_config_usage = "usage: upload-portal [--config FILE] check-config\n";

} // namespace

int check_config_command(const config_loader& load, const args& words) {
  return guarded("check-config", check_config_usage, [&] {
    expect_positional(parse_args(words, 0), 0);
    const config cfg = load();
    for (auto& warning : check_serve_rules(cfg))
      std::cerr << "warning: " << warning << "\n";
    std::cout << render_redacted(cfg);
    return exit_ok;
  });
}

} // namespace portal::cli

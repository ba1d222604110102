// `upload-portal user add|list|disable|quota` (SPEC §2): argv, output, exit
// codes. The rules themselves live in db/users.cpp and db/quota.cpp.
#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/database.hpp"
#include "db/quota.hpp"
#include "db/users.hpp"

#include <pqxx/pqxx>

#include <charconv>
#include <iostream>
#include <limits>
#include <sodium.h>

namespace portal::cli {

namespace {

constexpr const char* user_usage = "usage: upload-portal user add NAME [--role admin|uploader] "
                                   "[--password-stdin] | user list | user disable NAME"
                                   " | user quota NAME BYTES|default\n";

// Wipes a password buffer however the command ends.
struct wipe_on_exit {
  std::optional<std::string>& secret;
  ~wipe_on_exit() {
    if (secret) {
      sodium_memzero(secret->data(), secret->size());
    }
  }
};

// First line of stdin, without its line ending; the buffer is wiped after use
// by the caller. Refuses an empty password.
std::string read_password_line() {
  std::string line;
  if (!std::getline(std::cin, line)) {
    line.clear();
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  if (line.empty()) {
    throw db::refused("empty password on stdin");
  }
  return line;
}

int user_add(const config_loader& load, const args& words) {
  const auto a = parse_args(words, 1, {"--role"}, {"--password-stdin"});
  expect_positional(a, 1, "user name");
  const std::string& name = require_username_arg(a.positional[0]);
  const std::string role = a.value("--role").value_or("uploader");
  if (!db::valid_role(role)) {
    throw usage_error("invalid role " + role + " (admin or uploader)");
  }
  const config cfg = load();
  std::optional<std::string> password;
  const wipe_on_exit wipe{password};
  if (a.has("--password-stdin")) {
    password = read_password_line();
  }
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  const db::user_row user = db::create_user(tx, db::audit_actor::cli(), name, role, password);
  tx.commit();
  std::cout << "created user " << user.username << " (id " << user.id << ", " << user.role
            << (password ? "" : ", no password: token-only") << ")\n";
  return exit_ok;
}

int user_list(const config_loader& load, const args& words) {
  expect_positional(parse_args(words, 1), 0);
  auto conn = connect_app(load());
  pqxx::work tx(conn);
  for (const auto& u : db::list_users(tx)) {
    std::cout << u.id << '\t' << u.username << '\t' << u.role << '\t'
              << (u.disabled ? "disabled" : "enabled") << '\n';
  }
  tx.commit();
  return exit_ok;
}

int user_disable(const config_loader& load, const args& words) {
  const auto a = parse_args(words, 1);
  expect_positional(a, 1, "user name");
  const std::string& name = require_username_arg(a.positional[0]);
  auto conn = connect_app(load());
  pqxx::work tx(conn);
  const auto outcome = db::disable_user(tx, db::audit_actor::cli(), name);
  tx.commit();
  std::cout << (outcome == db::disable_outcome::disabled ? "disabled user " : "already disabled: ")
            << name << "\n";
  return exit_ok;
}

// `user quota NAME BYTES|default`: BYTES a whole number (0 = no quota).
int user_quota(const config_loader& load, const args& words) {
  const auto a = parse_args(words, 1);
  expect_positional(a, 2, "user name and BYTES or default");
  const std::string& name = require_username_arg(a.positional[0]);
  std::optional<uint64_t> bytes;
  const auto& text = a.positional[1];
  if (text != "default") {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() ||
        n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw usage_error("BYTES must be a whole number of bytes, or default");
    bytes = n;
  }
  auto conn = connect_app(load());
  pqxx::work tx(conn);
  db::set_user_quota(tx, db::audit_actor::cli(), name, bytes);
  tx.commit();
  std::cout << "quota of " << name << ": "
            << (bytes ? (*bytes == 0 ? "none" : std::to_string(*bytes) + " bytes")
                      : "the server default")
            << "\n";
  return exit_ok;
}

} // namespace

int user_command(const config_loader& load, const args& words) {
  static const subcommand_table table{
    {"add", user_add}, {"list", user_list}, {"disable", user_disable}, {"quota", user_quota}};
  return run_subcommand("user", user_usage, table, load, words);
}

} // namespace portal::cli

// `upload-portal token create|list|revoke` (SPEC §2): argv, output, exit
// codes. The rules themselves live in db/tokens.cpp.
#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/database.hpp"
#include "db/tokens.hpp"

#include <pqxx/pqxx>

#include <iostream>

namespace portal::cli {

namespace {

constexpr const char* token_usage =
  "usage: upload-portal token create --user NAME [--name LABEL] [--expires-in DURATION]"
  " | token list [--user NAME] | token revoke ID | token revoke --all [--user NAME]\n";

std::optional<std::chrono::seconds> expiry_arg(const parsed_args& a) {
  const auto text = a.value("--expires-in");
  if (!text) {
    return std::nullopt;
  }
  try {
    return parse_duration(*text);
  } catch (const std::exception& e) {
    throw usage_error(e.what());
  }
}

int token_create(const config_loader& load, const args& words) {
  const auto a = parse_args(words, 1, {"--user", "--name", "--expires-in"});
  expect_positional(a, 0);
  const auto user = a.value("--user");
  if (!user) {
    throw usage_error("--user NAME is required");
  }
  require_username_arg(*user);
  const std::string name = a.value("--name").value_or("");
  if (!db::valid_token_label(name)) {
    throw usage_error("invalid --name (at most 200 characters, no control characters)");
  }
  const auto expires_in = expiry_arg(a);
  auto conn = connect_app(load());
  pqxx::work tx(conn);
  const db::created_token t = db::create_token(tx, db::audit_actor::cli(), *user, name, expires_in);
  tx.commit();
  std::cout << "created token " << t.id << " for " << t.username
            << (t.expires_at ? ", expires " + *t.expires_at : ", never expires")
            << "; it is shown only once:\n";
  // SPEC §2: the token alone on the last line of stdout.
  std::cout << t.token << std::endl;
  return exit_ok;
}

int token_list(const config_loader& load, const args& words) {
  const auto a = parse_args(words, 1, {"--user"});
  expect_positional(a, 0);
  std::optional<std::string> user = a.value("--user");
  if (user) {
    require_username_arg(*user);
  }
  auto conn = connect_app(load());
  pqxx::work tx(conn);
  for (const auto& t : db::list_tokens(tx, user)) {
    std::cout << t.id << '\t' << t.username << '\t' << (t.name.empty() ? "-" : t.name) << '\t'
              << t.created_at << '\t' << t.expires_at.value_or("never") << '\t' << t.state << '\n';
  }
  tx.commit();
  return exit_ok;
}

int token_revoke(const config_loader& load, const args& words) {
  const auto a = parse_args(words, 1, {"--user"}, {"--all"});
  if (a.has("--all")) {
    expect_positional(a, 0);
    const auto user = a.value("--user");
    if (user) {
      require_username_arg(*user);
    }
    auto conn = connect_app(load());
    pqxx::work tx(conn);
    const std::size_t n = db::revoke_all_tokens(tx, db::audit_actor::cli(), user);
    tx.commit();
    std::cout << "revoked " << n << (n == 1 ? " token" : " tokens")
              << (user ? " of " + *user : std::string()) << "\n";
    return exit_ok;
  }
  if (a.value("--user")) {
    throw usage_error("--user goes with --all");
  }
  expect_positional(a, 1, "token id");
  auto conn = connect_app(load());
  pqxx::work tx(conn);
  const auto outcome = db::revoke_token(tx, db::audit_actor::cli(), a.positional[0]);
  tx.commit();
  std::cout << (outcome == db::revoke_outcome::revoked ? "revoked token " : "already revoked: ")
            << a.positional[0] << "\n";
  return exit_ok;
}

} // namespace

int token_command(const config_loader& load, const args& words) {
  static const subcommand_table table{
    {"create", token_create}, {"list", token_list}, {"revoke", token_revoke}};
  return run_subcommand("token", token_usage, table, load, words);
}

} // namespace portal::cli

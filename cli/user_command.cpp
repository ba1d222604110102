// The CLI side of the database subcommands: argv parsing, output, exit codes.
// The rules themselves live in db/users.cpp, db/tokens.cpp and db/migrate.cpp.
#include "cli/commands.hpp"

#include "db/migrate.hpp"
#include "db/quota.hpp"
#include "db/tokens.hpp"
#include "db/users.hpp"

#include <pqxx/pqxx>

#include <charconv>
#include <cstdio>
#include <functional>
#include <iostream>
#include <libpq-fe.h>
#include <limits>
#include <map>
#include <set>
#include <sodium.h>
#include <sstream>

namespace portal::db {

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

const char* const user_usage = "usage: upload-portal user add NAME [--role admin|uploader] "
                               "[--password-stdin] | user list | user disable NAME"
                               " | user quota NAME BYTES|default";
const char* const token_usage =
  "usage: upload-portal token create --user NAME [--name LABEL] [--expires-in DURATION]"
  " | token list [--user NAME] | token revoke ID | token revoke --all [--user NAME]";

// A malformed command line (exit 2), as opposed to a refusal (exit 1).
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- argv -------------------------------------------------------------------

struct parsed_args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values; // --flag VALUE or --flag=VALUE
  std::set<std::string> switches;            // --flag

  std::optional<std::string> value(const std::string& flag) const {
    const auto it = values.find(flag);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  bool has(const std::string& flag) const { return switches.count(flag) != 0; }
};

// Words starting with "--" are flags; "--" alone ends them (a user name may
// start with '-', so single-dash words are positional).
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

std::string require_username_arg(const std::string& name) {
  if (!valid_username(name)) {
    throw usage_error("invalid user name " + name + " (allowed: 1 to 64 of A-Z a-z 0-9 . _ -)");
  }
  return name;
}

// ---- environment ------------------------------------------------------------

// libpq's parse errors can quote the connection string around the mistake,
// password included, so a malformed one is reported without libpq's text.
const std::string& checked_conninfo(const std::string& conninfo, const char* variable) {
  if (conninfo.empty()) {
    throw refused(std::string(variable) + " is not set");
  }
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) {
    PQfreemem(err);
  }
  if (opts == nullptr) {
    throw refused(std::string(variable) + " is not a valid connection string");
  }
  PQconninfoFree(opts);
  return conninfo;
}

// The user and token commands need no session state, so DATABASE_URL may
// point at a transaction-mode pooler.
pqxx::connection connect_app(const config& cfg) {
  return pqxx::connection(checked_conninfo(cfg.database_url, "DATABASE_URL"));
}

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
    throw refused("empty password on stdin");
  }
  return line;
}

// Server messages can span lines ("...\nDETAIL: ..."); the contract is one
// line on stderr.
std::string one_line(std::string text) {
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

// Runs a command body, mapping every failure to one stderr line and an exit
// code. Secrets never reach these messages: refusals are built from names and
// ids, database errors from server text that does not echo parameters.
int guarded(const char* help, const std::function<int()>& body) {
  try {
    return body();
  } catch (const usage_error& e) {
    // Still one line: the reason, then where the full usage is.
    std::cerr << "upload-portal: " << one_line(e.what()) << " (" << help << ")\n";
    return exit_usage;
  } catch (const refused& e) {
    std::cerr << "upload-portal: " << one_line(e.what()) << "\n";
  } catch (const pqxx::broken_connection& e) {
    std::cerr << "upload-portal: cannot reach the database: " << one_line(e.what()) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "upload-portal: " << one_line(e.what()) << "\n";
  }
  return exit_failure;
}

// ---- user -------------------------------------------------------------------

int user_add(const config& cfg, const std::vector<std::string>& args) {
  const auto a = parse_args(args, 1, {"--role"}, {"--password-stdin"});
  expect_positional(a, 1, "user name");
  const std::string name = require_username_arg(a.positional[0]);
  const std::string role = a.value("--role").value_or("uploader");
  if (!valid_role(role)) {
    throw usage_error("invalid role " + role + " (admin or uploader)");
  }
  std::optional<std::string> password;
  const wipe_on_exit wipe{password};
  if (a.has("--password-stdin")) {
    password = read_password_line();
  }
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  const user_row user = create_user(tx, audit_actor::cli(), name, role, password);
  tx.commit();
  std::cout << "created user " << user.username << " (id " << user.id << ", " << user.role
            << (password ? "" : ", no password: token-only") << ")\n";
  return 0;
}

int user_list(const config& cfg, const std::vector<std::string>& args) {
  expect_positional(parse_args(args, 1, {}, {}), 0, "");
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  for (const auto& u : list_users(tx)) {
    std::cout << u.id << '\t' << u.username << '\t' << u.role << '\t'
              << (u.disabled ? "disabled" : "enabled") << '\n';
  }
  tx.commit();
  return 0;
}

int user_disable(const config& cfg, const std::vector<std::string>& args) {
  const auto a = parse_args(args, 1, {}, {});
  expect_positional(a, 1, "user name");
  const std::string name = require_username_arg(a.positional[0]);
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  const auto outcome = disable_user(tx, audit_actor::cli(), name);
  tx.commit();
  std::cout << (outcome == disable_outcome::disabled ? "disabled user " : "already disabled: ")
            << name << "\n";
  return 0;
}

// `user quota NAME BYTES|default`: BYTES a whole number (0 = no quota).
int user_quota(const config& cfg, const std::vector<std::string>& args) {
  const auto a = parse_args(args, 1, {}, {});
  expect_positional(a, 2, "user name and BYTES or default");
  const std::string name = require_username_arg(a.positional[0]);
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
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  set_user_quota(tx, audit_actor::cli(), name, bytes);
  tx.commit();
  std::cout << "quota of " << name << ": "
            << (bytes ? (*bytes == 0 ? "none" : std::to_string(*bytes) + " bytes")
                      : "the server default")
            << "\n";
  return 0;
}

// ---- token ------------------------------------------------------------------

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

int token_create(const config& cfg, const std::vector<std::string>& args) {
  const auto a = parse_args(args, 1, {"--user", "--name", "--expires-in"}, {});
  expect_positional(a, 0, "");
  const auto user = a.value("--user");
  if (!user) {
    throw usage_error("--user NAME is required");
  }
  const std::string name = a.value("--name").value_or("");
  if (!valid_token_label(name)) {
    throw usage_error("invalid --name (at most 200 characters, no control characters)");
  }
  const auto expires_in = expiry_arg(a);
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  const created_token t =
    create_token(tx, audit_actor::cli(), require_username_arg(*user), name, expires_in);
  tx.commit();
  std::cout << "created token " << t.id << " for " << t.username
            << (t.expires_at ? ", expires " + *t.expires_at : ", never expires")
            << "; it is shown only once:\n";
  // SPEC §2: the token alone on the last line of stdout.
  std::cout << t.token << std::endl;
  return 0;
}

int token_list(const config& cfg, const std::vector<std::string>& args) {
  const auto a = parse_args(args, 1, {"--user"}, {});
  expect_positional(a, 0, "");
  std::optional<std::string> user = a.value("--user");
  if (user) {
    require_username_arg(*user);
  }
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  for (const auto& t : list_tokens(tx, user)) {
    std::cout << t.id << '\t' << t.username << '\t' << (t.name.empty() ? "-" : t.name) << '\t'
              << t.created_at << '\t' << t.expires_at.value_or("never") << '\t' << t.state << '\n';
  }
  tx.commit();
  return 0;
}

int token_revoke(const config& cfg, const std::vector<std::string>& args) {
  const auto a = parse_args(args, 1, {"--user"}, {"--all"});
  if (a.has("--all")) {
    expect_positional(a, 0, "");
    const auto user = a.value("--user");
    if (user) {
      require_username_arg(*user);
    }
    auto conn = connect_app(cfg);
    pqxx::work tx(conn);
    const std::size_t n = revoke_all_tokens(tx, audit_actor::cli(), user);
    tx.commit();
    std::cout << "revoked " << n << (n == 1 ? " token" : " tokens")
              << (user ? " of " + *user : std::string()) << "\n";
    return 0;
  }
  if (a.value("--user")) {
    throw usage_error("--user goes with --all");
  }
  expect_positional(a, 1, "token id");
  auto conn = connect_app(cfg);
  pqxx::work tx(conn);
  const auto outcome = revoke_token(tx, audit_actor::cli(), a.positional[0]);
  tx.commit();
  std::cout << (outcome == revoke_outcome::revoked ? "revoked token " : "already revoked: ")
            << a.positional[0] << "\n";
  return 0;
}

using handler = int (*)(const config&, const std::vector<std::string>&);

int dispatch(const config& cfg, const std::vector<std::string>& args,
             const std::map<std::string, handler>& table, const std::string& group,
             const char* usage) {
  return guarded(("see: upload-portal " + group + " --help").c_str(), [&] {
    if (args.empty()) {
      throw usage_error("missing subcommand");
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      std::cout << usage << "\n";
      return 0;
    }
    const auto it = table.find(args[0]);
    if (it == table.end()) {
      throw usage_error("unknown subcommand " + args[0]);
    }
    return it->second(cfg, args);
  });
}

} // namespace

int migrate_command(const config& cfg) {
  return guarded("usage: upload-portal migrate", [&] {
    // SPEC §3: migrate bypasses a pooler when DATABASE_DIRECT_URL is set; its
    // advisory lock is session state (see db/migrate.cpp).
    const bool direct = !cfg.database_direct_url.empty();
    const migrate_result r =
      migrate(direct ? checked_conninfo(cfg.database_direct_url, "DATABASE_DIRECT_URL")
                     : checked_conninfo(cfg.database_url, "DATABASE_URL"));
    // Names come from the embedded list; the result only carries versions.
    std::map<int, std::string> names;
    for (const auto& m : embedded_migrations()) {
      names[m.version] = m.name;
    }
    for (int v : r.applied) {
      char number[16];
      std::snprintf(number, sizeof number, "%04d", v);
      std::cout << "applied migration " << number << "_" << names[v] << "\n";
    }
    std::cout << "database at version " << r.current_version << "\n";
    return 0;
  });
}

int user_command(const config& cfg, const std::vector<std::string>& args) {
  static const std::map<std::string, handler> table{
    {"add", user_add}, {"list", user_list}, {"disable", user_disable}, {"quota", user_quota}};
  return dispatch(cfg, args, table, "user", user_usage);
}

int token_command(const config& cfg, const std::vector<std::string>& args) {
  static const std::map<std::string, handler> table{
    {"create", token_create}, {"list", token_list}, {"revoke", token_revoke}};
  return dispatch(cfg, args, table, "token", token_usage);
}

} // namespace portal::db

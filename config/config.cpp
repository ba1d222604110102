#include "config/config.hpp"

#include "config/conninfo.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <map>
#include <sodium.h>
#include <sstream>
#include <toml++/toml.h>
#include <variant>

namespace portal {

namespace {

constexpr std::size_t min_secret_chars = 64;
constexpr std::size_t generated_secret_bytes = 64;
constexpr uint64_t int64_max = std::numeric_limits<int64_t>::max();
// system_clock counts nanoseconds in 64 bits; a longer duration added to
// now() would overflow (~290 years from 1970).
constexpr uint64_t max_duration_seconds = uint64_t{100} * 365 * 24 * 3600;

// ---- messages -----------------------------------------------------------------

// A bad value goes into a one-line message: control characters would break the
// line and a huge value would drown it.
std::string quote_value(std::string_view text) {
  constexpr std::size_t max_chars = 80;
  std::string out = "\"";
  for (char c : text.substr(0, max_chars)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
  }
  if (text.size() > max_chars)
    out += "...";
  return out + "\"";
}

// A pure parser's complaint, before it is known where the value came from.
struct invalid {
  std::string problem;
};

// ---- one configured value -----------------------------------------------------

// A TOML value of a type no setting takes (float, array, date, table).
struct unsupported {
  std::string type;
};

// One value from the file or the environment, with what a message needs to
// name it. Environment values are always text; file values keep their TOML
// type so that `pool_size = "4"` is refused rather than guessed at.
struct raw_value {
  std::string where; // "PORTAL_LISTEN" or "portal.toml:3: listen"
  std::variant<std::string, int64_t, bool, unsupported> value;
  bool from_env = false;
  bool secret = false;

  [[noreturn]] void fail(const std::string& problem) const {
    throw config_error(where + ": " + problem);
  }
  [[noreturn]] void fail(const std::string& problem, std::string_view bad) const {
    if (secret)
      fail(problem);
    fail(problem + ", got " + quote_value(bad));
  }
  [[noreturn]] void wrong_type(const char* expected) const {
    static constexpr const char* names[] = {"a string", "an integer", "a boolean"};
    std::string got = std::holds_alternative<unsupported>(value) ? std::get<unsupported>(value).type
                                                                 : names[value.index()];
    fail(std::string("expected ") + expected + ", got " + got);
  }

  const std::string* text() const { return std::get_if<std::string>(&value); }
};

template <class Parse>
auto checked(const raw_value& r, std::string_view text, Parse parse) {
  try {
    return parse(text);
  } catch (const invalid& e) {
    r.fail(e.problem, text);
  }
}

// ---- pure parsers -------------------------------------------------------------

bool all_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Digits only: no sign, no blanks, no trailing junk; overflow is an error.
uint64_t parse_unsigned(std::string_view s) {
  if (!all_digits(s))
    throw invalid{"expected a non-negative integer"};
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size())
    throw invalid{"integer too large"};
  return n;
}

bool parse_bool(std::string_view s) {
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "1")
    return true;
  if (lower == "false" || lower == "0")
    return false;
  throw invalid{"expected true, false, 1 or 0"};
}

environment parse_environment(std::string_view s) {
  if (s == "development")
    return environment::development;
  if (s == "production")
    return environment::production;
  throw invalid{"expected development or production"};
}

gzip_inflater_choice parse_gzip_inflater(std::string_view s) {
  if (s == "zlib")
    return gzip_inflater_choice::zlib;
  if (s == "isal")
    return gzip_inflater_choice::isal;
  throw invalid{"expected zlib or isal"};
}

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253)
    return false;
  // Not isalnum(): it follows the locale, and host names are ASCII.
  bool chars_ok = std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
  });
  return chars_ok && host.front() != '-' && host.front() != '.';
}

bool valid_ipv4(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool valid_ipv6(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

uint16_t parse_port(std::string_view s) {
  if (!all_digits(s) || s.size() > 5)
    throw invalid{"port must be a number 0-65535"};
  auto port = parse_unsigned(s);
  if (port > 65535)
    throw invalid{"port must be a number 0-65535"};
  return static_cast<uint16_t>(port);
}

// "host:port" or "[v6-address]:port"; port 0 asks the kernel for a free one.
listen_address parse_listen(std::string_view s) {
  listen_address out;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find("]:");
    if (close == std::string_view::npos)
      throw invalid{"expected [ipv6-address]:port"};
    out.host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
    if (!valid_ipv6(out.host))
      throw invalid{"invalid IPv6 address"};
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos)
      throw invalid{"expected host:port"};
    out.host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
    if (out.host.find(':') != std::string::npos)
      throw invalid{"an IPv6 address needs brackets, e.g. [::1]:8080"};
    bool looks_numeric = std::all_of(out.host.begin(), out.host.end(),
                                     [](unsigned char c) { return std::isdigit(c) || c == '.'; });
    if (looks_numeric ? !valid_ipv4(out.host) : !valid_hostname(out.host))
      throw invalid{"invalid host"};
  }
  out.port = parse_port(port);
  return out;
}

std::string format_listen(const listen_address& a) {
  auto host = a.host.find(':') == std::string::npos ? a.host : "[" + a.host + "]";
  return host + ":" + std::to_string(a.port);
}

// ---- typed views of a raw value ------------------------------------------------

uint64_t to_unsigned(const raw_value& r, uint64_t lo, uint64_t hi) {
  uint64_t n = 0;
  if (auto* i = std::get_if<int64_t>(&r.value)) {
    if (*i < 0)
      r.fail("must not be negative", std::to_string(*i));
    n = static_cast<uint64_t>(*i);
  } else if (r.from_env && r.text()) {
    n = checked(r, *r.text(), parse_unsigned);
  } else {
    r.wrong_type("an integer");
  }
  if (n < lo || n > hi)
    r.fail("must be between " + std::to_string(lo) + " and " + std::to_string(hi),
           std::to_string(n));
  return n;
}

bool to_bool(const raw_value& r) {
  if (auto* b = std::get_if<bool>(&r.value))
    return *b;
  if (r.from_env && r.text())
    return checked(r, *r.text(), parse_bool);
  r.wrong_type("a boolean");
}

const std::string& to_string(const raw_value& r) {
  if (!r.text())
    r.wrong_type("a string");
  return *r.text();
}

std::string to_nonempty_string(const raw_value& r) {
  const auto& s = to_string(r);
  if (s.empty())
    r.fail("must not be empty");
  return s;
}

// Whole seconds as an integer (the env var names say _SECONDS), or a duration
// string such as "2m" (SPEC §11).
std::chrono::seconds to_seconds(const raw_value& r, uint64_t lo, uint64_t hi) {
  if (r.text() && !all_digits(*r.text())) {
    auto d = checked(r, *r.text(), [](std::string_view s) {
      try {
        return parse_duration(std::string(s));
      } catch (const config_error&) {
        throw invalid{"expected seconds or a duration such as 30s, 15m, 12h"};
      }
    });
    auto n = static_cast<uint64_t>(d.count());
    if (n < lo || n > hi)
      r.fail("must be between " + std::to_string(lo) + " and " + std::to_string(hi) + " seconds",
             *r.text());
    return d;
  }
  return std::chrono::seconds(to_unsigned(r, lo, hi));
}

listen_address to_listen(const raw_value& r) {
  return checked(r, to_string(r), parse_listen);
}

// ---- database connection strings ------------------------------------------------

std::string to_conninfo(const raw_value& r) {
  const auto& s = to_string(r);
  if (!s.empty() && !valid_conninfo(s))
    r.fail("not a valid libpq connection string (postgresql://... URL or keyword=value list)");
  return s;
}

// Returns a warning when insecure is tolerated; throws when it is not.
std::optional<std::string> check_sslmode(const char* name, const std::string& url,
                                         bool allow_insecure) {
  if (!valid_conninfo(url))
    throw config_error(std::string(name) + ": not a valid libpq connection string");
  auto mode = conninfo_value(url, "sslmode");
  if (mode == "verify-full" || mode == "verify-ca")
    return std::nullopt;
  std::string got = mode ? "sslmode=" + *mode : "no sslmode (libpq default: prefer)";
  if (!allow_insecure)
    throw config_error(std::string(name) + " has " + got +
                       "; production requires sslmode=verify-full or verify-ca "
                       "(set PORTAL_DB_ALLOW_INSECURE=1 to accept an insecure connection)");
  return std::string(name) + " has " + got +
         ": the database connection is insecure (not verified TLS); accepted because "
         "PORTAL_DB_ALLOW_INSECURE is set";
}

// ---- the settings ------------------------------------------------------------------

using apply_fn = void (*)(config&, const raw_value&);

struct setting {
  std::string_view key; // dotted TOML path
  std::string_view env;
  bool secret;
  apply_fn apply;
};

const std::vector<setting>& settings() {
  static const std::vector<setting> all = {
    {"env", "PORTAL_ENV", false,
     [](config& c, const raw_value& v) { c.env = checked(v, to_string(v), parse_environment); }},
    {"listen", "PORTAL_LISTEN", false,
     [](config& c, const raw_value& v) { c.listen = to_listen(v); }},
    {"metrics_listen", "PORTAL_METRICS_LISTEN", false,
     [](config& c, const raw_value& v) { c.metrics_listen = to_listen(v); }},
    {"data_dir", "PORTAL_DATA_DIR", false,
     [](config& c, const raw_value& v) { c.data_dir = to_nonempty_string(v); }},
    {"trust_proxy", "PORTAL_TRUST_PROXY", false,
     [](config& c, const raw_value& v) { c.trust_proxy = to_bool(v); }},
    {"gzip_inflater", "PORTAL_GZIP_INFLATER", false,
     [](config& c, const raw_value& v) {
       c.gzip_inflater = checked(v, to_string(v), parse_gzip_inflater);
     }},
    {"drain_seconds", "PORTAL_DRAIN_SECONDS", false,
     [](config& c, const raw_value& v) { c.drain = to_seconds(v, 0, 3600); }},
    {"header_timeout_seconds", "PORTAL_HEADER_TIMEOUT_SECONDS", false,
     [](config& c, const raw_value& v) { c.header_timeout = to_seconds(v, 1, 3600); }},
    {"body_idle_timeout_seconds", "PORTAL_BODY_IDLE_TIMEOUT_SECONDS", false,
     [](config& c, const raw_value& v) { c.body_idle_timeout = to_seconds(v, 1, 3600); }},
    {"reaper_interval_seconds", "PORTAL_REAPER_INTERVAL_SECONDS", false,
     [](config& c, const raw_value& v) { c.reaper_interval = to_seconds(v, 1, 86400); }},
    {"retention_days", "PORTAL_RETENTION_DAYS", false,
     [](config& c, const raw_value& v) {
       auto days = static_cast<unsigned>(to_unsigned(v, 0, 36500));
       c.retention_days = days == 0 ? std::nullopt : std::optional<unsigned>(days);
     }},
    {"tus.expiry", "PORTAL_TUS_EXPIRY", false,
     [](config& c, const raw_value& v) { c.tus_expiry = to_seconds(v, 60, 365 * 86400); }},
    {"tus.sync_bytes", "PORTAL_TUS_SYNC_BYTES", false,
     [](config& c, const raw_value& v) {
       c.tus_sync_bytes = to_unsigned(v, uint64_t{1} << 20, uint64_t{1} << 40);
     }},
    {"tus.session_idle_seconds", "PORTAL_TUS_SESSION_IDLE_SECONDS", false,
     [](config& c, const raw_value& v) { c.tus_session_idle = to_seconds(v, 1, 3600); }},
    {"machine_id", "FLY_MACHINE_ID", false,
     [](config& c, const raw_value& v) { c.machine_id = to_string(v); }},
    {"secret_key_base", "SECRET_KEY_BASE", true,
     [](config& c, const raw_value& v) { c.secret_key_base = to_string(v); }},
    {"database.url", "DATABASE_URL", true,
     [](config& c, const raw_value& v) { c.database_url = to_conninfo(v); }},
    {"database.direct_url", "DATABASE_DIRECT_URL", true,
     [](config& c, const raw_value& v) { c.database_direct_url = to_conninfo(v); }},
    {"database.allow_insecure", "PORTAL_DB_ALLOW_INSECURE", false,
     [](config& c, const raw_value& v) { c.db_allow_insecure = to_bool(v); }},
    {"database.pool_size", "PORTAL_DB_POOL_SIZE", false,
     [](config& c, const raw_value& v) {
       c.db_pool_size = static_cast<unsigned>(to_unsigned(v, 1, 1024));
     }},
    {"database.deadline_ms", "PORTAL_DB_DEADLINE_MS", false,
     [](config& c, const raw_value& v) {
       c.db_deadline = std::chrono::milliseconds(to_unsigned(v, 1, 600000));
     }},
    {"limits.max_upload_bytes", "PORTAL_MAX_UPLOAD_BYTES", false,
     [](config& c, const raw_value& v) { c.max_upload_bytes = to_unsigned(v, 1, int64_max); }},
    {"limits.min_free_bytes", "PORTAL_MIN_FREE_BYTES", false,
     [](config& c, const raw_value& v) { c.min_free_bytes = to_unsigned(v, 0, int64_max); }},
    {"limits.chunk_bytes", "PORTAL_CHUNK_BYTES", false,
     [](config& c, const raw_value& v) {
       c.chunk_bytes = static_cast<std::size_t>(to_unsigned(v, 1024, 64 << 20));
     }},
    {"limits.credit_window", "PORTAL_CREDIT_WINDOW", false,
     [](config& c, const raw_value& v) {
       c.credit_window = static_cast<std::size_t>(to_unsigned(v, 1, 1024));
     }},
    {"limits.buffer_budget_bytes", "PORTAL_BUFFER_BUDGET_BYTES", false,
     [](config& c, const raw_value& v) {
       c.buffer_budget_bytes = static_cast<std::size_t>(to_unsigned(v, 1 << 20, int64_max));
     }},
    {"limits.storage_writers", "PORTAL_STORAGE_WRITERS", false,
     [](config& c, const raw_value& v) {
       c.storage_writers = static_cast<unsigned>(to_unsigned(v, 1, 64));
     }},
    {"limits.uploads_per_user", "PORTAL_UPLOADS_PER_USER", false,
     [](config& c, const raw_value& v) {
       c.uploads_per_user = static_cast<unsigned>(to_unsigned(v, 1, 100000));
     }},
    {"limits.uploads_total", "PORTAL_UPLOADS_TOTAL", false,
     [](config& c, const raw_value& v) {
       c.uploads_total = static_cast<unsigned>(to_unsigned(v, 1, 1000000));
     }},
    {"limits.user_quota_bytes", "PORTAL_USER_QUOTA_BYTES", false,
     [](config& c, const raw_value& v) { c.user_quota_bytes = to_unsigned(v, 0, int64_max); }},
    {"limits.upload_starts_per_minute", "PORTAL_UPLOAD_STARTS_PER_MINUTE", false,
     [](config& c, const raw_value& v) {
       c.upload_starts_per_minute = static_cast<unsigned>(to_unsigned(v, 1, 1000000));
     }},
    {"limits.logins_per_minute", "PORTAL_LOGINS_PER_MINUTE", false,
     [](config& c, const raw_value& v) {
       c.logins_per_minute = static_cast<unsigned>(to_unsigned(v, 1, 1000000));
     }},
    {"sessions.idle_timeout", "PORTAL_SESSION_IDLE_TIMEOUT", false,
     [](config& c, const raw_value& v) { c.session_idle = to_seconds(v, 1, 366 * 86400); }},
    {"sessions.max_age", "PORTAL_SESSION_MAX_AGE", false,
     [](config& c, const raw_value& v) { c.session_max_age = to_seconds(v, 1, 366 * 86400); }},
    {"tls.cert", "PORTAL_TLS_CERT", false,
     [](config& c, const raw_value& v) { c.tls_cert = to_string(v); }},
    {"tls.key", "PORTAL_TLS_KEY", false,
     [](config& c, const raw_value& v) { c.tls_key = to_string(v); }},
  };
  return all;
}

const setting* find_setting(std::string_view key) {
  for (const auto& s : settings())
    if (s.key == key)
      return &s;
  return nullptr;
}

bool is_known_table(std::string_view key) {
  std::string prefix = std::string(key) + ".";
  return std::any_of(settings().begin(), settings().end(),
                     [&](const setting& s) { return s.key.substr(0, prefix.size()) == prefix; });
}

std::string last_component(std::string_view key) {
  auto dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

// Catches the common slip of putting a key in the wrong table.
std::string suggestion_for(std::string_view key) {
  auto name = last_component(key);
  for (const auto& s : settings())
    if (s.key != key && last_component(s.key) == name)
      return " (did you mean " + std::string(s.key) + "?)";
  return "";
}

// ---- the file -------------------------------------------------------------------------

std::string location(const std::string& file, const toml::node& node, const std::string& key) {
  return file + ":" + std::to_string(node.source().begin.line) + ": " + key;
}

raw_value from_toml(const toml::node& node, std::string where, bool secret) {
  raw_value r{std::move(where), std::string(), false, secret};
  if (node.is_string())
    r.value = node.as_string()->get();
  else if (node.is_integer())
    r.value = *node.value<int64_t>();
  else if (node.is_boolean())
    r.value = *node.value<bool>();
  else if (node.is_floating_point())
    r.value = unsupported{"a float"};
  else if (node.is_array())
    r.value = unsupported{"an array"};
  else if (node.is_table())
    r.value = unsupported{"a table"};
  else
    r.value = unsupported{"a date/time"};
  return r;
}

// Flattens the file to dotted keys, refusing any key no setting knows.
void collect(const toml::table& tbl, const std::string& prefix, const std::string& file,
             std::map<std::string, raw_value>& out) {
  for (auto&& [k, node] : tbl) {
    std::string key = prefix + std::string(k.str());
    if (const auto* s = find_setting(key)) {
      out.emplace(key, from_toml(node, location(file, node, key), s->secret));
    } else if (node.is_table() && is_known_table(key)) {
      collect(*node.as_table(), key + ".", file, out);
    } else {
      throw config_error(location(file, node, key) + ": unknown key" + suggestion_for(key));
    }
  }
}

void apply_file(config& cfg, const std::filesystem::path& path) {
  std::string file = path.string();
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    auto line = e.source().begin.line;
    // Line 0 means the file itself could not be read.
    std::string where = line == 0 ? file : file + ":" + std::to_string(line);
    throw config_error(where + ": " + std::string(e.description()));
  }
  std::map<std::string, raw_value> values;
  collect(root, "", file, values);
  for (const auto& s : settings())
    if (auto it = values.find(std::string(s.key)); it != values.end())
      s.apply(cfg, it->second);
}

// An empty variable counts as unset, so `PORTAL_TLS_CERT=` in a compose file
// does not turn into a path.
void apply_env(config& cfg, const env_lookup& env) {
  for (const auto& s : settings()) {
    std::string name(s.env);
    auto text = env(name);
    if (!text || text->empty())
      continue;
    s.apply(cfg, raw_value{name, *text, true, s.secret});
  }
}

// ---- rules across settings ----------------------------------------------------------

void check_combinations(const config& cfg) {
  if (cfg.tls_cert.empty() != cfg.tls_key.empty())
    throw config_error(
      "PORTAL_TLS_CERT and PORTAL_TLS_KEY (tls.cert, tls.key) must be set together");
  if (cfg.metrics_listen && cfg.metrics_listen->port != 0 &&
      cfg.metrics_listen->port == cfg.listen.port && cfg.metrics_listen->host == cfg.listen.host)
    throw config_error("PORTAL_METRICS_LISTEN must differ from PORTAL_LISTEN, got " +
                       quote_value(format_listen(cfg.listen)) + " for both");
}

std::string random_secret() {
  if (sodium_init() < 0)
    throw config_error("libsodium could not be initialised to generate SECRET_KEY_BASE");
  unsigned char bytes[generated_secret_bytes];
  randombytes_buf(bytes, sizeof bytes);
  char hex[generated_secret_bytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  sodium_memzero(bytes, sizeof bytes);
  std::string out(hex);
  sodium_memzero(hex, sizeof hex);
  return out;
}

void check_production_secret(const config& cfg) {
  if (cfg.secret_key_generated || cfg.secret_key_base.empty())
    throw config_error("SECRET_KEY_BASE is required in production (at least 64 characters; "
                       "generate one with: openssl rand -hex 64)");
  if (cfg.secret_key_base.size() < min_secret_chars)
    throw config_error("SECRET_KEY_BASE is too short for production: at least 64 characters "
                       "are required (generate one with: openssl rand -hex 64)");
}

void check_production_tls_files(const config& cfg) {
  std::error_code ec;
  if (!cfg.tls_cert.empty() && !std::filesystem::is_regular_file(cfg.tls_cert, ec))
    throw config_error("PORTAL_TLS_CERT: no such file, got " + quote_value(cfg.tls_cert.string()));
  if (!cfg.tls_key.empty() && !std::filesystem::is_regular_file(cfg.tls_key, ec))
    throw config_error("PORTAL_TLS_KEY: no such file, got " + quote_value(cfg.tls_key.string()));
}

std::string secret_label(const config& cfg) {
  if (cfg.secret_key_generated)
    return "[generated]";
  return cfg.secret_key_base.empty() ? "" : "[redacted]";
}

} // namespace

// ---- public ---------------------------------------------------------------------------

env_lookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str()))
      return std::string(v);
    return std::nullopt;
  };
}

std::chrono::seconds parse_duration(const std::string& text) {
  const std::string hint = "invalid duration " + quote_value(text) +
                           " (expected a positive integer and a unit: 30s, 15m, 12h, 30d)";
  if (text.size() < 2)
    throw config_error(hint);
  uint64_t unit = 0;
  switch (text.back()) {
  case 's':
    unit = 1;
    break;
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86400;
    break;
  default:
    throw config_error(hint);
  }
  uint64_t n = 0;
  try {
    n = parse_unsigned(std::string_view(text).substr(0, text.size() - 1));
  } catch (const invalid&) {
    throw config_error(hint);
  }
  if (n == 0)
    throw config_error(hint);
  if (n > max_duration_seconds / unit)
    throw config_error("duration " + quote_value(text) + " is too long (at most 100 years)");
  return std::chrono::seconds(static_cast<int64_t>(n * unit));
}

config load_config(const std::optional<std::filesystem::path>& file, const env_lookup& env) {
  config cfg;
  if (file)
    apply_file(cfg, *file);
  apply_env(cfg, env);
  check_combinations(cfg);
  if (cfg.secret_key_base.empty()) {
    cfg.secret_key_base = random_secret();
    cfg.secret_key_generated = true;
  }
  return cfg;
}

std::vector<std::string> check_serve_rules(const config& cfg) {
  std::vector<std::string> warnings;
  if (cfg.database_url.empty())
    throw config_error("DATABASE_URL is required (a libpq URL or keyword=value string)");
  if (cfg.env != environment::production)
    return warnings;
  check_production_secret(cfg);
  check_production_tls_files(cfg);
  if (auto w = check_sslmode("DATABASE_URL", cfg.database_url, cfg.db_allow_insecure))
    warnings.push_back(*w);
  if (!cfg.database_direct_url.empty())
    if (auto w =
          check_sslmode("DATABASE_DIRECT_URL", cfg.database_direct_url, cfg.db_allow_insecure))
      warnings.push_back(*w);
  return warnings;
}

std::string render_redacted(const config& cfg) {
  auto i64 = [](auto n) { return static_cast<int64_t>(n); };
  std::vector<std::string> unset;

  toml::table root{
    {"env", cfg.env == environment::production ? "production" : "development"},
    {"listen", format_listen(cfg.listen)},
    {"data_dir", cfg.data_dir.string()},
    {"trust_proxy", cfg.trust_proxy},
    {"gzip_inflater", cfg.gzip_inflater == gzip_inflater_choice::isal ? "isal" : "zlib"},
    {"drain_seconds", i64(cfg.drain.count())},
    {"header_timeout_seconds", i64(cfg.header_timeout.count())},
    {"body_idle_timeout_seconds", i64(cfg.body_idle_timeout.count())},
    {"reaper_interval_seconds", i64(cfg.reaper_interval.count())},
    {"secret_key_base", secret_label(cfg)},
  };
  if (cfg.metrics_listen)
    root.insert("metrics_listen", format_listen(*cfg.metrics_listen));
  else
    unset.push_back("metrics_listen");
  if (cfg.retention_days)
    root.insert("retention_days", i64(*cfg.retention_days));
  else
    unset.push_back("retention_days");

  root.insert("tus", toml::table{
                       {"expiry", i64(cfg.tus_expiry.count())},
                       {"sync_bytes", i64(cfg.tus_sync_bytes)},
                       {"session_idle_seconds", i64(cfg.tus_session_idle.count())},
                     });
  if (!cfg.machine_id.empty())
    root.insert("machine_id", cfg.machine_id);

  toml::table database{
    {"allow_insecure", cfg.db_allow_insecure},
    {"pool_size", i64(cfg.db_pool_size)},
    {"deadline_ms", i64(cfg.db_deadline.count())},
  };
  if (!cfg.database_url.empty())
    database.insert("url", redact_conninfo(cfg.database_url));
  else
    unset.push_back("database.url");
  if (!cfg.database_direct_url.empty())
    database.insert("direct_url", redact_conninfo(cfg.database_direct_url));
  else
    unset.push_back("database.direct_url");
  root.insert("database", std::move(database));

  root.insert("limits", toml::table{
                          {"max_upload_bytes", i64(cfg.max_upload_bytes)},
                          {"min_free_bytes", i64(cfg.min_free_bytes)},
                          {"chunk_bytes", i64(cfg.chunk_bytes)},
                          {"credit_window", i64(cfg.credit_window)},
                          {"buffer_budget_bytes", i64(cfg.buffer_budget_bytes)},
                          {"storage_writers", i64(cfg.storage_writers)},
                          {"uploads_per_user", i64(cfg.uploads_per_user)},
                          {"uploads_total", i64(cfg.uploads_total)},
                          {"upload_starts_per_minute", i64(cfg.upload_starts_per_minute)},
                          {"user_quota_bytes", i64(cfg.user_quota_bytes)},
                          {"logins_per_minute", i64(cfg.logins_per_minute)},
                        });
  root.insert("sessions", toml::table{
                            {"idle_timeout", i64(cfg.session_idle.count())},
                            {"max_age", i64(cfg.session_max_age.count())},
                          });
  if (!cfg.tls_cert.empty())
    root.insert("tls", toml::table{{"cert", cfg.tls_cert.string()}, {"key", cfg.tls_key.string()}});
  else
    unset.push_back("tls.cert, tls.key");

  std::ostringstream out;
  out << "# effective configuration; secrets redacted\n";
  if (!unset.empty()) {
    out << "# unset:";
    for (std::size_t i = 0; i < unset.size(); ++i)
      out << (i ? ", " : " ") << unset[i];
    out << "\n";
  }
  out << "\n" << root << "\n";
  return out.str();
}

} // namespace portal

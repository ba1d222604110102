#include "config/config.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <unistd.h>

using namespace portal;
using Catch::Matchers::Contains;

namespace {

using vars = std::map<std::string, std::string>;

env_lookup env_of(vars m) {
  return [m = std::move(m)](const std::string& name) -> std::optional<std::string> {
    auto it = m.find(name);
    if (it == m.end())
      return std::nullopt;
    return it->second;
  };
}

// A TOML file that removes itself; unique per process and call so parallel
// test runs do not collide.
struct temp_toml {
  std::filesystem::path path;
  explicit temp_toml(const std::string& text) {
    static std::atomic<int> counter{0};
    path =
      std::filesystem::temp_directory_path() / ("portal-config-test-" + std::to_string(::getpid()) +
                                                "-" + std::to_string(counter++) + ".toml");
    std::ofstream(path) << text;
  }
  ~temp_toml() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

const std::string good_secret(64, 'k');
const std::string db_password = "hunter2-Sup3rS3cret";
const std::string verified_url =
  "postgresql://portal:" + db_password + "@db.internal:5432/portal?sslmode=verify-full";

vars production(vars extra = {}) {
  vars v{
    {"PORTAL_ENV", "production"}, {"SECRET_KEY_BASE", good_secret}, {"DATABASE_URL", verified_url}};
  for (auto& [k, val] : extra)
    v[k] = val;
  return v;
}

config load_env(const vars& v) {
  return load_config(std::nullopt, env_of(v));
}

// The message of the config_error that loading throws.
std::string load_error(const vars& v, const std::optional<std::filesystem::path>& file = {}) {
  try {
    load_config(file, env_of(v));
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL("expected config_error");
  return "";
}

std::string serve_error(const vars& v) {
  auto cfg = load_env(v);
  try {
    check_serve_rules(cfg);
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL("expected check_serve_rules to refuse");
  return "";
}

bool one_line(const std::string& s) {
  return s.find('\n') == std::string::npos;
}

} // namespace

TEST_CASE("defaults match SPEC section 3", "[config]") {
  auto cfg = load_env({});
  CHECK(cfg.env == environment::development);
  CHECK(cfg.listen.host == "127.0.0.1");
  CHECK(cfg.listen.port == 8080);
  CHECK_FALSE(cfg.metrics_listen);
  CHECK(cfg.data_dir == "./var/data");
  CHECK(cfg.max_upload_bytes == 1073741824u);
  CHECK_FALSE(cfg.trust_proxy);
  CHECK(cfg.drain == std::chrono::seconds(30));
  CHECK(cfg.uploads_per_user == 8);
  CHECK(cfg.uploads_total == 256);
  CHECK(cfg.upload_starts_per_minute == 60);
  CHECK(cfg.user_quota_bytes == 0);
  CHECK_FALSE(cfg.retention_days);
  CHECK(cfg.reaper_interval == std::chrono::seconds(300));
  CHECK(cfg.database_url.empty());
  CHECK(cfg.gzip_inflater == gzip_inflater_choice::zlib); // gzip -t's strictness (SPEC §11)
}

TEST_CASE("a missing secret is generated and flagged", "[config]") {
  auto a = load_env({});
  auto b = load_env({});
  CHECK(a.secret_key_generated);
  CHECK(a.secret_key_base.size() == 128);
  CHECK(a.secret_key_base.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a.secret_key_base != b.secret_key_base);

  auto given = load_env({{"SECRET_KEY_BASE", good_secret}});
  CHECK_FALSE(given.secret_key_generated);
  CHECK(given.secret_key_base == good_secret);
}

TEST_CASE("every environment variable is applied", "[config]") {
  auto cfg = load_env({{"DATABASE_URL", "host=a"},
                       {"DATABASE_DIRECT_URL", "host=b"},
                       {"PORTAL_ENV", "production"},
                       {"PORTAL_LISTEN", "0.0.0.0:9000"},
                       {"PORTAL_METRICS_LISTEN", "[::1]:9091"},
                       {"PORTAL_DATA_DIR", "/data"},
                       {"PORTAL_MAX_UPLOAD_BYTES", "5000"},
                       {"PORTAL_TRUST_PROXY", "true"},
                       {"PORTAL_DB_ALLOW_INSECURE", "1"},
                       {"PORTAL_DRAIN_SECONDS", "45"},
                       {"PORTAL_RETENTION_DAYS", "7"},
                       {"PORTAL_TLS_CERT", "/c.pem"},
                       {"PORTAL_TLS_KEY", "/k.pem"},
                       {"PORTAL_UPLOADS_PER_USER", "3"},
                       {"PORTAL_UPLOADS_TOTAL", "30"},
                       {"PORTAL_UPLOAD_STARTS_PER_MINUTE", "12"},
                       {"PORTAL_DB_POOL_SIZE", "9"},
                       {"PORTAL_CHUNK_BYTES", "65536"},
                       {"PORTAL_CREDIT_WINDOW", "2"}});
  CHECK(cfg.database_url == "host=a");
  CHECK(cfg.database_direct_url == "host=b");
  CHECK(cfg.env == environment::production);
  CHECK(cfg.listen.host == "0.0.0.0");
  CHECK(cfg.listen.port == 9000);
  REQUIRE(cfg.metrics_listen);
  CHECK(cfg.metrics_listen->host == "::1");
  CHECK(cfg.metrics_listen->port == 9091);
  CHECK(cfg.data_dir == "/data");
  CHECK(cfg.max_upload_bytes == 5000);
  CHECK(cfg.trust_proxy);
  CHECK(cfg.db_allow_insecure);
  CHECK(cfg.drain == std::chrono::seconds(45));
  CHECK(cfg.retention_days == 7u);
  CHECK(cfg.tls_cert == "/c.pem");
  CHECK(cfg.tls_key == "/k.pem");
  CHECK(cfg.uploads_per_user == 3);
  CHECK(cfg.uploads_total == 30);
  CHECK(cfg.upload_starts_per_minute == 12);
  CHECK(cfg.db_pool_size == 9);
  CHECK(cfg.chunk_bytes == 65536);
  CHECK(cfg.credit_window == 2);
}

TEST_CASE("listen addresses", "[config]") {
  SECTION("port 0 means an ephemeral port") {
    auto cfg = load_env({{"PORTAL_LISTEN", "127.0.0.1:0"}});
    CHECK(cfg.listen.port == 0);
  }
  SECTION("hostnames and bracketed IPv6") {
    CHECK(load_env({{"PORTAL_LISTEN", "localhost:80"}}).listen.host == "localhost");
    auto v6 = load_env({{"PORTAL_LISTEN", "[::]:8080"}}).listen;
    CHECK(v6.host == "::");
    CHECK(v6.port == 8080);
  }
  SECTION("bad addresses name the variable and the value") {
    for (std::string bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                            "127.0.0.1:80x", ":8080", "::1:8080", "[::1]8080", "[nothost]:80",
                            "999.1.1.1:80", "bad host:80", "127.0.0.1:+80"}) {
      INFO(bad);
      auto msg = load_error({{"PORTAL_LISTEN", bad}});
      CHECK_THAT(msg, Contains("PORTAL_LISTEN"));
      CHECK_THAT(msg, Contains(bad));
      CHECK(one_line(msg));
    }
  }
  SECTION("metrics listener must not collide with the main one") {
    auto msg = load_error(
      {{"PORTAL_LISTEN", "127.0.0.1:8080"}, {"PORTAL_METRICS_LISTEN", "127.0.0.1:8080"}});
    CHECK_THAT(msg, Contains("PORTAL_METRICS_LISTEN"));
    CHECK_NOTHROW(
      load_env({{"PORTAL_LISTEN", "127.0.0.1:0"}, {"PORTAL_METRICS_LISTEN", "127.0.0.1:0"}}));
  }
}

TEST_CASE("tus settings and the machine id", "[config]") {
  auto defaults = load_env({});
  CHECK(defaults.tus_expiry == std::chrono::hours(24)); // SPEC §5.2
  CHECK(defaults.tus_sync_bytes == uint64_t{64} << 20);
  CHECK(defaults.tus_session_idle == std::chrono::seconds(60));
  CHECK(defaults.machine_id.empty());
  auto cfg = load_env({{"PORTAL_TUS_EXPIRY", "12h"},
                       {"PORTAL_TUS_SYNC_BYTES", "8388608"},
                       {"PORTAL_TUS_SESSION_IDLE_SECONDS", "5"},
                       {"FLY_MACHINE_ID", "e784079b449483"}});
  CHECK(cfg.tus_expiry == std::chrono::hours(12));
  CHECK(cfg.tus_sync_bytes == 8388608u);
  CHECK(cfg.tus_session_idle == std::chrono::seconds(5));
  CHECK(cfg.machine_id == "e784079b449483");
  CHECK_THAT(load_error({{"PORTAL_TUS_EXPIRY", "30s"}}), Contains("PORTAL_TUS_EXPIRY"));
  CHECK_THAT(load_error({{"PORTAL_TUS_SYNC_BYTES", "1000"}}), Contains("PORTAL_TUS_SYNC_BYTES"));
}

TEST_CASE("integers are parsed strictly", "[config]") {
  for (std::string bad :
       {"", " 5", "5 ", "-1", "+5", "5k", "0x10", "1e9", "1.5", "99999999999999999999999"}) {
    if (bad.empty())
      continue; // empty counts as unset
    INFO(bad);
    auto msg = load_error({{"PORTAL_MAX_UPLOAD_BYTES", bad}});
    CHECK_THAT(msg, Contains("PORTAL_MAX_UPLOAD_BYTES"));
    CHECK_THAT(msg, Contains(bad));
  }
  SECTION("ranges") {
    CHECK_THAT(load_error({{"PORTAL_MAX_UPLOAD_BYTES", "0"}}), Contains("between 1 and"));
    CHECK_THAT(load_error({{"PORTAL_MAX_UPLOAD_BYTES", "9223372036854775808"}}),
               Contains("PORTAL_MAX_UPLOAD_BYTES"));
    CHECK(load_env({{"PORTAL_MAX_UPLOAD_BYTES", "9223372036854775807"}}).max_upload_bytes ==
          9223372036854775807u);
    CHECK_THAT(load_error({{"PORTAL_DB_POOL_SIZE", "0"}}), Contains("PORTAL_DB_POOL_SIZE"));
    CHECK_THAT(load_error({{"PORTAL_UPLOADS_PER_USER", "0"}}), Contains("PORTAL_UPLOADS_PER_USER"));
    CHECK_THAT(load_error({{"PORTAL_UPLOADS_TOTAL", "4294967296"}}),
               Contains("PORTAL_UPLOADS_TOTAL"));
    CHECK_THAT(load_error({{"PORTAL_CHUNK_BYTES", "10"}}), Contains("PORTAL_CHUNK_BYTES"));
    CHECK_THAT(load_error({{"PORTAL_CREDIT_WINDOW", "0"}}), Contains("PORTAL_CREDIT_WINDOW"));
    CHECK_THAT(load_error({{"PORTAL_UPLOAD_STARTS_PER_MINUTE", "x"}}),
               Contains("PORTAL_UPLOAD_STARTS_PER_MINUTE"));
  }
  SECTION("retention 0 turns retention off") {
    CHECK_FALSE(load_env({{"PORTAL_RETENTION_DAYS", "0"}}).retention_days);
    CHECK_THAT(load_error({{"PORTAL_RETENTION_DAYS", "-3"}}), Contains("PORTAL_RETENTION_DAYS"));
  }
  SECTION("drain accepts seconds or a duration") {
    CHECK(load_env({{"PORTAL_DRAIN_SECONDS", "0"}}).drain == std::chrono::seconds(0));
    CHECK(load_env({{"PORTAL_DRAIN_SECONDS", "2m"}}).drain == std::chrono::seconds(120));
    CHECK_THAT(load_error({{"PORTAL_DRAIN_SECONDS", "30x"}}), Contains("PORTAL_DRAIN_SECONDS"));
    CHECK_THAT(load_error({{"PORTAL_DRAIN_SECONDS", "2h"}}), Contains("between 0 and 3600"));
  }
}

TEST_CASE("booleans and the environment name", "[config]") {
  CHECK(load_env({{"PORTAL_TRUST_PROXY", "1"}}).trust_proxy);
  CHECK(load_env({{"PORTAL_TRUST_PROXY", "TRUE"}}).trust_proxy);
  CHECK_FALSE(load_env({{"PORTAL_TRUST_PROXY", "0"}}).trust_proxy);
  CHECK_FALSE(load_env({{"PORTAL_TRUST_PROXY", "false"}}).trust_proxy);
  for (std::string bad : {"yes", "2", "on", "truee"}) {
    INFO(bad);
    auto msg = load_error({{"PORTAL_TRUST_PROXY", bad}});
    CHECK_THAT(msg, Contains("PORTAL_TRUST_PROXY"));
    CHECK_THAT(msg, Contains(bad));
  }
  CHECK_THAT(load_error({{"PORTAL_DB_ALLOW_INSECURE", "yes"}}),
             Contains("PORTAL_DB_ALLOW_INSECURE"));
  auto msg = load_error({{"PORTAL_ENV", "prod"}});
  CHECK_THAT(msg, Contains("PORTAL_ENV"));
  CHECK_THAT(msg, Contains("prod"));
}

TEST_CASE("the gzip inflater", "[config]") {
  CHECK(load_env({{"PORTAL_GZIP_INFLATER", "isal"}}).gzip_inflater == gzip_inflater_choice::isal);
  CHECK(load_env({{"PORTAL_GZIP_INFLATER", "zlib"}}).gzip_inflater == gzip_inflater_choice::zlib);
  for (std::string bad : {"ISAL", "zlib-ng", "igzip", " isal"}) {
    INFO(bad);
    auto msg = load_error({{"PORTAL_GZIP_INFLATER", bad}});
    CHECK_THAT(msg, Contains("PORTAL_GZIP_INFLATER"));
    CHECK_THAT(msg, Contains("zlib or isal"));
  }
  CHECK_THAT(render_redacted(load_env({{"PORTAL_GZIP_INFLATER", "isal"}})),
             Contains("gzip_inflater = 'isal'"));
}

TEST_CASE("parse_duration", "[config]") {
  using std::chrono::seconds;
  CHECK(parse_duration("30s") == seconds(30));
  CHECK(parse_duration("15m") == seconds(15 * 60));
  CHECK(parse_duration("12h") == seconds(12 * 3600));
  CHECK(parse_duration("30d") == seconds(30 * 86400));
  for (std::string bad : {"", "s", "30", "0s", "-5m", "+5m", "1.5h", "5 m", " 5m", "5M", "5w",
                          "5mm", "10d5h", "99999999999999999999s", "999999999d"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_duration(bad), config_error);
  }
}

TEST_CASE("the TOML file", "[config]") {
  SECTION("every key is read") {
    temp_toml f(R"(
env = "production"
listen = "[::1]:0"
metrics_listen = "127.0.0.1:9091"
data_dir = "/srv/data"
trust_proxy = true
drain_seconds = "1m"
header_timeout_seconds = 5
body_idle_timeout_seconds = 20
retention_days = 90
secret_key_base = "from-file-secret"

[database]
url = "host=db sslmode=verify-ca"
direct_url = "host=db-direct sslmode=verify-ca"
allow_insecure = false
pool_size = 12
deadline_ms = 1500

[limits]
max_upload_bytes = 1000000
uploads_per_user = 2
uploads_total = 20
upload_starts_per_minute = 5
chunk_bytes = 131072
credit_window = 8
min_free_bytes = 0

[tls]
cert = "/etc/tls/cert.pem"
key = "/etc/tls/key.pem"
)");
    auto cfg = load_config(f.path, env_of({}));
    CHECK(cfg.env == environment::production);
    CHECK(cfg.listen.host == "::1");
    CHECK(cfg.listen.port == 0);
    CHECK(cfg.metrics_listen->port == 9091);
    CHECK(cfg.data_dir == "/srv/data");
    CHECK(cfg.trust_proxy);
    CHECK(cfg.drain == std::chrono::seconds(60));
    CHECK(cfg.header_timeout == std::chrono::seconds(5));
    CHECK(cfg.body_idle_timeout == std::chrono::seconds(20));
    CHECK(cfg.retention_days == 90u);
    CHECK(cfg.secret_key_base == "from-file-secret");
    CHECK_FALSE(cfg.secret_key_generated);
    CHECK(cfg.database_url == "host=db sslmode=verify-ca");
    CHECK(cfg.database_direct_url == "host=db-direct sslmode=verify-ca");
    CHECK(cfg.db_pool_size == 12);
    CHECK(cfg.db_deadline == std::chrono::milliseconds(1500));
    CHECK(cfg.max_upload_bytes == 1000000);
    CHECK(cfg.uploads_per_user == 2);
    CHECK(cfg.uploads_total == 20);
    CHECK(cfg.upload_starts_per_minute == 5);
    CHECK(cfg.chunk_bytes == 131072);
    CHECK(cfg.credit_window == 8);
    CHECK(cfg.min_free_bytes == 0);
    CHECK(cfg.tls_cert == "/etc/tls/cert.pem");
    CHECK(cfg.tls_key == "/etc/tls/key.pem");
  }

  SECTION("the environment wins over the file") {
    temp_toml f(R"(
listen = "127.0.0.1:1111"
trust_proxy = true
[limits]
max_upload_bytes = 100
uploads_per_user = 4
)");
    auto cfg = load_config(f.path, env_of({{"PORTAL_LISTEN", "127.0.0.1:2222"},
                                           {"PORTAL_TRUST_PROXY", "false"},
                                           {"PORTAL_MAX_UPLOAD_BYTES", "200"}}));
    CHECK(cfg.listen.port == 2222);
    CHECK_FALSE(cfg.trust_proxy);
    CHECK(cfg.max_upload_bytes == 200);
    CHECK(cfg.uploads_per_user == 4); // from the file, no env override
  }

  SECTION("an empty variable does not override the file") {
    temp_toml f("data_dir = \"/from/file\"\n");
    auto cfg = load_config(f.path, env_of({{"PORTAL_DATA_DIR", ""}}));
    CHECK(cfg.data_dir == "/from/file");
  }

  SECTION("unknown keys are refused by name") {
    temp_toml top("listen = \"127.0.0.1:80\"\nlisten_adress = \"x\"\n");
    auto msg = load_error({}, top.path);
    CHECK_THAT(msg, Contains("listen_adress"));
    CHECK_THAT(msg, Contains("unknown key"));
    CHECK_THAT(msg, Contains(":2:"));

    temp_toml nested("[database]\nurl = \"host=x\"\npoolsize = 3\n");
    CHECK_THAT(load_error({}, nested.path), Contains("database.poolsize"));

    temp_toml table("[databse]\nurl = \"host=x\"\n");
    CHECK_THAT(load_error({}, table.path), Contains("databse"));

    temp_toml misplaced("max_upload_bytes = 5\n");
    auto hint = load_error({}, misplaced.path);
    CHECK_THAT(hint, Contains("max_upload_bytes"));
    CHECK_THAT(hint, Contains("limits.max_upload_bytes"));
  }

  SECTION("wrong types and bad values name the key") {
    temp_toml str_int("[limits]\nmax_upload_bytes = \"100\"\n");
    CHECK_THAT(load_error({}, str_int.path), Contains("limits.max_upload_bytes"));
    temp_toml negative("[database]\npool_size = -2\n");
    auto msg = load_error({}, negative.path);
    CHECK_THAT(msg, Contains("database.pool_size"));
    CHECK_THAT(msg, Contains("-2"));
    temp_toml boolean("trust_proxy = \"yes\"\n");
    CHECK_THAT(load_error({}, boolean.path), Contains("trust_proxy"));
    temp_toml flt("drain_seconds = 1.5\n");
    CHECK_THAT(load_error({}, flt.path), Contains("drain_seconds"));
    temp_toml duration("header_timeout_seconds = \"soon\"\n");
    CHECK_THAT(load_error({}, duration.path), Contains("header_timeout_seconds"));
    temp_toml port("listen = \"0.0.0.0:99999\"\n");
    CHECK_THAT(load_error({}, port.path), Contains("99999"));
  }

  SECTION("TOML syntax errors and missing files are config errors") {
    temp_toml broken("listen = \n");
    CHECK_THROWS_AS(load_config(broken.path, env_of({})), config_error);
    CHECK_THROWS_AS(load_config(std::filesystem::path("/nonexistent/portal.toml"), env_of({})),
                    config_error);
  }

  SECTION("a secret of the wrong type is not echoed") {
    temp_toml f("secret_key_base = 12345678901234567\n");
    auto msg = load_error({}, f.path);
    CHECK_THAT(msg, Contains("secret_key_base"));
    CHECK_THAT(msg, !Contains("12345678901234567"));
  }
}

TEST_CASE("TLS certificate and key come together", "[config]") {
  CHECK_THAT(load_error({{"PORTAL_TLS_CERT", "/c.pem"}}), Contains("PORTAL_TLS_KEY"));
  CHECK_THAT(load_error({{"PORTAL_TLS_KEY", "/k.pem"}}), Contains("PORTAL_TLS_CERT"));
}

TEST_CASE("check_serve_rules", "[config]") {
  SECTION("production with a proper secret and verified TLS starts without warnings") {
    CHECK(check_serve_rules(load_env(production())).empty());
    CHECK(check_serve_rules(
            load_env(production({{"DATABASE_URL", "postgres://u:p@db/x?sslmode=verify-ca"}})))
            .empty());
    CHECK(check_serve_rules(
            load_env(production({{"DATABASE_URL", "host=db user=u sslmode=verify-full"}})))
            .empty());
  }

  SECTION("DATABASE_URL is required in every environment") {
    auto dev = load_env({});
    CHECK_THROWS_WITH(check_serve_rules(dev), Contains("DATABASE_URL is required"));
    vars prod = production();
    prod.erase("DATABASE_URL");
    CHECK_THAT(serve_error(prod), Contains("DATABASE_URL is required"));
  }

  SECTION("production refuses a missing secret") {
    vars v = production();
    v.erase("SECRET_KEY_BASE");
    CHECK_THAT(serve_error(v), Contains("SECRET_KEY_BASE is required"));
  }

  SECTION("production refuses a short secret without echoing it") {
    std::string short_secret(63, 's');
    auto msg = serve_error(production({{"SECRET_KEY_BASE", short_secret}}));
    CHECK_THAT(msg, Contains("SECRET_KEY_BASE"));
    CHECK_THAT(msg, Contains("64"));
    CHECK_THAT(msg, !Contains(short_secret));
  }

  SECTION("production refuses an unverified sslmode, URL and keyword forms") {
    for (std::string url : {"postgresql://portal:" + db_password + "@db/portal?sslmode=require",
                            "postgresql://portal:" + db_password + "@db/portal?sslmode=disable",
                            "postgresql://portal:" + db_password + "@db/portal",
                            "host=db user=portal password=" + db_password + " sslmode=require",
                            "host=db user=portal password=" + db_password + " sslmode=prefer",
                            "host=db user=portal password=" + db_password}) {
      INFO(url);
      auto msg = serve_error(production({{"DATABASE_URL", url}}));
      CHECK_THAT(msg, Contains("DATABASE_URL"));
      CHECK_THAT(msg, Contains("verify-full"));
      CHECK_THAT(msg, Contains("PORTAL_DB_ALLOW_INSECURE"));
      CHECK_THAT(msg, !Contains(db_password));
      CHECK(one_line(msg));
    }
  }

  SECTION("PORTAL_DB_ALLOW_INSECURE=1 accepts it with an insecure warning") {
    for (std::string flag : {"1", "true"}) {
      auto cfg = load_env(
        production({{"DATABASE_URL", "host=db password=" + db_password + " sslmode=disable"},
                    {"PORTAL_DB_ALLOW_INSECURE", flag}}));
      auto warnings = check_serve_rules(cfg);
      REQUIRE(warnings.size() == 1);
      CHECK_THAT(warnings[0], Contains("insecure"));
      CHECK_THAT(warnings[0], !Contains(db_password));
    }
  }

  SECTION("DATABASE_DIRECT_URL follows the same rule") {
    auto msg = serve_error(production({{"DATABASE_DIRECT_URL", "postgres://u:p@db/x"}}));
    CHECK_THAT(msg, Contains("DATABASE_DIRECT_URL"));
  }

  SECTION("production refuses TLS files that do not exist") {
    auto msg = serve_error(
      production({{"PORTAL_TLS_CERT", "/nonexistent/c"}, {"PORTAL_TLS_KEY", "/nonexistent/k"}}));
    CHECK_THAT(msg, Contains("PORTAL_TLS_CERT"));
  }

  SECTION("development refuses neither secret, TLS nor sslmode") {
    auto cfg = load_env({{"DATABASE_URL", "postgres://u:p@localhost/x?sslmode=disable"},
                         {"SECRET_KEY_BASE", "short"},
                         {"PORTAL_TLS_CERT", "/nonexistent/c"},
                         {"PORTAL_TLS_KEY", "/nonexistent/k"}});
    CHECK(check_serve_rules(cfg).empty());
    CHECK(check_serve_rules(load_env({{"DATABASE_URL", "host=localhost"}})).empty());
  }

  SECTION("an unparseable DATABASE_URL is refused at load without echoing it") {
    auto msg = load_error({{"DATABASE_URL", "postgresql://u:" + db_password + "@db/x?bogus=1"}});
    CHECK_THAT(msg, Contains("DATABASE_URL"));
    CHECK_THAT(msg, !Contains(db_password));
    auto kw = load_error({{"DATABASE_URL", "host=db password=" + db_password + " nonsense"}});
    CHECK_THAT(kw, !Contains(db_password));
  }
}

TEST_CASE("render_redacted never shows a secret", "[config]") {
  SECTION("URL form") {
    auto cfg = load_env(production(
      {{"DATABASE_DIRECT_URL", "postgres://admin:" + db_password + "-direct@db:5433/portal"}}));
    auto text = render_redacted(cfg);
    CHECK_THAT(text, !Contains(db_password));
    CHECK_THAT(text, !Contains(good_secret));
    CHECK_THAT(text, Contains("[redacted]"));
    CHECK_THAT(text, Contains("db.internal"));
    CHECK_THAT(text, Contains("verify-full"));
    CHECK_THAT(text, Contains("5433"));
  }

  SECTION("keyword form, quoted password and sslpassword") {
    auto cfg = load_env(
      {{"DATABASE_URL", "host=db user=u password='" + db_password +
                          " with space' sslpassword=" + db_password + "-key sslmode=require"},
       {"SECRET_KEY_BASE", good_secret}});
    auto text = render_redacted(cfg);
    CHECK_THAT(text, !Contains(db_password));
    CHECK_THAT(text, !Contains(good_secret));
    CHECK_THAT(text, Contains("host=db"));
    CHECK_THAT(text, Contains("sslmode=require"));
  }

  SECTION("a generated secret is labelled, not shown") {
    auto cfg = load_env({});
    auto text = render_redacted(cfg);
    CHECK_THAT(text, Contains("[generated]"));
    CHECK_THAT(text, !Contains(cfg.secret_key_base));
  }

  SECTION("the output is TOML that loads back to the same settings") {
    auto cfg = load_env({{"PORTAL_LISTEN", "[::1]:0"},
                         {"PORTAL_METRICS_LISTEN", "127.0.0.1:9091"},
                         {"PORTAL_RETENTION_DAYS", "30"},
                         {"PORTAL_UPLOADS_TOTAL", "99"},
                         {"DATABASE_URL", "host=db sslmode=verify-full"}});
    temp_toml f(render_redacted(cfg));
    auto back = load_config(f.path, env_of({}));
    CHECK(back.listen.host == "::1");
    CHECK(back.listen.port == 0);
    CHECK(back.metrics_listen->port == 9091);
    CHECK(back.retention_days == 30u);
    CHECK(back.uploads_total == 99);
    CHECK(back.max_upload_bytes == cfg.max_upload_bytes);
    CHECK(back.database_url == "host=db sslmode=verify-full");
  }
}

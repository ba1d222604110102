// The effective configuration: a TOML file (optional) overridden by the
// environment variables of SPEC §3. Loaded once at start, then read-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace portal {

enum class environment { development, production };

// The library that inflates .tar.gz uploads (docs/CONFIGURATION.md). zlib
// refuses exactly what `gzip -t` refuses (SPEC §11). ISA-L takes the
// server's CPU per GiB of .tar.gz to a little over half (bench/RESULTS.md
// run 12) and checks every CRC-32, ISIZE and trailing byte alike, but
// accepts deflate blocks whose Huffman code sets are incomplete, which
// `gzip -t` refuses: an opt-in, never the default.
enum class gzip_inflater_choice { zlib, isal };

struct listen_address {
  std::string host;
  uint16_t port = 0;
};

struct config {
  environment env = environment::development;

  // database (DATABASE_URL may carry a password: a secret)
  std::string database_url;
  std::string database_direct_url;
  bool db_allow_insecure = false; // PORTAL_DB_ALLOW_INSECURE
  unsigned db_pool_size = 4;
  std::chrono::milliseconds db_deadline{2000}; // longest a request waits for the DB

  // HTTP
  listen_address listen{"127.0.0.1", 8080};
  std::optional<listen_address> metrics_listen;
  bool trust_proxy = false;
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds body_idle_timeout{60};
  std::chrono::seconds drain{30};            // PORTAL_DRAIN_SECONDS
  std::chrono::seconds reaper_interval{300}; // how often expired uploads are looked for
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;

  // uploads and storage
  std::filesystem::path data_dir = "./var/data";
  uint64_t max_upload_bytes = uint64_t{1} << 30;
  gzip_inflater_choice gzip_inflater = gzip_inflater_choice::zlib; // PORTAL_GZIP_INFLATER
  uint64_t min_free_bytes = uint64_t{64} << 20;                    // /ready fails below this
  std::size_t chunk_bytes = std::size_t{256} * 1024;
  std::size_t credit_window = 4;                           // chunks in flight per upload
  std::size_t buffer_budget_bytes = std::size_t{32} << 20; // chunk buffers of all uploads together
  unsigned storage_writers = 2;                            // detached threads doing upload I/O
  unsigned uploads_per_user = 8;
  unsigned uploads_total = 256;
  unsigned upload_starts_per_minute = 60;
  uint64_t user_quota_bytes = 0; // default per-user quota; 0 = none
  std::optional<unsigned> retention_days;

  // tus (SPEC §5.2, docs/TUS.md)
  std::chrono::seconds tus_expiry{24 * 3600};   // a partial unused this long is removed
  uint64_t tus_sync_bytes = uint64_t{64} << 20; // fsync a long PATCH every this many bytes
  std::chrono::seconds tus_session_idle{60};    // a tus session actor stops after this
  std::string machine_id;                       // FLY_MACHINE_ID; empty: one machine

  // browser sessions (SPEC §4)
  std::chrono::seconds session_idle{2 * 3600};     // unused this long: over
  std::chrono::seconds session_max_age{24 * 3600}; // from login, whatever the use
  unsigned logins_per_minute = 10;                 // failed logins per client address

  // secrets
  std::string secret_key_base;
  bool secret_key_generated = false; // dev: random per start
};

// Every refusal carries one line a human can act on.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using env_lookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
env_lookup process_env();

// Reads the TOML file (if given), then applies the environment over it, then
// checks every value's syntax and range. Throws config_error.
config load_config(const std::optional<std::filesystem::path>& file, const env_lookup& env);

// The rules that only `serve` enforces (SPEC §3): in production a proper
// SECRET_KEY_BASE (>= 64 chars) and a verified database TLS mode unless
// db_allow_insecure. Throws config_error. Returns the warnings to log.
std::vector<std::string> check_serve_rules(const config& cfg);

// The effective configuration as TOML, with every secret redacted.
std::string render_redacted(const config& cfg);

// "30s", "15m", "12h", "30d" (SPEC §11). Throws config_error.
std::chrono::seconds parse_duration(const std::string& text);

} // namespace portal

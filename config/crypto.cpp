#include "config/crypto.hpp"

#include <sodium.h>
#include <stdexcept>

namespace portal::crypto {

namespace {

constexpr std::string_view token_prefix = "upt_";
constexpr std::size_t token_id_chars = 16;
constexpr std::size_t token_secret_chars = 43; // >= 256 bits at 6 bits per char
// "upt_" + id + "_" + secret: the length is fixed, so parsing is positional.
// Both halves use the base64url alphabet, which contains '_' itself; splitting
// on '_' would be ambiguous.
constexpr std::size_t token_chars = token_prefix.size() + token_id_chars + 1 + token_secret_chars;

// sodium_init() is idempotent and thread-safe; a failure means no secure RNG,
// so nothing here may continue.
void ensure_sodium() {
  static const bool ready = [] { return sodium_init() >= 0; }();
  if (!ready) {
    throw std::runtime_error("libsodium could not be initialised");
  }
}

bool is_url_safe(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool all_url_safe(std::string_view s) {
  for (char c : s) {
    if (!is_url_safe(c)) {
      return false;
    }
  }
  return true;
}

} // namespace

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  std::string hex(n * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes, n);
  hex.resize(n * 2);
  return hex;
}

std::string hash_password(std::string_view password) {
  ensure_sodium();
  char encoded[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(encoded, password.data(), password.size(),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    // The only documented failure: the memory limit could not be allocated.
    throw std::runtime_error("password hashing failed (out of memory)");
  }
  return std::string(encoded);
}

bool verify_password(std::string_view encoded_hash, std::string_view password) {
  ensure_sodium();
  // crypto_pwhash_str_verify wants a NUL-terminated string that fits its buffer.
  if (encoded_hash.empty() || encoded_hash.size() >= crypto_pwhash_STRBYTES) {
    return false;
  }
  const std::string terminated(encoded_hash);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

std::string random_url_safe(std::size_t n) {
  ensure_sodium();
  if (n == 0) {
    return {};
  }
  // base64 carries 6 bits per char: ceil(3n/4) random bytes give >= n chars,
  // each of the first n fully random.
  const std::size_t bytes = (3 * n + 3) / 4;
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string encoded(sodium_base64_ENCODED_LEN(bytes, variant), '\0');
  sodium_bin2base64(encoded.data(), encoded.size(),
                    reinterpret_cast<const unsigned char*>(raw.data()), raw.size(), variant);
  sodium_memzero(raw.data(), raw.size());
  encoded.resize(n);
  return encoded;
}

std::string sha256_hex(std::string_view data) {
  ensure_sodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return to_hex(digest, sizeof digest);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  ensure_sodium();
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(data.data()),
                                data.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof state);
  return to_hex(mac, sizeof mac);
}

std::string hash_token_secret(std::string_view secret) {
  return sha256_hex(secret);
}

minted_token mint_token() {
  minted_token t;
  // An id starting with '-' would read as an option in `token revoke ID`.
  do {
    t.id = random_url_safe(token_id_chars);
  } while (t.id.front() == '-');
  const std::string secret = random_url_safe(token_secret_chars);
  t.token = std::string(token_prefix) + t.id + "_" + secret;
  t.secret_hash = hash_token_secret(secret);
  return t;
}

std::string new_session_id() {
  return random_url_safe(session_id_chars);
}

std::optional<std::string> session_key(std::string_view secret_key_base,
                                       std::string_view session_id) {
  if (session_id.size() != session_id_chars || !all_url_safe(session_id)) {
    return std::nullopt;
  }
  return hmac_sha256_hex(secret_key_base, session_id);
}

bool valid_token_id(std::string_view id) {
  return id.size() == token_id_chars && all_url_safe(id);
}

std::optional<token_parts> parse_token(std::string_view token) {
  // The length check comes first: nothing below looks at oversized input.
  if (token.size() != token_chars || token.substr(0, token_prefix.size()) != token_prefix) {
    return std::nullopt;
  }
  const std::size_t id_at = token_prefix.size();
  const std::size_t secret_at = id_at + token_id_chars + 1;
  if (token[secret_at - 1] != '_') {
    return std::nullopt;
  }
  const std::string_view id = token.substr(id_at, token_id_chars);
  const std::string_view secret = token.substr(secret_at);
  if (!all_url_safe(id) || !all_url_safe(secret)) {
    return std::nullopt;
  }
  return token_parts{std::string(id), std::string(secret)};
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  // Lengths are public (hex digests have a fixed length); only the contents
  // must not leak through timing.
  if (a.size() != b.size()) {
    return false;
  }
  if (a.empty()) {
    return true;
  }
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace portal::crypto

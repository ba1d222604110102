// Secrets handled through libsodium: Argon2id password hashes, API tokens
// (random, only their hash stored), constant-time comparison.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace portal::crypto {

// Argon2id (crypto_pwhash_str, interactive limits); the encoded string.
std::string hash_password(std::string_view password);
bool verify_password(std::string_view encoded_hash, std::string_view password);

// An API token is "upt_<id>_<secret>": <id> (16 url-safe chars) is public and
// indexes the row; <secret> (43 url-safe chars, 256 bits) is only stored as
// its SHA-256, compared in constant time.
struct token_parts {
  std::string id;
  std::string secret;
};
struct minted_token {
  std::string id;
  std::string token;       // what the user gets, once
  std::string secret_hash; // hex SHA-256 of the secret, what is stored
};
minted_token mint_token();
std::optional<token_parts> parse_token(std::string_view token);
bool valid_token_id(std::string_view id);               // 16 url-safe chars
std::string hash_token_secret(std::string_view secret); // hex SHA-256
std::string sha256_hex(std::string_view data);          // 64 lowercase hex chars
// HMAC-SHA-256 (libsodium), 64 lowercase hex chars.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
bool equal_constant_time(std::string_view a, std::string_view b);

// URL-safe random string of n characters (base64url alphabet, libsodium RNG).
std::string random_url_safe(std::size_t n);

} // namespace portal::crypto

// The credential crypto (libsodium; nothing hand-rolled): Argon2id password
// hashes, API tokens and browser session ids (random; only a hash of them is
// stored), SHA-256, HMAC-SHA-256, constant-time comparison, random strings
// and the one hex encoder. Pure functions on strings, no database: net/
// turns a request's credential into its stored form before it asks the
// database (docs/ARCHITECTURE.md, "One request's authentication"), db/ does
// the same when it creates one, cli/ and storage/ use the digests.
#pragma once

#include <cstddef>
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

// A browser session id (SPEC §4) is 43 url-safe chars (256 bits), only in
// the cookie; the table holds HMAC-SHA-256(SECRET_KEY_BASE, id), so a
// database leak hands out no live session and rotating SECRET_KEY_BASE ends
// them all. Its CSRF token has the same shape.
constexpr std::size_t session_id_chars = 43;
std::string new_session_id();
// The stored form of a cookie's session id (64 lowercase hex chars), or
// nullopt when the value cannot be a session id (then nothing is looked up).
std::optional<std::string> session_key(std::string_view secret_key_base,
                                       std::string_view session_id);

std::string sha256_hex(std::string_view data); // 64 lowercase hex chars
// HMAC-SHA-256 (libsodium), 64 lowercase hex chars.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Equal contents in time that depends only on the lengths (which are public).
bool equal_constant_time(std::string_view a, std::string_view b);

// URL-safe random string of n characters (base64url alphabet, libsodium RNG).
std::string random_url_safe(std::size_t n);

// Lowercase hex of n bytes (sodium_bin2hex): 2n characters.
std::string to_hex(const unsigned char* bytes, std::size_t n);

} // namespace portal::crypto

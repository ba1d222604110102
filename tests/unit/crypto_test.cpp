#include "config/crypto.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace portal::crypto;

namespace {

bool is_url_safe(const std::string& s) {
  return s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
         std::string::npos;
}

bool is_lower_hex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A well-formed token with a chosen id and secret.
std::string token_of(const std::string& id, const std::string& secret) {
  return "upt_" + id + "_" + secret;
}

const std::string good_id(16, 'A');
const std::string good_key(43, 'b');

} // namespace

TEST_CASE("password hash round trip", "[credentials]") {
  const std::string hash = hash_password("correct horse battery staple");
  CHECK(hash.rfind("$argon2id$", 0) == 0);
  CHECK(verify_password(hash, "correct horse battery staple"));
  CHECK_FALSE(verify_password(hash, "correct horse battery stapl"));
  CHECK_FALSE(verify_password(hash, ""));
}

TEST_CASE("password hashes are salted", "[credentials]") {
  CHECK(hash_password("same") != hash_password("same"));
}

TEST_CASE("verify_password rejects garbage hashes", "[credentials]") {
  CHECK_FALSE(verify_password("", "x"));
  CHECK_FALSE(verify_password("not a hash", "x"));
  CHECK_FALSE(verify_password(std::string(10000, '$'), "x"));
}

TEST_CASE("minted tokens have the documented shape", "[credentials]") {
  const minted_token t = mint_token();
  REQUIRE(t.token.size() == 4 + 16 + 1 + 43);
  CHECK(t.token.rfind("upt_", 0) == 0);
  CHECK(t.id.size() == 16);
  CHECK(is_url_safe(t.id));
  CHECK(t.token.substr(4, 16) == t.id);
  CHECK(t.token[20] == '_');
  CHECK(is_url_safe(t.token.substr(21)));

  const auto parts = parse_token(t.token);
  REQUIRE(parts);
  CHECK(parts->id == t.id);
  CHECK(parts->secret.size() == 43);
  CHECK(hash_token_secret(parts->secret) == t.secret_hash);
}

TEST_CASE("minted tokens are unique", "[credentials]") {
  std::set<std::string> tokens;
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const minted_token t = mint_token();
    tokens.insert(t.token);
    ids.insert(t.id);
  }
  CHECK(tokens.size() == 1000);
  CHECK(ids.size() == 1000);
}

TEST_CASE("the stored hash never contains the secret", "[credentials]") {
  const minted_token t = mint_token();
  const auto parts = parse_token(t.token);
  REQUIRE(parts);
  CHECK(t.secret_hash.find(parts->secret) == std::string::npos);
  CHECK(t.secret_hash.size() == 64);
}

TEST_CASE("parse_token accepts every url-safe character, '_' included", "[credentials]") {
  CHECK(parse_token(token_of(good_id, good_key)));
  CHECK(parse_token(token_of("_-_-_-_-________", std::string(43, '_'))));
  CHECK(parse_token(token_of("0123456789abcdef", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq")));
}

TEST_CASE("parse_token rejects malformed tokens", "[credentials]") {
  const std::string good = token_of(good_id, good_key);
  REQUIRE(parse_token(good));

  SECTION("empty and prefix-only") {
    CHECK_FALSE(parse_token(""));
    CHECK_FALSE(parse_token("upt_"));
    CHECK_FALSE(parse_token("upt__"));
  }
  SECTION("wrong prefix") {
    CHECK_FALSE(parse_token("UPT_" + good.substr(4)));
    CHECK_FALSE(parse_token("upx_" + good.substr(4)));
    CHECK_FALSE(parse_token("Bearer " + good));
    CHECK_FALSE(parse_token(good.substr(4) + "xxxx"));
  }
  SECTION("wrong lengths") {
    CHECK_FALSE(parse_token(good.substr(0, good.size() - 1)));
    CHECK_FALSE(parse_token(good + "a"));
    CHECK_FALSE(parse_token(token_of(std::string(15, 'A'), std::string(44, 'b'))));
    CHECK_FALSE(parse_token(token_of(std::string(17, 'A'), std::string(42, 'b'))));
  }
  SECTION("separator missing or moved") {
    std::string no_sep = good;
    no_sep[20] = 'x';
    CHECK_FALSE(parse_token(no_sep));
    CHECK_FALSE(parse_token("upt_" + good_id + good_key + "x"));
  }
  SECTION("extra underscores change the length") {
    CHECK_FALSE(parse_token(good + "_"));
    CHECK_FALSE(parse_token("upt__" + good.substr(4)));
    CHECK_FALSE(parse_token(token_of(good_id, good_key) + "_extra"));
    CHECK_FALSE(parse_token("upt_" + good_id + "__" + good_key));
  }
  SECTION("characters outside the url-safe alphabet") {
    for (const char bad : std::string("+/=. \t\n\r\"'%\\")) {
      std::string in_id = good;
      in_id[5] = bad;
      CHECK_FALSE(parse_token(in_id));
      std::string in_secret = good;
      in_secret[40] = bad;
      CHECK_FALSE(parse_token(in_secret));
    }
    std::string nul = good;
    nul[30] = '\0';
    CHECK_FALSE(parse_token(nul));
    std::string high = good;
    high[30] = '\xc3';
    CHECK_FALSE(parse_token(high));
  }
  SECTION("huge input") {
    CHECK_FALSE(parse_token(std::string(10'000'000, 'a')));
    CHECK_FALSE(parse_token("upt_" + std::string(1'000'000, 'a')));
  }
}

TEST_CASE("token secret hashes are 64 lowercase hex chars", "[credentials]") {
  const std::string h = hash_token_secret("secret");
  CHECK(h.size() == 64);
  CHECK(is_lower_hex(h));
  CHECK(h == hash_token_secret("secret"));
  CHECK(h != hash_token_secret("secreT"));
  // Known answer: SHA-256("abc").
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("equal_constant_time", "[credentials]") {
  CHECK(equal_constant_time("", ""));
  CHECK(equal_constant_time("abc", "abc"));
  CHECK_FALSE(equal_constant_time("abc", "abd"));
  CHECK_FALSE(equal_constant_time("abc", "ab"));
  CHECK_FALSE(equal_constant_time("ab", "abc"));
  CHECK_FALSE(equal_constant_time("", "a"));
  CHECK(equal_constant_time(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(equal_constant_time(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("random_url_safe", "[credentials]") {
  for (std::size_t n : {0, 1, 2, 3, 4, 5, 16, 43, 64, 100}) {
    const std::string s = random_url_safe(n);
    CHECK(s.size() == n);
    CHECK(is_url_safe(s));
  }
  CHECK(random_url_safe(32) != random_url_safe(32));
}

TEST_CASE("session ids and their stored key", "[credentials]") {
  const std::string id = new_session_id();
  CHECK(id.size() == session_id_chars);
  CHECK(is_url_safe(id));
  CHECK(new_session_id() != id);
  const std::string key(64, 'k');
  const auto stored = session_key(key, id);
  REQUIRE(stored);
  CHECK(*stored == hmac_sha256_hex(key, id));
  CHECK(stored->size() == 64);
  CHECK(is_lower_hex(*stored));
  CHECK(*session_key(std::string(64, 'K'), id) != *stored); // a new SECRET_KEY_BASE: no match
  SECTION("what cannot be a session id is not hashed") {
    CHECK_FALSE(session_key(key, ""));
    CHECK_FALSE(session_key(key, id.substr(1)));
    CHECK_FALSE(session_key(key, id + "A"));
    CHECK_FALSE(session_key(key, std::string(42, 'a') + "="));
    CHECK_FALSE(session_key(key, std::string(42, 'a') + " "));
    CHECK_FALSE(session_key(key, std::string(42, 'a') + "\xe9"));
  }
}

TEST_CASE("HMAC-SHA-256 known answer (RFC 4231 test case 2)", "[credentials]") {
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("to_hex", "[credentials]") {
  const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  CHECK(to_hex(bytes, sizeof bytes) == "00017f80abff");
  CHECK(to_hex(bytes, 0).empty());
}

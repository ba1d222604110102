// Who is calling: the user behind a bearer token (db/tokens.hpp) or a session
// cookie (db/sessions.hpp), as the one lookup of a request found it. A plain
// value (no database types), carried by net/ and the actors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace portal::db {

struct identity {
  int64_t user_id = 0;
  std::string username;
  std::string role;                    // "admin" | "uploader"
  std::string token_id;                // set when authenticated by an API token
  std::string session_hash;            // set when authenticated by a session cookie
  std::string csrf_token;              // that session's CSRF token (SPEC §11)
  std::optional<uint64_t> quota_bytes; // the user's own quota; nullopt: the default
  // The token's last_used_at is a minute or more old: the caller writes it,
  // on the side (db::touch_token), once the request is authenticated.
  bool token_use_unrecorded = false;
};

} // namespace portal::db

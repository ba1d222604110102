// Accounts (and, through db/audit.hpp, the audit trail of changes to them). Used by the `user` CLI
// commands; written against a caller's transaction so the web side (admin
// pages) can reuse the same rules.
#pragma once

#include "db/audit.hpp"

#include <boost/json/object.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace portal::db {

// A refusal whose message can be shown to the operator as-is (unknown user,
// duplicate name, ...), as opposed to a database or programming failure.
struct refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// [A-Za-z0-9._-]{1,64} (SPEC §2 user names).
bool valid_username(std::string_view name);
// "admin" or "uploader".
bool valid_role(std::string_view role);

struct user_row {
  int64_t id = 0;
  std::string username;
  std::string role;
  bool disabled = false;
  std::string created_at; // RFC 3339 UTC
};

// Throws refused if a user with that name (compared case-insensitively)
// exists. A null password makes a token-only account (no browser login).
user_row create_user(pqxx::transaction_base& tx, const audit_actor& actor,
                     const std::string& username, const std::string& role,
                     const std::optional<std::string>& password);

std::vector<user_row> list_users(pqxx::transaction_base& tx);

// Exact-name lookup.
std::optional<user_row> find_user(pqxx::transaction_base& tx, const std::string& username);

enum class disable_outcome { disabled, already_disabled };

// Sets disabled_at and deletes the user's sessions; tokens stop working
// because every token lookup checks disabled_at. Throws refused if unknown.
disable_outcome disable_user(pqxx::transaction_base& tx, const audit_actor& actor,
                             const std::string& username);

} // namespace portal::db

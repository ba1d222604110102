// One login attempt (SPEC §4, §11): the lockout rule, the password check and
// the new session, in one transaction that also writes the audit row and
// the failure record. Unknown, disabled and password-less accounts answer
// exactly like a wrong password, after the same Argon2id work.
#pragma once

#include "db/audit.hpp"
#include "db/identity.hpp"
#include "db/sessions.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <string>

namespace portal::db {

// The statement whose name labels a login's db request: the account whose
// password attempt_login checks.
namespace sql {
extern const query login_user;
} // namespace sql

// SPEC §4: 5 failures for one name within 15 minutes lock it for 15 minutes.
constexpr int lockout_failures = 5;
constexpr std::chrono::minutes lockout_window{15};
constexpr std::chrono::minutes lockout_duration{15};

struct login_attempt {
  std::string username; // as typed
  std::string password;
  std::string ip;
  std::string request_id;
  std::string user_agent;
};

struct login_outcome {
  enum class result { ok, refused, locked };
  result status = result::refused;
  identity who;             // ok only
  new_session session;      // ok only
  unsigned retry_after = 0; // locked only: seconds until the lock ends
};

login_outcome attempt_login(pqxx::transaction_base& tx, const login_attempt& attempt,
                            const session_policy& policy);

} // namespace portal::db

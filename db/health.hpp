// Whether the database answers a statement (SPEC §7 /ready).
#pragma once

#include "db/query.hpp"

#include <pqxx/pqxx>

namespace portal::db {

namespace sql {
extern const query ping; // ping
} // namespace sql

// One round trip; throws what pqxx throws when the database does not answer.
void ping(pqxx::transaction_base& tx);

} // namespace portal::db

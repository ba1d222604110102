// Whether the database answers a statement (SPEC §7 /ready).
#pragma once

#include "db/query.hpp"

#include <pqxx/pqxx>

namespace portal::db {

// The statement of ping(): it labels the db request that runs it.
namespace sql {
extern const query ping;
} // namespace sql

// One round trip; throws what pqxx throws when the database does not answer.
void ping(pqxx::transaction_base& tx);

} // namespace portal::db

#include "db/health.hpp"

namespace portal::db {

namespace sql {

const query ping{"ping", "SELECT 1"};

} // namespace sql

void ping(pqxx::transaction_base& tx) {
  exec(tx, sql::ping);
}

} // namespace portal::db

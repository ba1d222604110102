// One SQL statement with a name (userver's Query{sql, Query::Name{...}}
// habit). Every statement of db/ is such a constant in `db::sql`, in the
// file that runs it (a header exports the ones whose name labels a db
// request). The name travels three ways: as the label of the db request
// (actors/db_request.hpp), in db_worker's log line when a statement fails,
// and inside the statement as a leading /* name */ comment, so PostgreSQL's
// own log and pg_stat_activity name it too.
//
// The text is always parameterised ($1, $2, ...): values never go into it.
// Columns are read by name (row["sha256"]), so each one a caller reads has
// a name in the statement (`AS created_at` for an expression).
#pragma once

#include <pqxx/pqxx>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portal::db {

struct query {
  std::string_view name; // snake_case, unique in db/
  std::string_view sql;
};

// What is sent: "/* name */ sql".
std::string statement_text(const query& q);

// The name in a statement that statement_text() made (e.g. a
// pqxx::sql_error's query()), or "" when it carries none.
std::string_view statement_name(std::string_view sent);

// tx.exec_params / exec_params1 / exec_params0 of the named statement.
template <class... Args>
pqxx::result exec(pqxx::transaction_base& tx, const query& q, Args&&... args) {
  return tx.exec_params(statement_text(q), std::forward<Args>(args)...);
}
template <class... Args>
pqxx::row exec1(pqxx::transaction_base& tx, const query& q, Args&&... args) {
  return tx.exec_params1(statement_text(q), std::forward<Args>(args)...);
}
template <class... Args>
void exec0(pqxx::transaction_base& tx, const query& q, Args&&... args) {
  tx.exec_params0(statement_text(q), std::forward<Args>(args)...);
}

// A list sent as one parameter: a JSON array of strings (Boost.JSON escapes
// them), read in SQL as `id in (select jsonb_array_elements_text($n::jsonb))`.
std::string json_array_of(const std::vector<std::string>& values);

// A nullable text column: nullopt for NULL.
std::optional<std::string> optional_text(const pqxx::field& f);

} // namespace portal::db

// Handlers that need the database: run a query through the db actors and
// answer its failures the one way (500 for an error, 503 + Retry-After when
// the database is unavailable or too slow).
#pragma once

#include "actors/db_pool.hpp"
#include "actors/db_request.hpp"
#include "db/uploads.hpp"
#include "net/exchange.hpp"
#include "net/responses.hpp"

#include <functional>
#include <optional>
#include <utility>
#include <variant>

namespace portal {

// Runs `query` (on a db worker, in a transaction) and calls `then(result)`;
// a failure is answered here. The request is labelled with the name of the
// named statement it is about (db/query.hpp).
// The outcome's failure answered the one way, or the result to `then`.
template <class R, class Then>
auto answering(const exchange_ptr& ex, Then then) {
  return [ex, then = std::move(then)](db_outcome<R> outcome) {
    if (auto* failure = std::get_if<db_failure>(&outcome))
      return ex->reply(db_failure_response(*failure));
    then(std::get<R>(outcome));
  };
}

// `undo` (optional) undoes the query's effects outside the database when its
// transaction surely did not commit (db_request::on_rollback).
template <class R, class Query, class Then>
void with_db(const services& svc, const exchange_ptr& ex, const db::query& statement, Query query,
             Then then, std::function<void()> undo = {}) {
  auto req = make_db_request<R>(std::string{statement.name}, ex->db_deadline(svc.cfg),
                                std::move(query), answering<R>(ex, std::move(then)));
  if (undo)
    req->on_rollback(std::move(undo));
  submit(*svc.directory, std::move(req));
}

// with_db for a query of one statement, or of reads that need no common
// snapshot (db_mode::autocommit: one round trip, may run twice); `query`
// takes a pqxx::transaction_base&.
template <class R, class Query, class Then>
void with_db_autocommit(const services& svc, const exchange_ptr& ex, const db::query& statement,
                        Query query, Then then) {
  submit(*svc.directory,
         make_db_autocommit<R>(std::string{statement.name}, ex->db_deadline(svc.cfg),
                               std::move(query), answering<R>(ex, std::move(then))));
}

// The upload {id} of the route, if the caller may see it (else 404), then
// `then(row)`.
template <class Then>
void with_upload(const services& svc, const exchange_ptr& ex, Then then) {
  using found = std::optional<db::upload_row>;
  auto query = [id = ex->params.at(0), viewer = *ex->user, days = svc.cfg.retention_days](
                 pqxx::transaction_base& tx) { return db::find_upload(tx, id, viewer, days); };
  auto answer = [ex, then = std::move(then)](const found& row) {
    if (!row)
      return ex->reply(no_such_upload());
    then(*row);
  };
  with_db_autocommit<found>(svc, ex, db::sql::find_upload, std::move(query), std::move(answer));
}

} // namespace portal

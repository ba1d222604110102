#include "actors/db_worker.hpp"

#include "actors/actor_directory.hpp"
#include "actors/db_pool.hpp"
#include "config/log.hpp"
#include "db/query.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>

#include <optional>

namespace portal {

namespace {

constexpr const char* query_canceled = "57014";     // SQLSTATE of a cancel request
constexpr const char* lock_not_available = "55P03"; // lock_timeout ran out

// How long a request that commits however late waits on a row lock
// (db_request::retry_delay): a commit's lock is held for milliseconds; one
// held longer is a stuck transaction (a killed server's, an administrator's),
// and the request does not hold a worker, nor the drain, behind it.
// Transaction-scoped (SET LOCAL): nothing outlives it through PgBouncer.
constexpr const char* lock_wait = "SET LOCAL lock_timeout = 250";

// How a request left the worker's connection.
enum class ending {
  clean, // as the request found it: kept for the next request
  // Maybe inside a transaction still: the interrupt meant for the request
  // can cancel the ROLLBACK itself, or a COMMIT before it began, and the
  // session then stays "idle in transaction (aborted)", failing every later
  // request with 25P02 (review 7). settle() ends that transaction.
  dirty,
  // Clean, and the request goes back to the pool: its lock wait ran out (a
  // statement, never interrupted: db_request::commits_however_late).
  again,
};

// A request that ran: its connection is as it was (pqxx's ROLLBACK as a
// failed transaction unwound, or its COMMIT) unless the pool may have been
// interrupting it, which it does only once the deadline has passed
// (db_pool.cpp): a cancel still on its way could reach the ROLLBACK, or
// the connection's next statement.
ending ran(const db_request& req) {
  return std::chrono::steady_clock::now() >= req.deadline() ? ending::dirty : ending::clean;
}

struct worker_state {
  db_worker_options opts;
  std::string worker_name;
  db_pool_actor pool;
  std::unique_ptr<pqxx::connection> conn;
  std::chrono::milliseconds backoff{0};
  bool reported_down = false;
  const char* name = "db_worker";
};

using worker_ptr = db_worker_actor::stateful_pointer<worker_state>;

void connection_lost(worker_ptr self, const char* why) {
  auto& st = self->state;
  st.conn.reset();
  self->send(st.pool, lost_atom::value, caf::actor_cast<db_worker_actor>(self));
  if (!st.reported_down) {
    st.reported_down = true;
    log::warn("database connection lost", {{"actor", st.worker_name}, {"error", why}});
  }
}

// A dirty connection's transaction, whatever it is, ends with a ROLLBACK
// (with none, PostgreSQL answers a warning: not the server's to print). A
// cancel that was already on its way lands on the request's statements or
// on this ROLLBACK, never later (PQcancel returns once the signal is sent,
// before the interrupt is unset). Only if this ROLLBACK fails too is the
// connection replaced: a reconnection can hang where the open connection
// works (review 8), so it is the last resort.
void settle(worker_ptr self) {
  auto& st = self->state;
  try {
    pqxx::quiet_errorhandler quiet{*st.conn};
    pqxx::nontransaction tx{*st.conn};
    tx.exec("ROLLBACK");
    return;
  } catch (const std::exception& e) {
    log::warn("database connection replaced: its transaction could not be ended",
              {{"actor", st.worker_name}, {"error", e.what()}});
  }
  st.conn.reset();
  self->send(self, connect_atom::value);
}

void try_connect(worker_ptr self) {
  auto& st = self->state;
  try {
    st.conn = std::make_unique<pqxx::connection>(st.opts.conninfo);
    st.backoff = st.opts.backoff_min;
    if (st.reported_down)
      log::info("database connection restored", {{"actor", st.worker_name}});
    st.reported_down = false;
    self->send(st.pool, ready_atom::value, caf::actor_cast<db_worker_actor>(self));
  } catch (const std::exception& e) {
    // libpq's message names host and port, never the password.
    connection_lost(self, e.what());
    self->delayed_send(self, st.backoff, connect_atom::value);
    st.backoff = std::min(st.backoff * 2, st.opts.backoff_max);
  }
}

// The connection may have died while idle (the database restarted): BEGIN
// then fails before anything ran, so one fresh connection may retry it.
std::unique_ptr<pqxx::work> begin(worker_ptr self) {
  auto& st = self->state;
  try {
    return std::make_unique<pqxx::work>(*st.conn);
  } catch (const pqxx::broken_connection&) {
    st.conn = std::make_unique<pqxx::connection>(st.opts.conninfo);
    return std::make_unique<pqxx::work>(*st.conn);
  }
}

// Interruptible (db_request::set_interrupt) on connection `c` for as long
// as it lives, never after: the pool's cancel must not reach this
// connection's next request. Made once the connection is the one the
// request runs on (BEGIN went through): a connection replaced meanwhile
// must not be the one cancelled.
struct interruptible {
  db_request& req;
  interruptible(db_request& r, pqxx::connection& c) : req(r) {
    req.set_interrupt([&c, name = req.what()] {
      try {
        c.cancel_query();
      } catch (const std::exception& e) {
        log::warn("a database request could not be interrupted",
                  {{"request", name}, {"error", e.what()}});
      }
    });
  }
  interruptible(const interruptible&) = delete;
  interruptible& operator=(const interruptible&) = delete;
  ~interruptible() { req.set_interrupt(nullptr); }
};

// Interruptible from now on, unless the request must commit however late
// (then only in COMMIT). False when it was answered at its deadline before:
// the pool's interrupt may have missed it, so it does not run.
bool interruptible_from_here(std::optional<interruptible>& during, db_request& req,
                             pqxx::connection& c) {
  if (!req.commits_however_late())
    during.emplace(req, c);
  return !req.finished();
}

// Without a BEGIN, an idle connection that died (the database restarted) is
// found by the first statement; the request is safe to run twice
// (db_mode::autocommit), so it runs again on one fresh connection.
std::function<void()> run_autocommit(worker_ptr self, db_request& req) {
  auto& st = self->state;
  auto attempt = [&]() -> std::function<void()> {
    pqxx::nontransaction tx{*st.conn};
    std::optional<interruptible> during;
    if (!interruptible_from_here(during, req, *st.conn))
      return [] {};
    return req.run(tx);
  };
  try {
    return attempt();
  } catch (const pqxx::broken_connection&) {
    st.conn = std::make_unique<pqxx::connection>(st.opts.conninfo);
    return attempt();
  }
}

ending run_request(worker_ptr self, db_request& req) {
  auto& st = self->state;
  if (req.finished())
    return ending::clean;
  if (!st.conn) {
    req.fail(db_failure::unavailable);
    return ending::clean;
  }
  try {
    if (req.mode() == db_mode::autocommit) {
      req.deliver(run_autocommit(self, req));
      return ran(req);
    }
    auto tx = begin(self);
    if (req.commits_however_late())
      tx->exec(lock_wait);
    std::optional<interruptible> during;
    std::function<void()> deliver;
    if (interruptible_from_here(during, req, *st.conn))
      deliver = req.run(*tx);
    if (!deliver || !req.claim_commit()) {
      // The caller has been told `timeout`: what it was told must stay true.
      tx->abort();
      req.rolled_back();
      log::warn("database request rolled back: its deadline passed",
                {{"actor", st.worker_name}, {"request", req.what()}});
      return ending::dirty;
    }
    if (!during)
      during.emplace(req, *st.conn);
    tx->commit();
    during.reset();
    req.deliver(deliver);
    return ran(req);
  } catch (const pqxx::broken_connection& e) {
    if (!req.claimed())
      req.rolled_back();
    req.fail(db_failure::unavailable);
    connection_lost(self, e.what());
    self->send(self, connect_atom::value);
  } catch (const pqxx::in_doubt_error& e) {
    req.fail(db_failure::in_doubt);
    connection_lost(self, e.what());
    self->send(self, connect_atom::value);
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == lock_not_available && req.commits_however_late() && !req.claimed()) {
      // Logged at the 1st, 2nd, 3rd, 5th, 9th... wait: less as it lasts.
      if (auto r = req.retries(); (r & (r - 1)) == 0)
        log::warn("database request waits on a lock: rolled back, to run again",
                  {{"actor", st.worker_name}, {"request", req.what()}, {"retries", r}});
      return ending::again;
    }
    if (e.sqlstate() == query_canceled) {
      // Rolled back, so as late as `timeout` says. The pool's interrupt
      // (db_request::set_interrupt) comes only past the deadline; before it,
      // the database cancelled it (statement_timeout, an administrator).
      req.rolled_back();
      if (std::chrono::steady_clock::now() >= req.deadline())
        log::warn("database request rolled back: its deadline passed",
                  {{"actor", st.worker_name}, {"request", req.what()}});
      else
        log::warn("database request cancelled by the database: rolled back",
                  {{"actor", st.worker_name}, {"request", req.what()}, {"error", e.what()}});
      req.fail(db_failure::timeout);
      return ending::dirty;
    }
    req.rolled_back(); // a failed statement or COMMIT: nothing was committed
    // The statement's name rides in its text (db/query.hpp); the text itself
    // and its parameters are not logged.
    log::error("database request failed", {{"actor", st.worker_name},
                                           {"request", req.what()},
                                           {"statement", db::statement_name(e.query())},
                                           {"sqlstate", e.sqlstate()},
                                           {"error", e.what()}});
    req.fail(db_failure::error);
    return ran(req);
  } catch (const std::exception& e) {
    req.rolled_back();
    log::error("database request failed",
               {{"actor", st.worker_name}, {"request", req.what()}, {"error", e.what()}});
    req.fail(db_failure::error);
    return ran(req);
  }
  return ending::clean; // the connection was lost: a new one is on its way
}

db_worker_actor::behavior_type db_worker(worker_ptr self, probe_ptr probe,
                                         std::shared_ptr<actor_directory> dir,
                                         db_worker_options opts, std::string name) {
  auto& st = self->state;
  st.opts = std::move(opts);
  st.worker_name = std::move(name);
  st.backoff = st.opts.backoff_min;
  st.pool = dir->find<db_pool_actor>(st.opts.pool_name);
  self->send(self, connect_atom::value);
  return probed(
    self, probe,
    [=](connect_atom) {
      if (!self->state.conn)
        try_connect(self);
    },
    [=](run_atom, db_request_ptr& req) {
      auto& st = self->state;
      auto how = run_request(self, *req);
      if (how == ending::dirty && st.conn)
        settle(self);
      if (how == ending::again)
        self->delayed_send(st.pool, req->retry_delay(), retry_atom::value, req);
      if (st.conn)
        self->send(st.pool, ready_atom::value, caf::actor_cast<db_worker_actor>(self));
    });
}

} // namespace

db_worker_actor spawn_db_worker(caf::local_actor* sup, probe_ptr probe,
                                std::shared_ptr<actor_directory> dir, db_worker_options opts,
                                std::string name) {
  return sup->spawn<caf::detached>(db_worker, std::move(probe), std::move(dir), std::move(opts),
                                   std::move(name));
}

} // namespace portal

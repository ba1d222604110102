// One unit of database work travelling caller -> db_pool -> db_worker.
//
// Exactly one outcome reaches the caller, whatever happens on the way: the
// result after COMMIT, a failure, the pool's deadline, or (when the request
// is dropped because a worker died holding it) `unavailable` from the
// destructor. The callbacks run on CAF threads: an Asio caller must only
// post() from them.
//
// The outcome the caller sees is the truth about the database. A
// transaction's fate is decided once, by claim_commit(): before it, the
// deadline may still answer `timeout`, and then the worker rolls back; after
// it, only COMMIT's own answer counts, however long that round trip takes.
// So a caller told `timeout` or `unavailable` may clean up (remove the file
// of an upload whose row was not written) without a row surviving it.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <variant>

namespace portal {

enum class db_failure {
  unavailable, // no connection, or it broke: 503 + Retry-After
  timeout,     // the deadline passed first; nothing was committed: 503 + Retry-After
  error,       // the statement failed: 500
  // The connection broke after COMMIT was sent: the transaction may or may
  // not have committed (pqxx::in_doubt_error). 503 + Retry-After; a caller
  // must not undo what a commit would have kept (start-up reconciliation
  // judges an archive left without a row).
  in_doubt,
};

const char* to_string(db_failure f);

// How a request's statements run on the worker's connection.
enum class db_mode {
  // BEGIN, the statements, COMMIT: all or nothing, one snapshot. Three
  // round trips for a single statement.
  transaction,
  // Each statement commits on its own (pqxx::nontransaction): one round trip
  // for a single statement. For a request of one statement (a statement is
  // atomic by itself) or of reads that need no common snapshot. The worker
  // runs it again on a fresh connection when the first one turns out to be
  // broken, so it must be safe to run twice: a read, or an idempotent write.
  autocommit,
};

class db_request {
public:
  // `run` executes on a worker thread, as `mode` says, and returns the
  // continuation that delivers its result; the worker calls that only after
  // COMMIT succeeded (transaction) or the statements ran (autocommit).
  using run_fn = std::function<std::function<void()>(pqxx::transaction_base&)>;
  using fail_fn = std::function<void(db_failure)>;

  db_request(std::string what, std::chrono::steady_clock::time_point deadline, run_fn run,
             fail_fn fail, db_mode mode = db_mode::transaction)
    : what_(std::move(what)), deadline_(deadline),
      budget_(std::max<std::chrono::steady_clock::duration>(
        deadline - std::chrono::steady_clock::now(), std::chrono::milliseconds{100})),
      run_(std::move(run)), fail_(std::move(fail)), mode_(mode) {}
  db_request(const db_request&) = delete;
  db_request& operator=(const db_request&) = delete;
  ~db_request() {
    fail(db_failure::unavailable);
    if (!claimed_) // never run, or rolled back: surely not committed
      rolled_back();
  }

  const std::string& what() const { return what_; }
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }
  // How long it was given (deadline - creation, at least 100 ms): also how
  // often the pool interrupts a COMMIT that outlives it.
  std::chrono::steady_clock::duration budget() const { return budget_; }

  // For a request no caller waits on to tell a client (an audit row, a
  // moved expiry, a clean-up): its deadline never answers it `timeout`, so
  // it is never rolled back for being late; it commits when a worker gets
  // to it. It still fails at once while the database is away.
  // `awaited`: a client's answer waits for it all the same (a refused tus
  // upload's deletion: HEAD must not find the upload afterwards); the pool
  // runs it before the ones nobody waits for (db_pool.cpp, dispatch).
  enum class awaited { no, yes };
  void commit_however_late(awaited a = awaited::no) {
    however_late_ = true;
    awaited_ = a == awaited::yes;
  }
  // However late, and nobody waits for it: an audit row, a moved expiry.
  bool background() const { return however_late_ && !awaited_; }
  db_mode mode() const { return mode_; }
  bool finished() const { return state_.load() == finished_state; }
  bool claimed() const { return claimed_.load(); }

  // Worker side, right before COMMIT (db_mode::transaction): true when the
  // request is still unanswered and its deadline has not passed; from then
  // on the deadline no longer answers it. False when it has been answered,
  // or its deadline passed now (the caller is told `timeout`): roll back.
  bool claim_commit() {
    if (!however_late_ && std::chrono::steady_clock::now() >= deadline_) {
      expire();
      return false;
    }
    int expected = pending;
    bool won = state_.compare_exchange_strong(expected, committing);
    claimed_ = won;
    return won;
  }

  // Worker side: runs the body (in a pqxx::work for db_mode::transaction, a
  // pqxx::nontransaction for autocommit); the returned continuation delivers.
  std::function<void()> run(pqxx::transaction_base& tx) { return run_(tx); }

  // What undoes the body's effects outside the database (a file it made)
  // when its transaction surely did not commit: rolled back because the
  // deadline answered first, a statement failed, or its connection was lost
  // before COMMIT (on the worker's thread, after the rollback); or never
  // run at all (when the request is destroyed). Never once COMMIT was sent.
  void on_rollback(std::function<void()> undo) { undo_ = std::move(undo); }
  void rolled_back() {
    if (undo_)
      std::exchange(undo_, nullptr)();
  }
  void deliver(const std::function<void()>& continuation) {
    undo_ = nullptr; // it ran to the end: nothing to undo
    if (state_.exchange(finished_state) != finished_state)
      continuation();
  }
  // The worker's (or the destructor's) failure: it answers a claimed request.
  // A connection (or a worker) lost once COMMIT may have been sent leaves
  // the outcome unknown: `unavailable` then becomes `in_doubt`.
  void fail(db_failure f) {
    auto was = state_.exchange(finished_state);
    if (was == finished_state || !fail_)
      return;
    fail_(was == committing && f == db_failure::unavailable ? db_failure::in_doubt : f);
  }
  // The deadline: it answers `timeout` unless the worker has claimed the
  // commit (see claim_commit); true when it did. A db_mode::autocommit
  // request is never claimed: it is answered at its deadline even while a
  // statement runs, because its statements are reads or idempotent writes
  // (db_mode).
  bool expire() {
    if (however_late_)
      return false;
    int expected = pending;
    if (!state_.compare_exchange_strong(expected, finished_state))
      return false;
    if (fail_)
      fail_(db_failure::timeout);
    return true;
  }

  // A worker that runs a request sets how to interrupt it (pqxx's
  // cancel_query) for as long as it does. The pool interrupts a request
  // answered `timeout` at its deadline at once: what the worker still runs
  // for it would be rolled back anyway, and a statement waiting on a lock
  // would hold the worker (and a drain) until the lock goes. A claimed
  // COMMIT that waits on the database (a synchronous standby that is down)
  // would hold its caller for good: the pool interrupts it a second budget
  // after the deadline. A COMMIT cancelled while waiting for a standby has
  // committed locally (PostgreSQL says so in a WARNING) and is answered as
  // done; one cancelled in any other wait was rolled back: `timeout`. A
  // request that commits however late is interruptible in COMMIT only.
  void set_interrupt(std::function<void()> interrupt) {
    std::lock_guard<std::mutex> lock(interrupt_mutex_);
    in_worker_ = interrupt != nullptr;
    interrupt_ = std::move(interrupt);
  }
  // True while a worker runs the request (its interrupt is set). Never
  // blocks: the pool asks, and an interrupt in progress holds the mutex for
  // as long as its cancel takes to reach the database (review 7).
  bool in_worker() const { return in_worker_.load(); }
  bool commits_however_late() const { return however_late_; }
  // A request that commits however late waits on a row lock for at most the
  // worker's lock wait (db_worker.cpp) rather than hold a worker, and a
  // drain, for as long as the lock holds. It is then rolled back and runs
  // again after this delay: 250 ms, doubling up to 2 s (a refused tus
  // upload's answer waits for its deletion: at most that long after the
  // lock goes). Worker side.
  std::chrono::milliseconds retry_delay() {
    return std::chrono::milliseconds{250} * (1 << std::min(retries_++, 3));
  }
  int retries() const { return retries_; }
  // Skipped while another interrupt still runs (a cancel that cannot reach
  // the database blocks): one at a time, however long COMMIT hangs.
  void interrupt() {
    std::unique_lock<std::mutex> lock(interrupt_mutex_, std::try_to_lock);
    if (lock && interrupt_)
      interrupt_();
  }

private:
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::duration budget_;
  run_fn run_;
  fail_fn fail_;
  std::function<void()> undo_;
  db_mode mode_;
  enum : int { pending, committing, finished_state };
  std::atomic<int> state_{pending};
  std::atomic<bool> claimed_{false}; // COMMIT may have been sent
  bool however_late_ = false;        // set before submit: read-only after
  bool awaited_ = false;             // likewise
  std::mutex interrupt_mutex_;
  std::function<void()> interrupt_;
  std::atomic<bool> in_worker_{false};
  int retries_ = 0; // on the worker running it, one at a time
};

using db_request_ptr = std::shared_ptr<db_request>;
// What a request's deadline timer holds: a request that finished before its
// deadline is freed when its worker lets go of it, and with it everything
// its callbacks captured (an exchange, the connection behind an upload
// link), instead of at the deadline.
using db_request_weak = std::weak_ptr<db_request>;

// A typed front for callers: `query` runs on a worker inside a transaction
// and returns R; `done` receives either R or the failure.
template <class R>
using db_outcome = std::variant<R, db_failure>;

template <class R, class Tx>
db_request_ptr make_db_request(std::string what, std::chrono::steady_clock::time_point deadline,
                               std::function<R(Tx&)> query, std::function<void(db_outcome<R>)> done,
                               db_mode mode) {
  auto run = [query = std::move(query), done](pqxx::transaction_base& tx) -> std::function<void()> {
    // Tx is pqxx::work only for db_mode::transaction (make_db_request below).
    auto value = std::make_shared<R>(query(static_cast<Tx&>(tx)));
    return [done, value] { done(db_outcome<R>{std::move(*value)}); };
  };
  auto fail = [done](db_failure f) { done(db_outcome<R>{f}); };
  return std::make_shared<db_request>(std::move(what), deadline, std::move(run), std::move(fail),
                                      mode);
}

template <class R>
db_request_ptr make_db_request(std::string what, std::chrono::steady_clock::time_point deadline,
                               std::function<R(pqxx::work&)> query,
                               std::function<void(db_outcome<R>)> done) {
  return make_db_request<R, pqxx::work>(std::move(what), deadline, std::move(query),
                                        std::move(done), db_mode::transaction);
}

// The same for a request in db_mode::autocommit (its rules there).
template <class R>
db_request_ptr make_db_autocommit(std::string what, std::chrono::steady_clock::time_point deadline,
                                  std::function<R(pqxx::transaction_base&)> query,
                                  std::function<void(db_outcome<R>)> done) {
  return make_db_request<R, pqxx::transaction_base>(std::move(what), deadline, std::move(query),
                                                    std::move(done), db_mode::autocommit);
}

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::db_request_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::db_request_weak)

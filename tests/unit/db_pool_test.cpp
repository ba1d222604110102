// The db_pool's protocol (actors/db_pool.hpp) on the deterministic test
// scheduler: the test itself plays a db_worker (its scoped actor, cast to a
// db_worker_actor), so every message the pool sends is seen, and the pool's
// deadline timer runs on the virtual clock.
#include "actors/actor_directory.hpp"
#include "actors/db_pool.hpp"
#include "tests/unit/coordinated_system.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

using namespace portal;
using namespace std::chrono_literals;

namespace {

struct pool_fixture : test::coordinated_system {
  std::shared_ptr<db_pool_counts> counts = std::make_shared<db_pool_counts>();
  std::shared_ptr<actor_directory> dir = std::make_shared<actor_directory>();
  db_pool_actor pool;
  db_worker_actor me = caf::actor_cast<db_worker_actor>(self);

  explicit pool_fixture(unsigned workers) {
    pool = spawn_db_pool(self.ptr(), std::make_shared<actor_probe>(), counts, workers);
    dir->record(actor_entry{"db_pool", "db_pool", "", pool.id(), 0, nullptr},
                caf::actor_cast<caf::actor>(pool), false);
    run();
  }
  // Pending deadlines and the pool's queue hold requests whose callbacks
  // write `outcome`: end them while it still exists.
  ~pool_fixture() {
    sched.clock().cancel_all();
    self->send_exit(pool, caf::exit_reason::user_shutdown);
    run();
  }

  // A request whose outcome lands in `outcome`.
  std::optional<db_outcome<int>> outcome;
  db_request_ptr request(std::chrono::steady_clock::duration deadline = 2s) {
    return make_db_request<int>(
      "db_pool_test", std::chrono::steady_clock::now() + deadline, [](pqxx::work&) { return 1; },
      [this](db_outcome<int> o) { outcome = std::move(o); });
  }

  // A request that commits however late, whose outcome nobody reads.
  db_request_ptr late_request(db_request::awaited awaited = db_request::awaited::no) {
    auto r = make_db_request<int>(
      "db_pool_test", std::chrono::steady_clock::now() + 2s, [](pqxx::work&) { return 1; },
      [](db_outcome<int>) {});
    r->commit_however_late(awaited);
    return r;
  }

  // The request the pool handed to this "worker", if any.
  db_request_ptr handed() {
    db_request_ptr got;
    receive_now([&](run_atom, db_request_ptr& r) { got = r; });
    return got;
  }
};

// The request the pool handed to another "worker", if any.
db_request_ptr handed_to(caf::scoped_actor& worker) {
  db_request_ptr got;
  worker->receive([&](run_atom, db_request_ptr& r) { got = r; },
                  caf::after(std::chrono::seconds(0)) >> [] {});
  return got;
}

} // namespace

TEST_CASE("db_pool: a request waits for an idle worker and goes to it", "[actors][db_pool]") {
  pool_fixture fx{1};
  auto req = fx.request();
  submit(*fx.dir, req);
  fx.run();
  CHECK_FALSE(fx.handed()); // no worker has said it is ready
  CHECK(fx.counts->disconnected.load() == 1);

  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  CHECK(fx.handed() == req);
  CHECK(fx.counts->busy.load() == 1);
  CHECK_FALSE(fx.outcome); // the worker answers, not the pool

  SECTION("a worker is handed one request at a time") {
    auto second = fx.request();
    submit(*fx.dir, second);
    fx.run();
    CHECK_FALSE(fx.handed());
    fx.self->send(fx.pool, ready_atom::value, fx.me);
    fx.run();
    CHECK(fx.handed() == second);
  }
}

TEST_CASE("db_pool: with every worker lost, requests fail at once", "[actors][db_pool]") {
  pool_fixture fx{1};
  fx.self->send(fx.pool, lost_atom::value, fx.me);
  fx.run();
  CHECK(fx.counts->disconnected.load() == 1);
  submit(*fx.dir, fx.request());
  fx.run();
  REQUIRE(fx.outcome);
  REQUIRE(std::holds_alternative<db_failure>(*fx.outcome));
  CHECK(std::get<db_failure>(*fx.outcome) == db_failure::unavailable);
  CHECK_FALSE(fx.handed());
}

TEST_CASE("db_pool: an unanswered request fails at its deadline", "[actors][db_pool]") {
  pool_fixture fx{1};
  submit(*fx.dir, fx.request(2s));
  fx.run();
  CHECK_FALSE(fx.outcome);
  fx.sched.advance_time(2s); // the virtual clock: no waiting
  fx.run();
  REQUIRE(fx.outcome);
  CHECK(std::get<db_failure>(*fx.outcome) == db_failure::timeout);

  SECTION("also when a worker holds it") {
    fx.outcome.reset();
    auto held = fx.request(2s);
    submit(*fx.dir, held);
    fx.self->send(fx.pool, ready_atom::value, fx.me);
    fx.run();
    CHECK(fx.handed() == held);
    fx.sched.advance_time(2s);
    fx.run();
    REQUIRE(fx.outcome);
    CHECK(std::get<db_failure>(*fx.outcome) == db_failure::timeout);
  }
}

TEST_CASE("db_pool: a request that finished is freed when its worker lets go, not at its deadline",
          "[actors][db_pool]") {
  // What its callback captured (an exchange, the connection behind an upload
  // link) must not live until the deadline: a drain would wait on it.
  pool_fixture fx{1};
  auto captured = std::make_shared<int>(0);
  std::weak_ptr<int> watch = captured;
  auto req = make_db_request<int>(
    "db_pool_test", std::chrono::steady_clock::now() + 60s, [](pqxx::work&) { return 1; },
    [captured = std::move(captured)](db_outcome<int>) {});
  submit(*fx.dir, std::exchange(req, nullptr));
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  auto ran = fx.handed();
  REQUIRE(ran);
  ran->deliver([] {});
  ran.reset(); // the worker is done with it
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  CHECK(watch.expired()); // 60 s before its deadline
}

TEST_CASE("db_pool: a commit a worker has claimed is answered by the worker, not the deadline",
          "[actors][db_pool]") {
  // The caller's outcome must be the database's truth: `timeout` only for a
  // transaction that will roll back (db_request::claim_commit).
  pool_fixture fx{1};
  auto held = fx.request(2s);
  submit(*fx.dir, held);
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  REQUIRE(fx.handed() == held);

  SECTION("claimed before the deadline: COMMIT's answer counts, however late") {
    REQUIRE(held->claim_commit());
    fx.sched.advance_time(2s);
    fx.run();
    CHECK_FALSE(fx.outcome);
    held->deliver([&] { fx.outcome = db_outcome<int>{7}; });
    REQUIRE(fx.outcome);
    CHECK(std::get<int>(*fx.outcome) == 7);
  }
  SECTION("claimed, then the connection broke: the outcome is in doubt") {
    REQUIRE(held->claim_commit());
    held->fail(db_failure::unavailable); // or the worker died: the destructor's
    REQUIRE(fx.outcome);
    CHECK(std::get<db_failure>(*fx.outcome) == db_failure::in_doubt);
  }
  SECTION("the deadline answered first: the worker may not commit") {
    fx.sched.advance_time(2s);
    fx.run();
    REQUIRE(fx.outcome);
    CHECK(std::get<db_failure>(*fx.outcome) == db_failure::timeout);
    CHECK_FALSE(held->claim_commit());
  }
}

TEST_CASE("db_pool: a request to commit however late is never answered `timeout`",
          "[actors][db_pool]") {
  pool_fixture fx{1};
  std::optional<db_outcome<int>> outcome;
  auto cleanup = make_db_request<int>(
    "db_pool_test", std::chrono::steady_clock::now() - 1ms, [](pqxx::work&) { return 1; },
    [&](db_outcome<int> o) { outcome = std::move(o); });
  cleanup->commit_however_late();
  submit(*fx.dir, cleanup);
  fx.run();
  fx.sched.advance_time(std::chrono::hours{24});
  fx.run();
  CHECK_FALSE(outcome);
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  REQUIRE(fx.handed() == cleanup);
  CHECK(cleanup->claim_commit());
  cleanup->deliver([&] { outcome = db_outcome<int>{1}; });
  CHECK(std::get<int>(*outcome) == 1);
}

TEST_CASE("db_pool: a request a worker gives back after a lock wait is queued again",
          "[actors][db_pool]") {
  pool_fixture fx{1};
  std::optional<db_outcome<int>> outcome;
  auto audit = make_db_request<int>(
    "db_pool_test", std::chrono::steady_clock::now() + 2s, [](pqxx::work&) { return 1; },
    [&](db_outcome<int> o) { outcome = std::move(o); });
  audit->commit_however_late();
  submit(*fx.dir, audit);
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  REQUIRE(fx.handed() == audit);
  // The worker's lock wait ran out: rolled back, given back, and idle.
  CHECK(audit->retry_delay() == 250ms);
  fx.self->send(fx.pool, retry_atom::value, audit);
  fx.run();
  CHECK_FALSE(fx.handed()); // the worker has not said it is ready yet
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  CHECK(fx.handed() == audit);
  fx.sched.advance_time(std::chrono::hours{1});
  fx.run();
  CHECK_FALSE(outcome); // never answered `timeout`, however many retries

  SECTION("each retry waits twice as long, up to 2 s") {
    std::vector<std::chrono::milliseconds> delays;
    for (int i = 0; i < 5; ++i)
      delays.push_back(audit->retry_delay());
    CHECK(delays == std::vector<std::chrono::milliseconds>{500ms, 1s, 2s, 2s, 2s});
  }
  SECTION("with every worker lost, it fails") {
    fx.self->send(fx.pool, lost_atom::value, fx.me);
    fx.run();
    fx.self->send(fx.pool, retry_atom::value, audit);
    fx.run();
    REQUIRE(outcome);
    CHECK(std::get<db_failure>(*outcome) == db_failure::unavailable);
  }
}

TEST_CASE("db_pool: a request a client waits for that commits however late goes before the others",
          "[actors][db_pool]") {
  pool_fixture fx{1};
  auto stuck = fx.late_request();
  submit(*fx.dir, stuck);
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.run();
  REQUIRE(fx.handed() == stuck);
  fx.self->send(fx.pool, retry_atom::value, stuck); // its lock wait ran out
  fx.run();
  // Review 9: a refused tus upload's deletion, whose answer a client waits
  // for, waited behind every audit row stuck on a lock.
  auto fresh = fx.late_request();
  auto deletion = fx.late_request(db_request::awaited::yes);
  submit(*fx.dir, fresh);
  submit(*fx.dir, deletion);
  fx.run();
  for (const auto& expected : {deletion, stuck, fresh}) {
    fx.self->send(fx.pool, ready_atom::value, fx.me);
    fx.run();
    CHECK(fx.handed() == expected);
  }
}

TEST_CASE("db_pool: a request nobody waits for gets a worker under a steady load of others",
          "[actors][db_pool]") {
  pool_fixture fx{2};
  caf::scoped_actor other_self{fx.sys};
  auto other = caf::actor_cast<db_worker_actor>(other_self);
  std::vector<db_request_ptr> answered;
  for (int i = 0; i < 3; ++i) {
    answered.push_back(fx.request());
    submit(*fx.dir, answered.back());
  }
  auto audit = fx.late_request();
  submit(*fx.dir, audit);
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.self->send(fx.pool, ready_atom::value, other);
  fx.run();
  // Queued last, it runs first: none of its kind was running (review 10:
  // behind requests a client waits for, it waited for a lull).
  CHECK(fx.handed() == audit);
  CHECK(handed_to(other_self) == answered[0]);
  fx.self->send(fx.pool, ready_atom::value, other);
  fx.run();
  CHECK(handed_to(other_self) == answered[1]);
}

TEST_CASE("db_pool: the workers kept from however-late requests are counted among connected ones",
          "[actors][db_pool]") {
  pool_fixture fx{3};
  caf::scoped_actor other_self{fx.sys}, lost_self{fx.sys};
  auto other = caf::actor_cast<db_worker_actor>(other_self);
  auto lost = caf::actor_cast<db_worker_actor>(lost_self);
  // Of three workers one cannot connect (max_connections): two are left,
  // and however-late requests may take only one of them (review 9).
  fx.self->send(fx.pool, lost_atom::value, lost);
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.self->send(fx.pool, ready_atom::value, other);
  fx.run();
  auto first = fx.late_request();
  auto second = fx.late_request();
  submit(*fx.dir, first);
  submit(*fx.dir, second);
  fx.run();
  CHECK(fx.handed() == first);
  CHECK_FALSE(handed_to(other_self));
  auto answered = fx.request();
  submit(*fx.dir, answered);
  fx.run();
  CHECK(handed_to(other_self) == answered);
}

TEST_CASE("db_pool: requests that commit however late never take the last idle worker",
          "[actors][db_pool]") {
  pool_fixture fx{2};
  caf::scoped_actor other_self{fx.sys};
  auto other = caf::actor_cast<db_worker_actor>(other_self);
  auto first = fx.late_request();
  auto second = fx.late_request();
  auto answered = fx.request();
  submit(*fx.dir, first);
  submit(*fx.dir, second);
  submit(*fx.dir, answered);
  fx.self->send(fx.pool, ready_atom::value, fx.me);
  fx.self->send(fx.pool, ready_atom::value, other);
  fx.run();
  // One worker takes the first late request; the other skips the second
  // one for the request a client waits on.
  CHECK(fx.handed() == first);
  CHECK(handed_to(other_self) == answered);
  // Done with the answered one, the other worker is still the last free
  // one as long as the first late request runs.
  fx.self->send(fx.pool, ready_atom::value, other);
  fx.run();
  CHECK_FALSE(handed_to(other_self));
  fx.self->send(fx.pool, ready_atom::value, fx.me); // the first one is over
  fx.run();
  CHECK(handed_to(other_self) == second); // the worker idle the longest
}

TEST_CASE("db_pool: a request past its deadline cannot be claimed, even before the timer fires",
          "[actors][db_pool]") {
  std::optional<db_outcome<int>> outcome;
  auto late = make_db_request<int>(
    "db_pool_test", std::chrono::steady_clock::now() - 1ms, [](pqxx::work&) { return 1; },
    [&](db_outcome<int> o) { outcome = std::move(o); });
  CHECK_FALSE(late->claim_commit());
  REQUIRE(outcome);
  CHECK(std::get<db_failure>(*outcome) == db_failure::timeout);
}

TEST_CASE("db_pool: no pool in the directory fails the request at once", "[actors][db_pool]") {
  actor_directory empty;
  std::optional<db_outcome<int>> outcome;
  submit(empty,
         make_db_request<int>(
           "db_pool_test", std::chrono::steady_clock::now() + 2s, [](pqxx::work&) { return 1; },
           [&](db_outcome<int> o) { outcome = std::move(o); }));
  REQUIRE(outcome);
  CHECK(std::get<db_failure>(*outcome) == db_failure::unavailable);
}

// Supervision: restart policies, strategies, intensity/escalation, nesting,
// shutdown, and the real db supervision tree.
//
// Supervisors and the test children are cooperative actors, so those cases
// run on the deterministic test scheduler (tests/unit/coordinated_system.hpp):
// after `run()` every message has been handled, and a negative ("X was NOT
// restarted") is simply checked. The real tree has detached db workers (own
// threads, whose exits the test scheduler cannot order), so it runs on a real
// scheduler and waits for conditions with a deadline. There a negative is
// checked through a barrier rather than a pause: the supervisor holds a
// strong handle to each child (and its down message carries another) until
// it has handled that child's down message, so `dir->find(name)` turning
// invalid means the supervisor has finished with the old child; had it
// restarted it, `find` would return the new one instead.
#include "actors/actor_directory.hpp"
#include "actors/actor_tree.hpp"
#include "actors/db_pool.hpp"
#include "actors/db_request.hpp"
#include "actors/supervisor.hpp"
#include "config/config.hpp"
#include "tests/unit/coordinated_system.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

using crash_atom = caf::atom_constant<caf::atom("t_crash")>;
using stop_atom = caf::atom_constant<caf::atom("t_stop")>;
using ping_atom = caf::atom_constant<caf::atom("t_ping")>;
using pong_atom = caf::atom_constant<caf::atom("t_pong")>;

constexpr auto deadline = 5s;

// A child: throws on `crash` (like a bug), quits normally on `stop`, answers
// `ping`. The exception handler only keeps CAF from printing each crash; the
// exit reason is the default one (sec::runtime_error).
caf::behavior test_child(caf::event_based_actor* self) {
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr&) -> caf::error {
    return caf::make_error(caf::sec::runtime_error);
  });
  return {
    [](crash_atom) { throw std::runtime_error("test crash"); },
    [=](stop_atom) { self->quit(); },
    [](ping_atom) { return pong_atom::value; },
  };
}

portal::child_spec child(const std::string& name, portal::restart_policy policy) {
  return portal::child_spec{
    name, "test_child", policy,
    [](caf::event_based_actor* sup, portal::probe_ptr) { return sup->spawn(test_child); }};
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = deadline) {
  auto until = steady::now() + timeout;
  while (!pred()) {
    if (steady::now() >= until)
      return pred();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// What the directory says about the children, for either scheduler.
struct directory_view {
  std::shared_ptr<portal::actor_directory> dir = std::make_shared<portal::actor_directory>();

  std::optional<portal::actor_entry> entry(const std::string& name) const {
    for (auto& e : dir->entries())
      if (e.name == name)
        return e;
    return std::nullopt;
  }

  // The id of the live actor under `name`, or 0.
  caf::actor_id live_id(const std::string& name) const {
    auto h = dir->find(name);
    return h ? h.id() : 0;
  }

  uint64_t restarts(const std::string& name) const {
    auto e = entry(name);
    return e ? e->restarts : 0;
  }

  // The entry is live, agrees with its handle, and has been restarted
  // `n` times; its id differs from `old_id`.
  bool restarted(const std::string& name, caf::actor_id old_id, uint64_t n) const {
    auto e = entry(name);
    auto id = live_id(name);
    return e && e->restarts == n && id != 0 && id != old_id && e->id == id;
  }

  bool all_live(const std::vector<std::string>& names) const {
    for (auto& n : names) {
      auto e = entry(n);
      if (!e || live_id(n) == 0 || e->id != live_id(n))
        return false;
    }
    return true;
  }

  // The supervisor has handled the old child's exit and did not start a
  // new one.
  bool gone(const std::string& name) const { return !dir->find(name); }
};

// Supervisors and test children on the test scheduler: each step runs every
// message it causes before the test looks.
struct fixture : portal::test::coordinated_system, directory_view {
  // Held strongly (a supervisor nobody references dies as `unreachable`,
  // taking its children's handles with it) and stopped in the destructor,
  // even after a failed REQUIRE.
  std::vector<caf::actor> roots;

  ~fixture() {
    for (auto& r : roots)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    roots.clear();
    run();
  }

  caf::actor start(portal::supervisor_spec spec) {
    auto h = portal::spawn_supervisor(sys, dir, std::move(spec));
    roots.push_back(h);
    run();
    return h;
  }

  void send(const std::string& name, caf::atom_value what) {
    auto h = dir->find(name);
    REQUIRE(h);
    caf::anon_send(h, what);
    run();
  }

  void exit(const caf::actor& h, caf::exit_reason why) {
    REQUIRE(h);
    caf::anon_send_exit(h, why);
    run();
  }

  bool answers(const caf::actor& h) {
    if (!h)
      return false;
    auto pong = self->request(h, caf::infinite, ping_atom::value);
    run();
    bool ok = false;
    pong.receive([&](pong_atom) { ok = true; }, [&](caf::error&) { ok = false; });
    return ok;
  }

  caf::actor_id monitor(const caf::actor& h) {
    REQUIRE(h);
    self->monitor(h);
    return h.id();
  }

  // The down messages that have arrived, by id.
  std::map<caf::actor_id, caf::error> downs() {
    std::map<caf::actor_id, caf::error> out;
    while (receive_now([&](caf::down_msg& dm) { out.emplace(dm.source.id(), dm.reason); })) {
    }
    return out;
  }
};

struct real_config : caf::actor_system_config {
  real_config() { set("scheduler.max-threads", 2); }
};

// The real tree, with detached workers: a real scheduler.
struct real_fixture : directory_view {
  real_config cfg;
  caf::actor_system sys{cfg};
  std::vector<caf::actor> roots;

  ~real_fixture() {
    for (auto& r : roots)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    roots.clear();
  }
};

// Receives down messages until every id in `ids` is down or the deadline
// passes; returns the reasons by id (missing ids timed out).
std::map<caf::actor_id, caf::error> await_downs(caf::scoped_actor& self,
                                                std::vector<caf::actor_id> ids) {
  std::map<caf::actor_id, caf::error> out;
  auto until = steady::now() + deadline;
  while (out.size() < ids.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    if (left <= 0ms)
      break;
    self->receive(
      [&](caf::down_msg& dm) {
        for (auto id : ids)
          if (dm.source.id() == id)
            out.emplace(id, dm.reason);
      },
      caf::after(left) >> [] {});
  }
  return out;
}

caf::actor_id monitor(caf::scoped_actor& self, const caf::actor& h) {
  REQUIRE(h);
  self->monitor(h);
  return h.id();
}

using portal::restart_policy;
using portal::restart_strategy;

} // namespace

TEST_CASE("one_for_one restarts a crashed permanent child, not its sibling", "[supervisor]") {
  fixture f;
  f.start({"sup",
           restart_strategy::one_for_one,
           {5, 10s},
           {child("a", restart_policy::permanent), child("b", restart_policy::permanent)}});
  REQUIRE(f.all_live({"sup", "a", "b"}));
  auto a0 = f.live_id("a");
  auto b0 = f.live_id("b");
  CHECK(f.restarts("a") == 0);

  f.send("a", crash_atom::value);
  REQUIRE(f.restarted("a", a0, 1));
  auto e = f.entry("a");
  REQUIRE(e);
  CHECK(e->name == "a");
  CHECK(e->kind == "test_child");
  CHECK(e->supervisor == "sup");

  CHECK(f.live_id("b") == b0);
  CHECK(f.restarts("b") == 0);

  CHECK(f.answers(f.dir->find("a")));
  CHECK(f.answers(f.dir->find("b")));
}

TEST_CASE("transient: restarted after a crash, not after a normal exit or user_shutdown",
          "[supervisor]") {
  fixture f;
  f.start({"sup",
           restart_strategy::one_for_one,
           {5, 10s},
           {child("t", restart_policy::transient), child("u", restart_policy::transient)}});
  REQUIRE(f.all_live({"t", "u"}));
  auto t0 = f.live_id("t");

  f.send("t", crash_atom::value);
  REQUIRE(f.restarted("t", t0, 1));
  auto t1 = f.live_id("t");

  SECTION("normal exit") {
    f.send("t", stop_atom::value);
    REQUIRE(f.gone("t"));
    auto e = f.entry("t");
    REQUIRE(e); // a transient child keeps its entry
    CHECK(e->restarts == 1);
    CHECK(e->id == t1);
  }
  SECTION("user_shutdown") {
    f.exit(f.dir->find("u"), caf::exit_reason::user_shutdown);
    REQUIRE(f.gone("u"));
    CHECK(f.restarts("u") == 0);
    // the crashed-and-restarted sibling is untouched
    CHECK(f.live_id("t") == t1);
  }
}

TEST_CASE("temporary: never restarted, and its entry is removed", "[supervisor]") {
  fixture f;
  f.start({"sup",
           restart_strategy::one_for_one,
           {5, 10s},
           {child("tmp", restart_policy::temporary), child("p", restart_policy::permanent)}});
  REQUIRE(f.all_live({"tmp", "p"}));
  auto p0 = f.live_id("p");

  SECTION("crash") {
    f.send("tmp", crash_atom::value);
  }
  SECTION("normal exit") {
    f.send("tmp", stop_atom::value);
  }

  CHECK_FALSE(f.entry("tmp"));
  CHECK(f.gone("tmp"));
  CHECK(f.live_id("p") == p0);
  CHECK(f.restarts("p") == 0);
}

TEST_CASE("permanent: restarted even after a normal exit or user_shutdown", "[supervisor]") {
  fixture f;
  f.start(
    {"sup", restart_strategy::one_for_one, {5, 10s}, {child("p", restart_policy::permanent)}});
  REQUIRE(f.all_live({"p"}));
  auto p0 = f.live_id("p");

  f.send("p", stop_atom::value);
  REQUIRE(f.restarted("p", p0, 1));
  auto p1 = f.live_id("p");

  f.exit(f.dir->find("p"), caf::exit_reason::user_shutdown);
  REQUIRE(f.restarted("p", p1, 2));

  CHECK(f.answers(f.dir->find("p")));
}

TEST_CASE("rest_for_one restarts the failed child and those after it", "[supervisor]") {
  fixture f;
  f.start({"sup",
           restart_strategy::rest_for_one,
           {5, 10s},
           {child("a", restart_policy::permanent), child("b", restart_policy::permanent),
            child("c", restart_policy::permanent)}});
  REQUIRE(f.all_live({"a", "b", "c"}));
  auto a0 = f.live_id("a");
  auto b0 = f.live_id("b");
  auto c0 = f.live_id("c");

  f.send("b", crash_atom::value);
  REQUIRE(f.restarted("b", b0, 1));
  REQUIRE(f.restarted("c", c0, 1));
  CHECK(f.live_id("a") == a0);
  CHECK(f.restarts("a") == 0);
  auto b1 = f.live_id("b");
  auto c1 = f.live_id("c");

  // The first child: everything restarts.
  f.send("a", crash_atom::value);
  CHECK(f.restarted("a", a0, 1));
  CHECK(f.restarted("b", b1, 2));
  CHECK(f.restarted("c", c1, 2));

  for (auto name : {"a", "b", "c"})
    CHECK(f.answers(f.dir->find(name)));
}

TEST_CASE("intensity exceeded: the supervisor stops its children and exits", "[supervisor]") {
  fixture f;
  auto sup =
    f.start({"sup",
             restart_strategy::one_for_one,
             {2, 10s},
             {child("x", restart_policy::permanent), child("y", restart_policy::permanent)}});
  REQUIRE(f.all_live({"x", "y"}));
  auto sup_id = f.monitor(sup);
  sup = nullptr;

  auto x0 = f.live_id("x");
  f.send("x", crash_atom::value);
  REQUIRE(f.restarted("x", x0, 1));
  auto x1 = f.live_id("x");
  f.send("x", crash_atom::value);
  REQUIRE(f.restarted("x", x1, 2));
  f.send("x", crash_atom::value);

  auto downs = f.downs();
  REQUIRE(downs.count(sup_id) == 1);
  auto& reason = downs[sup_id];
  INFO("supervisor exit reason: " << f.sys.render(reason));
  CHECK(static_cast<bool>(reason));           // not normal
  CHECK((reason == caf::sec::runtime_error)); // the child's reason, escalated

  CHECK(f.gone("x"));
  CHECK(f.gone("y"));
  CHECK(f.restarts("x") == 2);
  CHECK(f.restarts("y") == 0);
}

TEST_CASE("nested: an escalating inner supervisor is restarted by the outer one", "[supervisor]") {
  fixture f;
  portal::supervisor_spec inner{
    "inner",
    restart_strategy::one_for_one,
    {1, 10s},
    {child("n_crash", restart_policy::permanent), child("n_peer", restart_policy::permanent)}};
  f.start({"outer",
           restart_strategy::one_for_one,
           {5, 10s},
           {portal::supervisor_child(f.dir, inner), child("o_peer", restart_policy::permanent)}});
  REQUIRE(f.all_live({"outer", "inner", "n_crash", "n_peer", "o_peer"}));
  auto inner0 = f.live_id("inner");
  auto crash0 = f.live_id("n_crash");
  auto peer0 = f.live_id("n_peer");
  auto o_peer0 = f.live_id("o_peer");
  CHECK(f.entry("inner")->supervisor == "outer");
  CHECK(f.entry("n_crash")->supervisor == "inner");

  f.send("n_crash", crash_atom::value);
  REQUIRE(f.restarted("n_crash", crash0, 1));
  CHECK(f.live_id("inner") == inner0);
  auto crash1 = f.live_id("n_crash");

  f.send("n_crash", crash_atom::value); // the second within 10 s: escalates
  CHECK(f.restarted("inner", inner0, 1));
  auto c = f.live_id("n_crash");
  auto p = f.live_id("n_peer");
  CHECK((c != 0 && c != crash1 && c != crash0));
  CHECK((p != 0 && p != peer0));
  CHECK(f.all_live({"n_crash", "n_peer"}));
  CHECK(f.live_id("o_peer") == o_peer0);
  CHECK(f.restarts("o_peer") == 0);

  CHECK(f.answers(f.dir->find("n_crash")));
  CHECK(f.answers(f.dir->find("n_peer")));
}

TEST_CASE("exit(user_shutdown) to a supervisor stops its children and itself", "[supervisor]") {
  fixture f;
  auto sup = f.start({"sup",
                      restart_strategy::one_for_one,
                      {5, 10s},
                      {child("a", restart_policy::permanent), child("b", restart_policy::transient),
                       child("c", restart_policy::temporary)}});
  REQUIRE(f.all_live({"a", "b", "c"}));
  std::vector<caf::actor_id> ids{f.monitor(sup)};
  for (auto name : {"a", "b", "c"})
    ids.push_back(f.monitor(f.dir->find(name)));

  f.exit(sup, caf::exit_reason::user_shutdown);
  auto downs = f.downs();
  REQUIRE(downs.size() == ids.size());
  for (auto& kv : downs) {
    INFO("actor " << kv.first << " exit reason: " << f.sys.render(kv.second));
    CHECK((kv.second == caf::exit_reason::user_shutdown));
  }
  CHECK(f.gone("a"));
  CHECK(f.gone("b"));
  CHECK(f.gone("c"));
  CHECK(f.restarts("a") == 0);
}

TEST_CASE("a killed supervisor (untrappable) still takes its children down", "[supervisor]") {
  fixture f;
  auto sup =
    f.start({"sup",
             restart_strategy::one_for_one,
             {5, 10s},
             {child("a", restart_policy::permanent), child("b", restart_policy::permanent)}});
  REQUIRE(f.all_live({"a", "b"}));
  // Someone else (a client) holds a strong handle to a child: it must not
  // outlive its supervisor.
  auto client_held = f.dir->find("a");
  std::vector<caf::actor_id> ids{f.monitor(sup), f.monitor(client_held),
                                 f.monitor(f.dir->find("b"))};
  f.exit(sup, caf::exit_reason::kill);
  auto downs = f.downs();
  CHECK(downs.size() == ids.size());
  CHECK((downs[ids[0]] == caf::exit_reason::kill));
}

TEST_CASE("names_started_by: every permanent child at every depth", "[supervisor]") {
  portal::supervisor_spec inner{"inner",
                                restart_strategy::one_for_one,
                                {1, 10s},
                                {child("n_a", restart_policy::permanent),
                                 child("n_once", restart_policy::temporary),
                                 child("n_b", restart_policy::permanent)}};
  portal::supervisor_spec gone{
    "gone", restart_strategy::one_for_one, {1, 10s}, {child("g_a", restart_policy::permanent)}};
  portal::supervisor_spec outer{"outer",
                                restart_strategy::one_for_one,
                                {1, 10s},
                                {child("o_a", restart_policy::transient),
                                 portal::supervisor_child(nullptr, inner),
                                 portal::supervisor_child(nullptr, gone, restart_policy::temporary),
                                 child("o_b", restart_policy::permanent)}};
  CHECK(portal::names_started_by(outer) == std::vector<std::string>{"inner", "n_a", "n_b", "o_b"});
}

TEST_CASE("actor_directory::wait_for: true once every name is live, false at the deadline",
          "[supervisor]") {
  real_fixture f;
  auto a = f.sys.spawn(test_child);
  auto b = f.sys.spawn(test_child);
  f.roots = {a, b};
  auto dir = std::make_shared<portal::actor_directory>();
  dir->record(portal::actor_entry{"a", "test_child", "", a.id(), 0, nullptr}, a, false);
  CHECK_FALSE(dir->wait_for({"a", "b"}, steady::now() + 50ms));
  std::thread late{[&] {
    std::this_thread::sleep_for(20ms); // the recording is what is waited for, not this
    dir->record(portal::actor_entry{"b", "test_child", "", b.id(), 0, nullptr}, b, false);
  }};
  CHECK(dir->wait_for({"a", "b"}, steady::now() + deadline));
  late.join();
  CHECK(dir->wait_for({}, steady::now()));
}

TEST_CASE("the real tree: db workers and pool are restarted under stable names", "[actor_tree]") {
  real_fixture f;
  portal::config cfg;
  cfg.database_url = "postgresql://nobody@127.0.0.1:1/none"; // closed port: never connects
  cfg.db_pool_size = 2;
  cfg.data_dir = std::filesystem::temp_directory_path() / "portal-supervisor-test"; // never written
  auto tree = portal::start_actor_tree(f.sys, cfg);
  f.roots.push_back(tree.root);
  auto& dir = *tree.directory;
  f.dir = tree.directory;
  const std::vector<std::string> names{"root",       "db_supervisor", "db_pool",
                                       "db_workers", "db_worker_1",   "db_worker_2"};
  // Started at return, not soon after: the server listens right after this,
  // and a request that found no db_pool would be refused with 503.
  REQUIRE(tree.started);
  REQUIRE(f.all_live(names));
  CHECK(f.entry("db_worker_1")->supervisor == "db_workers");
  CHECK(f.entry("db_workers")->supervisor == "db_supervisor");
  CHECK(f.entry("db_pool")->supervisor == "db_supervisor");

  auto submit_unavailable_fast = [&] {
    auto p = std::make_shared<std::promise<portal::db_outcome<int>>>();
    auto fut = p->get_future();
    auto t0 = steady::now();
    portal::submit(dir, portal::make_db_request<int>(
                          "supervisor_test", t0 + 2s, [](pqxx::work&) { return 1; },
                          [p](portal::db_outcome<int> o) { p->set_value(std::move(o)); }));
    REQUIRE(fut.wait_for(3s) == std::future_status::ready);
    auto elapsed = steady::now() - t0;
    auto outcome = fut.get();
    REQUIRE(std::holds_alternative<portal::db_failure>(outcome));
    CHECK(std::get<portal::db_failure>(outcome) == portal::db_failure::unavailable);
    CHECK(elapsed < 500ms);
  };

  SECTION("a db request fails fast with unavailable while no worker is connected") {
    submit_unavailable_fast();
  }

  SECTION("killing db_worker_1 restarts only it") {
    auto w1 = f.live_id("db_worker_1");
    auto w2 = f.live_id("db_worker_2");
    caf::anon_send_exit(dir.find("db_worker_1"), caf::exit_reason::kill);
    REQUIRE(wait_until([&] { return f.restarted("db_worker_1", w1, 1); }));
    CHECK(f.live_id("db_worker_2") == w2);
    CHECK(f.restarts("db_worker_2") == 0);
    CHECK(f.restarts("db_workers") == 0);
    CHECK(f.restarts("db_pool") == 0);
  }

  SECTION("killing db_workers (untrappable) stops its workers; it is restarted with new ones") {
    caf::scoped_actor self{f.sys};
    auto workers0 = f.live_id("db_workers");
    auto w1 = monitor(self, dir.find("db_worker_1"));
    auto w2 = monitor(self, dir.find("db_worker_2"));
    caf::anon_send_exit(dir.find("db_workers"), caf::exit_reason::kill);
    // The old workers (detached, kept alive by their reconnect timers) must
    // not be orphaned: they would reconnect forever and block shutdown.
    auto downs = await_downs(self, {w1, w2});
    CHECK(downs.size() == 2);
    REQUIRE(wait_until([&] {
      auto n1 = f.live_id("db_worker_1");
      auto n2 = f.live_id("db_worker_2");
      return f.restarted("db_workers", workers0, 1) && n1 != 0 && n1 != w1 && n2 != 0 && n2 != w2 &&
             f.all_live(names);
    }));
    CHECK(f.restarts("db_pool") == 0);
  }

  SECTION("killing db_pool restarts the pool and the workers (rest_for_one)") {
    auto sup0 = f.live_id("db_supervisor");
    auto pool0 = f.live_id("db_pool");
    auto workers0 = f.live_id("db_workers");
    auto w1 = f.live_id("db_worker_1");
    auto w2 = f.live_id("db_worker_2");
    caf::anon_send_exit(dir.find("db_pool"), caf::exit_reason::kill);
    REQUIRE(wait_until([&] {
      auto n1 = f.live_id("db_worker_1");
      auto n2 = f.live_id("db_worker_2");
      return f.restarted("db_pool", pool0, 1) && f.restarted("db_workers", workers0, 1) &&
             n1 != 0 && n1 != w1 && n2 != 0 && n2 != w2 && f.all_live(names);
    }));
    CHECK(f.live_id("db_supervisor") == sup0);
    CHECK(f.restarts("db_supervisor") == 0);
    // the new pool works: still no database, still a fast refusal
    submit_unavailable_fast();
  }

  // Shutdown: the whole tree goes down, detached workers included.
  caf::scoped_actor self{f.sys};
  std::vector<caf::actor_id> ids;
  for (auto& n : names)
    ids.push_back(monitor(self, dir.find(n)));
  caf::anon_send_exit(tree.root, caf::exit_reason::user_shutdown);
  auto downs = await_downs(self, ids);
  CHECK(downs.size() == ids.size());
  for (auto& kv : downs) {
    INFO("actor " << kv.first << " exit reason: " << f.sys.render(kv.second));
    CHECK((kv.second == caf::exit_reason::user_shutdown));
  }
}

// actor_probe: what /admin/actors and the metrics read of a live actor. On a
// real actor_system; waits are conditions with deadlines, never pauses.
#include "actors/actor_directory.hpp"
#include "actors/actor_probe.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <thread>

using namespace std::chrono_literals;

namespace {

using work_atom = caf::atom_constant<caf::atom("p_work")>;
using add_atom = caf::atom_constant<caf::atom("p_add")>;
using boom_atom = caf::atom_constant<caf::atom("p_boom")>;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until)
      return pred();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

struct test_config : caf::actor_system_config {
  test_config() { set("scheduler.max-threads", 2); }
};

// `work` blocks until `release` is set: the actor is then busy, and what
// arrives meanwhile waits in its mailbox.
caf::behavior probed_actor(caf::event_based_actor* self, portal::probe_ptr probe,
                           std::shared_future<void> release) {
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr&) -> caf::error {
    return caf::make_error(caf::sec::runtime_error);
  });
  return portal::probed(
    self, probe, [release](work_atom) { release.wait(); },
    [](add_atom, int a, const int& b) { return a + b; },
    [](boom_atom) { throw std::runtime_error("boom"); });
}

} // namespace

TEST_CASE("a probed actor counts its messages and shows when it is busy", "[probe]") {
  test_config cfg;
  caf::actor_system sys{cfg};
  auto probe = std::make_shared<portal::actor_probe>();
  std::promise<void> gate;
  std::shared_future<void> release = gate.get_future().share();
  auto a = sys.spawn<caf::detached>(probed_actor, probe, release);

  // Handlers keep their signatures: the answer still arrives.
  caf::scoped_actor me{sys};
  int sum = 0;
  me->request(a, caf::infinite, add_atom::value, 2, 3)
    .receive([&](int r) { sum = r; }, [](caf::error&) {});
  CHECK(sum == 5);
  CHECK(probe->messages.load() == 1);
  CHECK(eventually([&] { return probe->activity.load() == portal::actor_activity::idle; }));

  caf::anon_send(a, work_atom::value);
  REQUIRE(eventually([&] { return probe->activity.load() == portal::actor_activity::busy; }));
  CHECK(probe->busy_since_us.load() > 0);
  for (int i = 0; i < 3; ++i)
    caf::anon_send(a, add_atom::value, i, i);
  gate.set_value();
  // After `work`, it saw the three queued messages, then handled them.
  CHECK(eventually([&] { return probe->messages.load() == 5; }));
  CHECK(eventually([&] { return probe->activity.load() == portal::actor_activity::idle; }));
  CHECK(probe->mailbox.load() == 0);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("temporary actors leave the directory when they exit; crashes are counted", "[probe]") {
  test_config cfg;
  caf::actor_system sys{cfg};
  auto dir = std::make_shared<portal::actor_directory>();
  std::promise<void> gate;
  gate.set_value();
  std::shared_future<void> release = gate.get_future().share();

  auto record = [&](const std::string& name) {
    auto probe = std::make_shared<portal::actor_probe>();
    auto h = sys.spawn(probed_actor, probe, release);
    dir->record_temporary(portal::actor_entry{name, "upload_session", "", h.id(), 0, probe}, h);
    return h;
  };
  auto calm = record("calm");
  auto doomed = record("doomed");
  REQUIRE(dir->entries().size() == 2);
  for (auto& e : dir->entries())
    CHECK(e.temporary);
  CHECK(dir->find(doomed.id()) == doomed);

  caf::anon_send_exit(calm, caf::exit_reason::user_shutdown); // an orderly end
  caf::anon_send(doomed, boom_atom::value);                   // a crash
  CHECK(eventually([&] { return dir->entries().empty(); }));
  CHECK(dir->crashes()["upload_session"] == 1);
  CHECK(!dir->find(doomed.id()));

  SECTION("an actor that exited before it was recorded is not left behind") {
    auto probe = std::make_shared<portal::actor_probe>();
    auto h = sys.spawn(probed_actor, probe, release);
    caf::scoped_actor me{sys};
    me->monitor(h);
    caf::anon_send_exit(h, caf::exit_reason::kill);
    me->receive([](caf::down_msg&) {});
    dir->record_temporary(portal::actor_entry{"late", "upload_session", "", h.id(), 0, probe}, h);
    CHECK(dir->entries().empty());
    CHECK(dir->crashes()["upload_session"] == 2);
  }
}

// actor_probe: what /admin/actors and the metrics read of a live actor. On
// the deterministic test scheduler (tests/unit/coordinated_system.hpp): the
// test decides when each message runs, so "busy" and "waiting" are observed
// at exact points instead of being waited for.
#include "actors/actor_directory.hpp"
#include "actors/actor_probe.hpp"
#include "tests/unit/coordinated_system.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <memory>

namespace {

using work_atom = caf::atom_constant<caf::atom("p_work")>;
using add_atom = caf::atom_constant<caf::atom("p_add")>;
using boom_atom = caf::atom_constant<caf::atom("p_boom")>;

// `work` runs `during` while the actor is inside a message.
caf::behavior probed_actor(caf::event_based_actor* self, portal::probe_ptr probe,
                           std::function<void()> during) {
  self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr&) -> caf::error {
    return caf::make_error(caf::sec::runtime_error);
  });
  return portal::probed(
    self, probe, [during](work_atom) { during(); },
    [](add_atom, int a, const int& b) { return a + b; },
    [](boom_atom) { throw std::runtime_error("boom"); });
}

// The same probe on a typed actor: probed() returns its typed_behavior.
using adder_actor = caf::typed_actor<caf::replies_to<add_atom, int, int>::with<int>>;

adder_actor::behavior_type typed_probed_actor(adder_actor::pointer self, portal::probe_ptr probe) {
  return portal::probed(self, probe, [](add_atom, int a, int b) { return a + b; });
}

} // namespace

TEST_CASE("a probed actor counts its messages and shows when it is busy", "[probe]") {
  portal::test::coordinated_system fx;
  auto probe = std::make_shared<portal::actor_probe>();
  portal::actor_activity seen = portal::actor_activity::idle;
  int64_t busy_since = 0;
  auto a = fx.sys.spawn(probed_actor, probe, [&] {
    seen = probe->activity.load();
    busy_since = probe->busy_since_us.load();
  });

  // Handlers keep their signatures: the answer still arrives.
  auto sum = fx.self->request(a, caf::infinite, add_atom::value, 2, 3);
  fx.run();
  int got = 0;
  sum.receive([&](int r) { got = r; }, [](caf::error&) {});
  CHECK(got == 5);
  CHECK(probe->messages.load() == 1);
  CHECK(probe->activity.load() == portal::actor_activity::idle);

  caf::anon_send(a, work_atom::value);
  for (int i = 0; i < 3; ++i)
    caf::anon_send(a, add_atom::value, i, i);
  REQUIRE(fx.sched.try_run_once()); // `work` only
  CHECK(seen == portal::actor_activity::busy);
  CHECK(busy_since > 0);
  // After `work` it saw the three queued messages.
  CHECK(probe->messages.load() == 2);
  CHECK(probe->mailbox.load() == 3);
  CHECK(probe->activity.load() == portal::actor_activity::waiting);

  fx.run();
  CHECK(probe->messages.load() == 5);
  CHECK(probe->mailbox.load() == 0);
  CHECK(probe->activity.load() == portal::actor_activity::idle);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  fx.run();
}

TEST_CASE("a typed actor is probed the same way", "[probe]") {
  portal::test::coordinated_system fx;
  auto probe = std::make_shared<portal::actor_probe>();
  auto a = fx.sys.spawn(typed_probed_actor, probe);
  auto sum = fx.self->request(a, caf::infinite, add_atom::value, 20, 22);
  fx.run();
  int got = 0;
  sum.receive([&](int r) { got = r; }, [](caf::error&) {});
  CHECK(got == 42);
  CHECK(probe->messages.load() == 1);
  CHECK(probe->activity.load() == portal::actor_activity::idle);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  fx.run();
}

TEST_CASE("temporary actors leave the directory when they exit; crashes are counted", "[probe]") {
  portal::test::coordinated_system fx;
  auto dir = std::make_shared<portal::actor_directory>();

  auto record = [&](const std::string& name) {
    auto probe = std::make_shared<portal::actor_probe>();
    auto h = fx.sys.spawn(probed_actor, probe, [] {});
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
  fx.run();
  CHECK(dir->entries().empty());
  CHECK(dir->crashes()["upload_session"] == 1);
  CHECK(!dir->find(doomed.id()));

  SECTION("an actor that exited before it was recorded is not left behind") {
    auto probe = std::make_shared<portal::actor_probe>();
    auto h = fx.sys.spawn(probed_actor, probe, [] {});
    caf::anon_send_exit(h, caf::exit_reason::kill);
    fx.run();
    dir->record_temporary(portal::actor_entry{"late", "upload_session", "", h.id(), 0, probe}, h);
    CHECK(dir->entries().empty());
    CHECK(dir->crashes()["upload_session"] == 2);
  }
}

// A deterministic CAF 0.17 actor system for unit tests: the "testing"
// scheduler policy (caf::scheduler::test_coordinator) runs cooperative actors
// only when the test says so, on the test's thread, and has a virtual clock
// for delayed messages and request timeouts.
//
// CAF's own caf/test/dsl.hpp (test_coordinator_fixture, expect/allow) is not
// used: its checks report to CAF's unit-test engine, which Catch2 does not
// run (CAF_CHECK dereferences the engine's current test: a crash). This is
// the part of that fixture we need, driven by hand.
//
// Detached actors (db workers, storage writers) still run on threads of
// their own; a test that needs them uses a real scheduler and waits on their
// answers (request(...).receive with a timeout).
#pragma once

#include "actors/caf_error.hpp"

#include <caf/all.hpp>

namespace portal::test {

struct coordinated_config : caf::actor_system_config {
  coordinated_config() {
    set("scheduler.policy", caf::atom("testing"));
    portal::register_error_codes(*this);
  }
};

struct coordinated_system {
  coordinated_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::scoped_actor self{sys};

  // Pending request timeouts keep their requester alive until they fire,
  // which on the virtual clock is never: ~actor_system would wait forever.
  ~coordinated_system() {
    sched.clock().cancel_all();
    sched.run();
  }

  // Runs every actor until no mailbox has work.
  void run() { sched.run(); }

  // The next message in the scoped actor's mailbox, if one is there now.
  template <class... Fs>
  bool receive_now(Fs... fs) {
    bool got = true;
    self->receive(
      fs..., caf::after(std::chrono::seconds(0)) >> [&] { got = false; });
    return got;
  }
};

} // namespace portal::test

// portal::error_code travels in messages as a caf::error (actors/caf_error):
// an actor's refusal reaches the requester as the same failure, CAF's own
// errors are told apart, and the actor system renders our codes by name.
#include "actors/caf_error.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

using portal::error_code;
using portal::failure;

namespace {

using check_atom = caf::atom_constant<caf::atom("e_check")>;

using refuser_actor = caf::typed_actor<caf::replies_to<check_atom, int>::with<int>>;

refuser_actor::behavior_type refuser(refuser_actor::pointer) {
  return {[](check_atom, int x) -> caf::result<int> {
    if (x < 0)
      return portal::make_error({error_code::unsafe_entry, "entry ../x escapes the root"});
    return x;
  }};
}

struct test_config : caf::actor_system_config {
  test_config() {
    set("scheduler.policy", caf::atom("testing"));
    portal::register_error_codes(*this);
  }
};

} // namespace

TEST_CASE("a failure survives the trip through caf::error", "[errors]") {
  failure f{error_code::archive_bomb, "more than 100000 entries"};
  auto e = portal::make_error(f);
  CHECK(e == error_code::archive_bomb);
  auto back = portal::to_failure(e);
  REQUIRE(back);
  CHECK(back->code == f.code);
  CHECK(back->message == f.message);

  SECTION("no failure is no error") {
    CHECK_FALSE(portal::make_error(failure{}));
  }
  SECTION("CAF's own errors are not ours") {
    CHECK_FALSE(portal::to_failure(caf::make_error(caf::sec::request_receiver_down)));
    CHECK_FALSE(portal::to_failure(caf::make_error(caf::sec::request_timeout)));
  }
}

TEST_CASE("an actor's refusal reaches its requester as the same failure", "[errors]") {
  test_config cfg;
  caf::actor_system sys{cfg};
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::scoped_actor self{sys};
  auto a = sys.spawn(refuser);

  auto refused = self->request(a, caf::infinite, check_atom::value, -1);
  sched.run();
  std::optional<failure> got;
  refused.receive([](int) {},
                  [&](caf::error& e) {
                    got = portal::to_failure(e);
                    CHECK(sys.render(e) == "unsafe_entry(\"entry ../x escapes the root\")");
                  });
  REQUIRE(got);
  CHECK(got->code == error_code::unsafe_entry);
  CHECK(got->message == "entry ../x escapes the root");

  auto fine = self->request(a, caf::infinite, check_atom::value, 3);
  sched.run();
  int value = 0;
  fine.receive([&](int x) { value = x; }, [](caf::error&) {});
  CHECK(value == 3);
  self->send_exit(a, caf::exit_reason::user_shutdown);
  sched.run();
}

#include "actors/upload_admission.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace portal;
using clock_type = upload_admission::clock;

namespace {

std::shared_ptr<upload_admission> make(unsigned per_user, unsigned total, unsigned per_minute) {
  return std::make_shared<upload_admission>(admission_limits{per_user, total, per_minute});
}

bool admitted(const std::variant<upload_admission::ticket_ptr, admission_refusal>& v) {
  return std::holds_alternative<upload_admission::ticket_ptr>(v);
}

} // namespace

TEST_CASE("the user's ninth concurrent upload is refused until one ends", "[admission]") {
  auto adm = make(8, 256, 1000);
  auto now = clock_type::now();
  std::vector<upload_admission::ticket_ptr> running;
  for (int i = 0; i < 8; ++i) {
    auto v = adm->admit(1, now);
    REQUIRE(admitted(v));
    running.push_back(std::get<upload_admission::ticket_ptr>(v));
  }
  auto ninth = adm->admit(1, now);
  REQUIRE_FALSE(admitted(ninth));
  CHECK(std::get<admission_refusal>(ninth).retry_after_seconds >= 1);
  CHECK(adm->active(1) == 8);
  // Another user is not affected by the first one's uploads.
  CHECK(admitted(adm->admit(2, now)));

  running.front()->release();
  running.front()->release(); // twice is once
  CHECK(adm->active(1) == 7);
  CHECK(admitted(adm->admit(1, now)));
}

TEST_CASE("a dropped ticket frees its slot", "[admission]") {
  auto adm = make(1, 256, 1000);
  {
    auto v = adm->admit(1);
    REQUIRE(admitted(v));
    CHECK_FALSE(admitted(adm->admit(1)));
  }
  CHECK(adm->active() == 0);
  CHECK(admitted(adm->admit(1)));
}

TEST_CASE("the total limit holds across users", "[admission]") {
  auto adm = make(8, 3, 1000);
  std::vector<upload_admission::ticket_ptr> running;
  for (int64_t user = 1; user <= 3; ++user)
    running.push_back(std::get<upload_admission::ticket_ptr>(adm->admit(user)));
  auto v = adm->admit(4);
  REQUIRE_FALSE(admitted(v));
  CHECK(adm->active() == 3);
  CHECK(adm->active(4) == 0); // a refused user holds nothing
  running.clear();
  CHECK(admitted(adm->admit(4)));
}

TEST_CASE("upload starts are a token bucket per user", "[admission]") {
  auto adm = make(1000, 1000, 60); // one start per second, a burst of 60
  auto t0 = clock_type::now();
  for (int i = 0; i < 60; ++i)
    REQUIRE(admitted(adm->admit(7, t0)));
  auto refused = adm->admit(7, t0);
  REQUIRE_FALSE(admitted(refused));
  CHECK(std::get<admission_refusal>(refused).retry_after_seconds == 1);
  CHECK(admitted(adm->admit(8, t0))); // someone else's bucket is full

  CHECK_FALSE(admitted(adm->admit(7, t0 + std::chrono::milliseconds(500))));
  CHECK(admitted(adm->admit(7, t0 + std::chrono::milliseconds(1100))));
  CHECK_FALSE(admitted(adm->admit(7, t0 + std::chrono::milliseconds(1200))));

  SECTION("a slow rate says how long to wait") {
    auto slow = make(1000, 1000, 1); // one per minute
    REQUIRE(admitted(slow->admit(1, t0)));
    auto r = slow->admit(1, t0 + std::chrono::seconds(15));
    REQUIRE_FALSE(admitted(r));
    CHECK(std::get<admission_refusal>(r).retry_after_seconds == 45);
  }
}

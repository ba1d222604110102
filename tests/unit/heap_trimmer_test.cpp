// The heap_trimmer gives memory back once after each burst of uploads, never
// while one runs (issue 14: RSS after a burst), and the chunk pool frees only
// buffers no upload holds.
#include "actors/chunk_pool.hpp"
#include "actors/heap_trimmer.hpp"
#include "actors/upload_admission.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using namespace portal;
using namespace std::chrono_literals;

TEST_CASE("heap_trim_due: once per burst, never while uploads run", "[actors][memory]") {
  uint64_t trimmed_after = 0;
  CHECK_FALSE(heap_trim_due(uint64_t{0}, trimmed_after));  // idle, nothing happened yet
  CHECK_FALSE(heap_trim_due(std::nullopt, trimmed_after)); // a burst runs
  CHECK(heap_trim_due(uint64_t{256}, trimmed_after));      // it is over: trim
  CHECK(trimmed_after == 256);
  CHECK_FALSE(heap_trim_due(uint64_t{256}, trimmed_after)); // still idle: once is enough
  CHECK_FALSE(heap_trim_due(std::nullopt, trimmed_after));
  // A later burst, even a small one that fit in memory freed before.
  CHECK(heap_trim_due(uint64_t{257}, trimmed_after));
  CHECK_FALSE(heap_trim_due(uint64_t{257}, trimmed_after));
}

TEST_CASE("upload_admission::idle_after counts admitted uploads, nullopt while one runs",
          "[actors][memory]") {
  auto admission = std::make_shared<upload_admission>(admission_limits{8, 256, 1000});
  CHECK(admission->idle_after() == uint64_t{0});
  {
    auto first = admission->admit(1);
    auto second = admission->admit_resumed(2);
    CHECK_FALSE(admission->idle_after());
  }
  CHECK(admission->idle_after() == uint64_t{2});
  // A refused upload is no activity.
  auto capped = std::make_shared<upload_admission>(admission_limits{1, 1, 1000});
  auto held = capped->admit(1);
  auto refused = capped->admit(2);
  REQUIRE(std::holds_alternative<admission_refusal>(refused));
  held = {};
  CHECK(capped->idle_after() == uint64_t{1});
}

namespace {

// Polls `done` until it holds or 10 s pass (the trimmer runs on its own
// thread, on its own clock).
template <class F>
bool eventually(F done) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A trimmer looking every 5 ms at a count the test sets; stopped however
// the test ends (a pending timer would keep ~actor_system waiting).
struct trimmer_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  std::atomic<int64_t> admitted{-1}; // -1: an upload runs
  std::atomic<int> looks{0};
  std::atomic<int> released{0};
  caf::actor trimmer;

  trimmer_fixture() {
    heap_trim_options opts;
    opts.period = 5ms;
    opts.idle_after = [this]() -> std::optional<uint64_t> {
      ++looks;
      auto n = admitted.load();
      if (n < 0)
        return std::nullopt;
      return static_cast<uint64_t>(n);
    };
    opts.release_caches = [this] { ++released; };
    trimmer = spawn_heap_trimmer(self.ptr(), std::make_shared<actor_probe>(), opts);
  }
  ~trimmer_fixture() { self->send_exit(trimmer, caf::exit_reason::user_shutdown); }
};

} // namespace

TEST_CASE_METHOD(trimmer_fixture, "heap_trimmer: nothing is released while uploads run",
                 "[actors][memory]") {
  REQUIRE(eventually([&] { return looks >= 5; }));
  CHECK(released == 0);
}

TEST_CASE_METHOD(trimmer_fixture, "heap_trimmer: after a burst, the caches go once",
                 "[actors][memory]") {
  REQUIRE(eventually([&] { return looks >= 2; }));
  admitted = 256;
  REQUIRE(eventually([&] { return released == 1; }));
  auto seen = looks.load();
  REQUIRE(eventually([&] { return looks >= seen + 5; }));
  CHECK(released == 1);
  admitted = 300; // the next burst
  CHECK(eventually([&] { return released == 2; }));
}

TEST_CASE("chunk_pool: release_free frees the recycled buffers, never one in use",
          "[actors][memory]") {
  auto pool = std::make_shared<chunk_pool>(1024, 8 * 1024);
  auto held = pool->acquire([] {});
  {
    auto a = pool->acquire([] {});
    auto b = pool->acquire([] {});
    REQUIRE(a);
    REQUIRE(b);
  } // a and b return to the pool
  CHECK(pool->release_free() == 2 * 1024);
  CHECK(pool->release_free() == 0);
  CHECK(pool->in_use_bytes() == 1024);
  held.reset();
  CHECK(pool->release_free() == 1024);
  // The pool still hands out buffers after its free list went.
  CHECK(pool->acquire([] {}));
}

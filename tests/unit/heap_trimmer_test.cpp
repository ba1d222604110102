// The heap_trimmer gives memory back only while the server is idle (issue
// 14: RSS after a burst), and the chunk pool frees only buffers no upload
// holds.
#include "actors/chunk_pool.hpp"
#include "actors/heap_trimmer.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using namespace portal;
using namespace std::chrono_literals;

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

struct counts {
  std::atomic<bool> idle{false};
  std::atomic<int> asked{0};
  std::atomic<int> released{0};
};

caf::actor start(caf::scoped_actor& self, const std::shared_ptr<counts>& c) {
  heap_trim_options opts;
  opts.period = 5ms;
  opts.idle = [c] {
    ++c->asked;
    return c->idle.load();
  };
  opts.release_caches = [c] { ++c->released; };
  return spawn_heap_trimmer(self.ptr(), std::make_shared<actor_probe>(), opts);
}

} // namespace

TEST_CASE("heap_trimmer: nothing is released while uploads run", "[actors][memory]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto c = std::make_shared<counts>();
  auto trimmer = start(self, c);
  REQUIRE(eventually([&] { return c->asked >= 5; }));
  CHECK(c->released == 0);
  self->send_exit(trimmer, caf::exit_reason::user_shutdown);
}

TEST_CASE("heap_trimmer: once idle, the caches go, on every look", "[actors][memory]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto c = std::make_shared<counts>();
  auto trimmer = start(self, c);
  REQUIRE(eventually([&] { return c->asked >= 2; }));
  CHECK(c->released == 0);
  c->idle = true;
  CHECK(eventually([&] { return c->released >= 3; }));
  self->send_exit(trimmer, caf::exit_reason::user_shutdown);
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

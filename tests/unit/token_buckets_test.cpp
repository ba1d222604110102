#include "actors/token_buckets.hpp"

#include <catch2/catch.hpp>

using portal::token_buckets;
using namespace std::chrono_literals;

TEST_CASE("a bucket gives its burst, then one token per refill interval", "[token_buckets]") {
  token_buckets buckets{3, 60s}; // 3 at once, then one every 20 s
  auto t0 = token_buckets::clock::now();
  CHECK(buckets.take("a", t0) == 0);
  CHECK(buckets.take("a", t0) == 0);
  CHECK(buckets.take("a", t0) == 0);
  CHECK(buckets.take("a", t0) == 20); // Retry-After: the next token's time
  CHECK(buckets.take("a", t0 + 10s) == 10);
  CHECK(buckets.take("a", t0 + 20s) == 0);
  CHECK(buckets.take("a", t0 + 20s) == 20);
}

TEST_CASE("keys have their own buckets", "[token_buckets]") {
  token_buckets buckets{1, 60s};
  auto t0 = token_buckets::clock::now();
  CHECK(buckets.take("10.0.0.1", t0) == 0);
  CHECK(buckets.take("10.0.0.1", t0) > 0);
  CHECK(buckets.take("10.0.0.2", t0) == 0);
}

TEST_CASE("a refused take costs nothing and never asks for less than a second", "[token_buckets]") {
  token_buckets buckets{60, 60s};
  auto t0 = token_buckets::clock::now();
  for (int i = 0; i < 60; ++i)
    REQUIRE(buckets.take("k", t0) == 0);
  for (int i = 0; i < 5; ++i)
    CHECK(buckets.take("k", t0) == 1);
  CHECK(buckets.take("k", t0 + 1s) == 0);
}

TEST_CASE("an idle key comes back to a full bucket, also after the sweep of idle keys",
          "[token_buckets]") {
  token_buckets buckets{2, 60s};
  auto t0 = token_buckets::clock::now();
  for (int i = 0; i < 5000; ++i)
    buckets.take("key" + std::to_string(i), t0);
  // Long after, past the sweep threshold: the returning key starts full.
  auto later = t0 + 10min;
  CHECK(buckets.take("key1", later) == 0);
  CHECK(buckets.take("key1", later) == 0);
  CHECK(buckets.take("key1", later) > 0);
}

TEST_CASE("a token given back can be taken again, never beyond the burst", "[token_buckets]") {
  token_buckets buckets{2, 60s};
  auto t0 = token_buckets::clock::now();
  CHECK(buckets.take("a", t0) == 0);
  CHECK(buckets.take("a", t0) == 0);
  CHECK(buckets.take("a", t0) > 0);
  buckets.give_back("a", t0);
  CHECK(buckets.take("a", t0) == 0);
  CHECK(buckets.take("a", t0) > 0);
  // Many successes in a row: each takes a token and gives it back.
  for (int i = 0; i < 100; ++i) {
    buckets.give_back("b", t0);
    REQUIRE(buckets.take("b", t0) == 0);
    buckets.give_back("b", t0);
  }
  CHECK(buckets.take("b", t0) == 0);
  CHECK(buckets.take("b", t0) == 0);
  CHECK(buckets.take("b", t0) > 0); // the burst is still 2
  buckets.give_back("unknown", t0); // nothing taken: nothing happens
  CHECK(buckets.take("c", t0) == 0);
}

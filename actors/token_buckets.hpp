// Token buckets by key: how often something may start (uploads per user)
// or fail (logins per client address). A bucket holds `capacity` tokens (the
// burst) and refills at `capacity` per `period`. Thread-safe; one short lock
// per call.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace portal {

class token_buckets {
public:
  using clock = std::chrono::steady_clock;

  token_buckets(unsigned capacity, std::chrono::seconds period);

  // Takes a token from key's bucket: 0 when there was one, else the whole
  // seconds (at least 1) until there will be (a Retry-After).
  unsigned take(const std::string& key, clock::time_point now = clock::now());

  // Returns a token taken from key's bucket, when what it was taken for did
  // not count after all (a login that succeeded). Never above capacity.
  void give_back(const std::string& key, clock::time_point now = clock::now());

private:
  struct bucket {
    double tokens = 0;
    clock::time_point updated;
  };
  double refilled(const bucket& b, clock::time_point now) const;
  void forget_full_buckets(clock::time_point now);

  double capacity_;
  double per_second_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;
};

} // namespace portal

#include "actors/token_buckets.hpp"

#include <algorithm>
#include <cmath>

namespace portal {

namespace {

// Full buckets are dropped past this many keys, so that the map stays bounded
// by the keys active within one period, not by every key ever seen.
constexpr std::size_t sweep_threshold = 4096;

} // namespace

token_buckets::token_buckets(unsigned capacity, std::chrono::seconds period)
  : capacity_(capacity), per_second_(capacity / std::chrono::duration<double>(period).count()) {}

double token_buckets::refilled(const bucket& b, clock::time_point now) const {
  std::chrono::duration<double> elapsed = now - b.updated;
  return std::min(capacity_, b.tokens + std::max(0.0, elapsed.count()) * per_second_);
}

unsigned token_buckets::take(const std::string& key, clock::time_point now) {
  std::lock_guard lock{mutex_};
  if (buckets_.size() >= sweep_threshold)
    forget_full_buckets(now);
  auto [it, fresh] = buckets_.try_emplace(key, bucket{capacity_, now});
  auto& b = it->second;
  if (!fresh) {
    b.tokens = refilled(b, now);
    b.updated = now;
  }
  if (b.tokens < 1.0) {
    auto wait = static_cast<unsigned>(std::ceil((1.0 - b.tokens) / per_second_));
    return std::max(wait, 1U);
  }
  b.tokens -= 1.0;
  return 0;
}

void token_buckets::give_back(const std::string& key, clock::time_point now) {
  std::lock_guard lock{mutex_};
  auto it = buckets_.find(key);
  if (it == buckets_.end())
    return; // swept as full meanwhile: nothing to return
  auto& b = it->second;
  b.tokens = std::min(capacity_, refilled(b, now) + 1.0);
  b.updated = now;
}

void token_buckets::forget_full_buckets(clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    if (refilled(it->second, now) >= capacity_)
      it = buckets_.erase(it);
    else
      ++it;
  }
}

} // namespace portal

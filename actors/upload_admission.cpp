#include "actors/upload_admission.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace portal {

namespace {

// A slot frees when some upload ends, which cannot be predicted: a short
// wait, so that a client retrying politely gets in soon after one does.
constexpr unsigned concurrency_retry_after = 5;
// Buckets of idle users are dropped past this many, so that the map stays
// bounded by the active users, not by every user ever seen.
constexpr std::size_t bucket_sweep_threshold = 4096;

} // namespace

void upload_admission::ticket::release() {
  if (auto owner = std::exchange(owner_, nullptr))
    owner->release(user_id_);
}

std::variant<upload_admission::ticket_ptr, admission_refusal>
upload_admission::admit(int64_t user_id, clock::time_point now) {
  std::lock_guard lock{mutex_};
  if (total_ >= limits_.total)
    return admission_refusal{"the server has too many uploads in progress, retry later",
                             concurrency_retry_after};
  auto& mine = per_user_[user_id];
  if (mine >= limits_.per_user)
    return admission_refusal{"at most " + std::to_string(limits_.per_user) +
                               " uploads of one user may run at once",
                             concurrency_retry_after};

  // Token bucket: starts_per_minute tokens at most, refilled at that rate.
  if (buckets_.size() >= bucket_sweep_threshold)
    forget_full_buckets(now);
  double capacity = limits_.starts_per_minute;
  double per_second = capacity / 60.0;
  auto [it, fresh] = buckets_.try_emplace(user_id, bucket{capacity, now});
  auto& b = it->second;
  if (!fresh) {
    std::chrono::duration<double> elapsed = now - b.updated;
    b.tokens = std::min(capacity, b.tokens + elapsed.count() * per_second);
    b.updated = now;
  }
  if (b.tokens < 1.0) {
    auto wait = static_cast<unsigned>(std::ceil((1.0 - b.tokens) / per_second));
    if (mine == 0)
      per_user_.erase(user_id);
    return admission_refusal{"too many uploads started, at most " +
                               std::to_string(limits_.starts_per_minute) + " per minute",
                             std::max(wait, 1U)};
  }
  b.tokens -= 1.0;
  ++mine;
  ++total_;
  return std::make_shared<ticket>(shared_from_this(), user_id);
}

void upload_admission::release(int64_t user_id) {
  std::lock_guard lock{mutex_};
  --total_;
  auto it = per_user_.find(user_id);
  if (it != per_user_.end() && --it->second == 0)
    per_user_.erase(it);
}

void upload_admission::forget_full_buckets(clock::time_point now) {
  double capacity = limits_.starts_per_minute;
  double per_second = capacity / 60.0;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    std::chrono::duration<double> elapsed = now - it->second.updated;
    if (it->second.tokens + elapsed.count() * per_second >= capacity)
      it = buckets_.erase(it);
    else
      ++it;
  }
}

unsigned upload_admission::active() const {
  std::lock_guard lock{mutex_};
  return total_;
}

unsigned upload_admission::active(int64_t user_id) const {
  std::lock_guard lock{mutex_};
  auto it = per_user_.find(user_id);
  return it == per_user_.end() ? 0 : it->second;
}

} // namespace portal

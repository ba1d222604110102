#include "actors/upload_admission.hpp"

#include <utility>

namespace portal {

namespace {

// A slot frees when some upload ends, which cannot be predicted: a short
// wait, so that a client retrying politely gets in soon after one does.
constexpr unsigned concurrency_retry_after = 5;

} // namespace

void upload_admission::ticket::release() {
  if (auto owner = std::exchange(owner_, nullptr))
    owner->release(user_id_);
}

std::variant<upload_admission::ticket_ptr, admission_refusal>
upload_admission::admit(int64_t user_id, clock::time_point now) {
  std::lock_guard lock{mutex_};
  return admit_locked(user_id, &now);
}

std::variant<upload_admission::ticket_ptr, admission_refusal>
upload_admission::admit_resumed(int64_t user_id) {
  std::lock_guard lock{mutex_};
  return admit_locked(user_id, nullptr);
}

std::variant<upload_admission::ticket_ptr, admission_refusal>
upload_admission::admit_locked(int64_t user_id, const clock::time_point* start) {
  if (total_ >= limits_.total)
    return admission_refusal{"the server has too many uploads in progress, retry later",
                             concurrency_retry_after};
  auto& mine = per_user_[user_id];
  if (mine >= limits_.per_user)
    return admission_refusal{"at most " + std::to_string(limits_.per_user) +
                               " uploads of one user may run at once",
                             concurrency_retry_after};

  if (unsigned wait = start ? starts_.take(std::to_string(user_id), *start) : 0) {
    if (mine == 0)
      per_user_.erase(user_id);
    return admission_refusal{"too many uploads started, at most " +
                               std::to_string(limits_.starts_per_minute) + " per minute",
                             wait};
  }
  ++mine;
  ++total_;
  ++admitted_;
  return std::make_shared<ticket>(shared_from_this(), user_id);
}

void upload_admission::release(int64_t user_id) {
  std::lock_guard lock{mutex_};
  --total_;
  auto it = per_user_.find(user_id);
  if (it != per_user_.end() && --it->second == 0)
    per_user_.erase(it);
}

std::optional<uint64_t> upload_admission::idle_after() const {
  std::lock_guard lock{mutex_};
  if (total_ > 0)
    return std::nullopt;
  return admitted_;
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

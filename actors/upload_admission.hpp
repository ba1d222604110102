// SPEC §5.3 "per-user upload rate limit or concurrency limit": who may start
// an upload now. Checked once when an upload's head is accepted, before any
// body byte is read; the ticket it hands out is one of the user's concurrent
// uploads until it is released (the session releases it just before the
// client hears the answer, so a client that uploads one file after another
// never meets its own finished upload).
//
// One mutex, taken twice per upload (admit, release), never per chunk.
#pragma once

#include "actors/token_buckets.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

namespace portal {

struct admission_limits {
  unsigned per_user = 8;           // concurrent uploads of one user
  unsigned total = 256;            // concurrent uploads of everyone
  unsigned starts_per_minute = 60; // token bucket per user: burst and rate
};

// Why an upload may not start: a 429 with this Retry-After.
struct admission_refusal {
  std::string message;
  unsigned retry_after_seconds = 1;
};

class upload_admission : public std::enable_shared_from_this<upload_admission> {
public:
  using clock = std::chrono::steady_clock;

  // Released on destruction; release() ends it earlier, once.
  class ticket {
  public:
    ticket(std::shared_ptr<upload_admission> owner, int64_t user_id)
      : owner_(std::move(owner)), user_id_(user_id) {}
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { release(); }
    void release();

  private:
    std::shared_ptr<upload_admission> owner_;
    int64_t user_id_;
  };
  using ticket_ptr = std::shared_ptr<ticket>;

  explicit upload_admission(admission_limits limits)
    : limits_(limits), starts_(limits.starts_per_minute, std::chrono::minutes(1)) {}

  std::variant<ticket_ptr, admission_refusal> admit(int64_t user_id,
                                                    clock::time_point now = clock::now());
  // A tus PATCH of an upload that already started (counted at its creation):
  // the concurrency limits only, no start from the per-minute budget.
  std::variant<ticket_ptr, admission_refusal> admit_resumed(int64_t user_id);

  unsigned active() const;
  unsigned active(int64_t user_id) const;
  // While no upload runs: how many were admitted since the start (a count
  // that only grows, so a change means a burst came and went); nullopt while
  // any runs. Read in one lock, for the heap_trimmer.
  std::optional<uint64_t> idle_after() const;

private:
  void release(int64_t user_id);
  std::variant<ticket_ptr, admission_refusal> admit_locked(int64_t user_id,
                                                           const clock::time_point* start);

  admission_limits limits_;
  mutable std::mutex mutex_;
  unsigned total_ = 0;
  uint64_t admitted_ = 0;
  std::unordered_map<int64_t, unsigned> per_user_;
  token_buckets starts_;
};

} // namespace portal

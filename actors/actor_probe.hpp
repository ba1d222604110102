// What an admin sees of one live actor (SPEC §7 /admin/actors): messages
// handled, mailbox, busy or idle, and for an upload session its progress.
//
// The actor itself writes its probe, a few relaxed atomics per message and
// never a lock, so counting stays off the hot path; readers (the metrics and
// admin endpoints) read the atomics from any thread.
//
// `mailbox` is what the actor saw when it last finished a message: CAF 0.17
// lets only the owning actor read its mailbox. An actor stuck in one long
// message therefore shows `busy` with `busy_since`, and its last mailbox.
#pragma once

#include <caf/behavior.hpp>
#include <caf/detail/type_list.hpp>
#include <caf/detail/type_traits.hpp>
#include <caf/typed_behavior.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace portal {

enum class actor_activity : uint8_t {
  idle,    // nothing queued, nothing running
  busy,    // handling a message
  waiting, // messages queued, waiting for a scheduler thread
};

const char* to_string(actor_activity a);

// For an upload session: what the upload is and how far it got.
struct upload_progress {
  std::string id;
  std::string owner;
  std::string filename;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<uint64_t> bytes_received{0};
  // What a resumed (tus) upload already had when this actor took it over:
  // the rate counts only what arrived since.
  std::atomic<uint64_t> bytes_before{0};
  std::optional<uint64_t> bytes_expected; // the declared size, if any
};

struct actor_probe {
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> mailbox{0};
  std::atomic<actor_activity> activity{actor_activity::idle};
  std::atomic<int64_t> busy_since_us{0};   // steady clock, while busy
  std::shared_ptr<upload_progress> upload; // set once, before the actor runs
};

using probe_ptr = std::shared_ptr<actor_probe>;

// Marks one message from its start to its end.
template <class Self>
class probe_scope {
public:
  probe_scope(Self* self, actor_probe& p) : self_(self), p_(p) {
    p_.messages.fetch_add(1, std::memory_order_relaxed);
    p_.busy_since_us.store(std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count(),
                           std::memory_order_relaxed);
    p_.activity.store(actor_activity::busy, std::memory_order_relaxed);
  }
  ~probe_scope() {
    auto queued = self_->mailbox().size();
    p_.mailbox.store(queued, std::memory_order_relaxed);
    p_.activity.store(queued > 0 ? actor_activity::waiting : actor_activity::idle,
                      std::memory_order_relaxed);
  }
  probe_scope(const probe_scope&) = delete;
  probe_scope& operator=(const probe_scope&) = delete;

private:
  Self* self_;
  actor_probe& p_;
};

namespace detail {

template <class Self, class F, class... Ts>
auto probe_handler(Self* self, probe_ptr p, F f, caf::detail::type_list<Ts...>) {
  // The same parameter types as `f`, so CAF matches messages exactly as it
  // would match `f` itself.
  return [self, p, f](Ts... xs) -> decltype(auto) {
    probe_scope<Self> scope{self, *p};
    return f(std::forward<Ts>(xs)...);
  };
}

} // namespace detail

// A behavior whose every handler counts itself into `probe`:
//   return probed(self, probe, handlers...);
// Its type is the actor's own: caf::behavior for a dynamically typed actor,
// the typed_behavior of a typed_actor's interface (each wrapper keeps its
// handler's argument and result types, so the interface check still applies).
template <class Self, class... Fs>
typename Self::behavior_type probed(Self* self, probe_ptr probe, Fs... fs) {
  return typename Self::behavior_type{detail::probe_handler(
    self, probe, std::move(fs), typename caf::detail::get_callable_trait<Fs>::arg_types{})...};
}

} // namespace portal

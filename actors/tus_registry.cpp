#include "actors/tus_registry.hpp"

#include <caf/all.hpp>

#include <optional>

namespace portal {

void tus_registry::with_session(const std::string& id,
                                const std::function<tus_session_actor()>& make,
                                const std::function<void(const tus_session_actor&)>& use) {
  std::optional<tus_session_actor> spawned;
  {
    std::lock_guard lock{mutex_};
    auto i = live_.find(id);
    if (i == live_.end()) {
      i = live_.emplace(id, make()).first;
      spawned = i->second;
    }
    use(i->second);
  }
  if (!spawned)
    return;
  // Outside the lock: a session already gone runs this at once, here.
  std::weak_ptr<tus_registry> weak = shared_from_this();
  auto who = caf::actor_cast<caf::actor_addr>(*spawned);
  (*spawned)->attach_functor([weak, id, who](const caf::error&) {
    if (auto registry = weak.lock())
      registry->forget(id, who);
  });
}

bool tus_registry::with_live_session(const std::string& id,
                                     const std::function<void(const tus_session_actor&)>& use) {
  std::lock_guard lock{mutex_};
  auto i = live_.find(id);
  if (i == live_.end())
    return false;
  use(i->second);
  return true;
}

std::vector<std::string> tus_registry::live_ids() const {
  std::lock_guard lock{mutex_};
  std::vector<std::string> ids;
  ids.reserve(live_.size());
  for (const auto& [id, session] : live_)
    ids.push_back(id);
  return ids;
}

bool tus_registry::retire(const std::string& id, const caf::actor_addr& who,
                          const std::function<bool()>& idle) {
  std::lock_guard lock{mutex_};
  auto i = live_.find(id);
  if (i == live_.end() || caf::actor_cast<caf::actor_addr>(i->second) != who)
    return true; // already forgotten: nothing can reach it any more
  if (!idle())
    return false;
  live_.erase(i);
  return true;
}

void tus_registry::forget(const std::string& id, const caf::actor_addr& who) {
  std::lock_guard lock{mutex_};
  auto i = live_.find(id);
  if (i != live_.end() && caf::actor_cast<caf::actor_addr>(i->second) == who)
    live_.erase(i);
}

void tus_registry::stop_all() {
  std::lock_guard lock{mutex_};
  for (auto& [id, session] : live_)
    caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
  live_.clear();
}

} // namespace portal

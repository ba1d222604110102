#include "actors/tus_registry.hpp"

#include <caf/all.hpp>

namespace portal {

void tus_registry::with_session(const std::string& id,
                                const std::function<tus_session_actor()>& make,
                                const std::function<void(const tus_session_actor&)>& use) {
  std::lock_guard lock{mutex_};
  auto i = live_.find(id);
  if (i == live_.end())
    i = live_.emplace(id, make()).first;
  use(i->second);
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

std::size_t tus_registry::size() const {
  std::lock_guard lock{mutex_};
  return live_.size();
}

} // namespace portal

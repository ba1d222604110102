#include "actors/actor_directory.hpp"

#include <caf/actor_cast.hpp>

namespace portal {

void actor_directory::record(const actor_entry& entry, const caf::actor& handle, bool restarted) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& s = slots_[entry.name];
  auto restarts = s.entry.restarts + (restarted ? 1 : 0);
  s.entry = entry;
  s.entry.restarts = restarts;
  s.handle = caf::actor_cast<caf::weak_actor_ptr>(handle);
}

void actor_directory::forget(const std::string& name) {
  std::lock_guard<std::mutex> guard{mutex_};
  slots_.erase(name);
}

caf::actor actor_directory::find(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = slots_.find(name);
  if (i == slots_.end())
    return {};
  return caf::actor_cast<caf::actor>(i->second.handle.lock());
}

std::vector<actor_entry> actor_directory::entries() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::vector<actor_entry> out;
  for (auto& kv : slots_)
    out.push_back(kv.second.entry);
  return out;
}

} // namespace portal

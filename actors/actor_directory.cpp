#include "actors/actor_directory.hpp"

#include <caf/actor_cast.hpp>
#include <caf/exit_reason.hpp>
#include <caf/sec.hpp>

namespace portal {

void actor_directory::record(const actor_entry& entry, const caf::actor& handle, bool restarted) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& s = slots_[entry.name];
  auto restarts = s.entry.restarts + (restarted ? 1 : 0);
  s.entry = entry;
  s.entry.restarts = restarts;
  s.handle = caf::actor_cast<caf::weak_actor_ptr>(handle);
  recorded_.notify_all();
}

void actor_directory::forget(const std::string& name) {
  std::lock_guard<std::mutex> guard{mutex_};
  slots_.erase(name);
}

void actor_directory::record_temporary(const actor_entry& entry, const caf::actor& handle) {
  auto e = entry;
  e.temporary = true;
  record(e, handle, false);
  std::weak_ptr<actor_directory> weak = shared_from_this();
  auto name = entry.name;
  auto kind = entry.kind;
  // Runs at once if the actor has already exited.
  handle->attach_functor([weak, name, kind](const caf::error& reason) {
    auto dir = weak.lock();
    if (!dir)
      return;
    std::lock_guard<std::mutex> guard{dir->mutex_};
    dir->slots_.erase(name);
    if (reason && reason != caf::exit_reason::normal && reason != caf::exit_reason::user_shutdown)
      ++dir->crashes_[kind];
  });
}

std::map<std::string, uint64_t> actor_directory::crashes() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return crashes_;
}

caf::actor actor_directory::find(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = slots_.find(name);
  if (i == slots_.end())
    return {};
  return caf::actor_cast<caf::actor>(i->second.handle.lock());
}

caf::actor actor_directory::find(caf::actor_id id) const {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& kv : slots_)
    if (kv.second.entry.id == id)
      return caf::actor_cast<caf::actor>(kv.second.handle.lock());
  return {};
}

std::vector<actor_entry> actor_directory::entries() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::vector<actor_entry> out;
  for (auto& kv : slots_)
    out.push_back(kv.second.entry);
  return out;
}

bool actor_directory::all_live(const std::vector<std::string>& names) const {
  for (auto& name : names) {
    auto i = slots_.find(name);
    if (i == slots_.end() || !i->second.handle.lock())
      return false;
  }
  return true;
}

bool actor_directory::wait_for(const std::vector<std::string>& names,
                               std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock{mutex_};
  return recorded_.wait_until(lock, deadline, [&] { return all_live(names); });
}

} // namespace portal

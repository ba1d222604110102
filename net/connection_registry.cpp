#include "net/connection_registry.hpp"

#include <vector>

namespace portal {

void connection_registry::add(const std::shared_ptr<connection>& c) {
  std::lock_guard<std::mutex> guard{mutex_};
  connections_[c.get()] = c;
}

void connection_registry::remove(const connection* c) {
  std::lock_guard<std::mutex> guard{mutex_};
  connections_.erase(c);
}

std::size_t connection_registry::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return connections_.size();
}

void connection_registry::for_each(
  const std::function<void(const std::shared_ptr<connection>&)>& f) const {
  std::vector<std::shared_ptr<connection>> live;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& kv : connections_)
      if (auto c = kv.second.lock())
        live.push_back(std::move(c));
  }
  for (auto& c : live)
    f(c);
}

} // namespace portal

#include "net/connection_registry.hpp"

#include <vector>

namespace portal {

void connection_registry::add(const std::shared_ptr<http_session>& s) {
  std::lock_guard<std::mutex> guard{mutex_};
  sessions_[s.get()] = s;
}

void connection_registry::remove(const http_session* s) {
  std::lock_guard<std::mutex> guard{mutex_};
  sessions_.erase(s);
}

std::size_t connection_registry::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return sessions_.size();
}

void connection_registry::for_each(
  const std::function<void(const std::shared_ptr<http_session>&)>& f) const {
  std::vector<std::shared_ptr<http_session>> live;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& kv : sessions_)
      if (auto s = kv.second.lock())
        live.push_back(std::move(s));
  }
  for (auto& s : live)
    f(s);
}

} // namespace portal

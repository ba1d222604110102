// The open connections, so that shutdown can close the idle ones at once
// and wait for the busy ones to finish (SPEC §9 drain).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace portal {

class http_session;

class connection_registry {
public:
  void add(const std::shared_ptr<http_session>& s);
  void remove(const http_session* s);
  std::size_t size() const;
  // Calls f for every live session (outside the lock).
  void for_each(const std::function<void(const std::shared_ptr<http_session>&)>& f) const;

private:
  mutable std::mutex mutex_;
  std::map<const http_session*, std::weak_ptr<http_session>> sessions_;
};

} // namespace portal

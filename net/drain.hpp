// The HTTP side of SPEC §9's shutdown (SIGTERM/SIGINT, or the root supervisor
// giving up): stop accepting, close idle keep-alive connections, let busy
// ones finish their answer for at most PORTAL_DRAIN_SECONDS, then stop the
// event loop. main.cpp starts it and does the rest of the ordered stop.
#pragma once

#include "net/connection_registry.hpp"
#include "net/http.hpp"
#include "net/listener.hpp"

#include <chrono>
#include <memory>
#include <vector>

namespace portal {

class drain {
public:
  // Everything must outlive the drain; `deadline` counts from start().
  drain(net::io_context& ioc, std::chrono::seconds deadline, connection_registry& registry,
        std::vector<std::shared_ptr<listener>> listeners);

  // Starts draining; later calls do nothing. Call on the io_context's threads.
  void start(const char* why);

private:
  void poll();

  net::steady_timer timer_;
  net::io_context& ioc_;
  std::chrono::seconds deadline_seconds_;
  connection_registry& registry_;
  std::vector<std::shared_ptr<listener>> listeners_;
  bool started_ = false;
  std::chrono::steady_clock::time_point deadline_;
};

} // namespace portal

#include "net/drain.hpp"

#include "config/log.hpp"

namespace portal {

using namespace std::chrono_literals;

drain::drain(net::io_context& ioc, std::chrono::seconds deadline, connection_registry& registry,
             std::vector<std::shared_ptr<listener>> listeners)
  : timer_(ioc), ioc_(ioc), deadline_seconds_(deadline), registry_(registry),
    listeners_(std::move(listeners)) {}

void drain::start(const char* why) {
  if (started_)
    return;
  started_ = true;
  deadline_ = std::chrono::steady_clock::now() + deadline_seconds_;
  log::info("shutting down", {{"reason", why},
                              {"open_connections", registry_.size()},
                              {"drain_seconds", deadline_seconds_.count()}});
  for (auto& l : listeners_)
    l->stop();
  registry_.for_each([](const std::shared_ptr<connection>& c) { c->close_if_idle(); });
  poll();
}

// The drain has no event to wait for, only a count that falls: checked
// every 50 ms until zero or the deadline.
void drain::poll() {
  auto open = registry_.size();
  if (open == 0 || std::chrono::steady_clock::now() >= deadline_) {
    if (open > 0)
      log::warn("drain deadline passed, aborting connections", {{"open_connections", open}});
    ioc_.stop();
    return;
  }
  timer_.expires_after(50ms);
  timer_.async_wait([this](beast::error_code) { poll(); });
}

} // namespace portal

// Accepts connections and starts an http_session for each, until stopped;
// over TLS when given a TLS context (the main listener with PORTAL_TLS_CERT).
#pragma once

#include "net/connection_registry.hpp"
#include "net/exchange.hpp"
#include "net/http.hpp"

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <memory>

namespace portal {

class listener : public std::enable_shared_from_this<listener> {
public:
  // Binds and listens at once, so that the port is known (and a busy port
  // fails) before the server reports itself ready. Throws boost::system_error.
  // tls: null for plain HTTP; else it must outlive the listener's sessions.
  listener(net::io_context& ioc, const tcp::endpoint& endpoint, const services& svc,
           connection_registry& registry, net::ssl::context* tls = nullptr);

  uint16_t port() const;
  void run();
  // Closes the listening socket: new connections are refused from now on.
  void stop();

private:
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  const services& svc_;
  connection_registry& registry_;
  net::ssl::context* tls_;
  net::steady_timer retry_;
  std::chrono::milliseconds backoff_{0};
};

} // namespace portal

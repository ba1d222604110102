#include "net/listener.hpp"

#include "config/log.hpp"
#include "net/http_session.hpp"

namespace portal {

using namespace std::chrono_literals;

listener::listener(net::io_context& ioc, const tcp::endpoint& endpoint, const services& svc,
                   connection_registry& registry, net::ssl::context* tls)
  : ioc_(ioc), acceptor_(net::make_strand(ioc)), svc_(svc), registry_(registry), tls_(tls),
    retry_(acceptor_.get_executor()) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(net::socket_base::max_listen_connections);
}

uint16_t listener::port() const {
  return acceptor_.local_endpoint().port();
}

void listener::run() {
  do_accept();
}

void listener::stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_.cancel();
  });
}

void listener::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         beast::bind_front_handler(&listener::on_accept, shared_from_this()));
}

void listener::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open())
    return; // stopped
  if (ec) {
    // Out of file descriptors or memory: accepting again at once would spin
    // and log without end. Back off (50 ms doubling to 1 s) and retry, so
    // the listener recovers by itself once connections close.
    backoff_ = std::min(backoff_ == std::chrono::milliseconds::zero() ? 50ms : backoff_ * 2,
                        std::chrono::milliseconds(1000));
    log::warn("accept failed", {{"error", ec.message()}, {"retry_ms", backoff_.count()}});
    retry_.expires_after(backoff_);
    retry_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec && self->acceptor_.is_open())
        self->do_accept();
    });
    return;
  }
  backoff_ = std::chrono::milliseconds::zero();
  if (tls_)
    std::make_shared<http_session<tls_stream>>(tls_stream{std::move(socket), *tls_}, svc_,
                                               registry_)
      ->run();
  else
    std::make_shared<http_session<plain_stream>>(plain_stream{std::move(socket)}, svc_, registry_)
      ->run();
  do_accept();
}

} // namespace portal

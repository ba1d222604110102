#include "cli/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/version.hpp>
#include <openssl/ssl.h>

#include <stdexcept>

namespace portal::cli {

namespace beast = boost::beast;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

http_client::http_client(boost::urls::url_view origin, std::chrono::seconds timeout)
  : tls_(origin.scheme() == "https"), host_(origin.host()), timeout_(timeout) {
  if (origin.scheme() != "http" && origin.scheme() != "https")
    throw std::invalid_argument("the URL must start with http:// or https://");
  if (host_.empty())
    throw std::invalid_argument("the URL has no host");
  port_ = origin.has_port() ? std::string(origin.port()) : (tls_ ? "443" : "80");
  // An IPv6 literal comes bracketed; the resolver and SNI want it bare.
  if (host_.size() > 2 && host_.front() == '[')
    host_ = host_.substr(1, host_.size() - 2);
  if (tls_) {
    tls_ctx_.set_default_verify_paths();
    tls_ctx_.set_verify_mode(asio::ssl::verify_peer);
  }
}

http_client::~http_client() {
  close();
}

void http_client::close() {
  beast::error_code ignored;
  if (tls_stream_)
    beast::get_lowest_layer(*tls_stream_).socket().close(ignored);
  if (tcp_)
    tcp_->socket().close(ignored);
  tls_stream_.reset();
  tcp_.reset();
  buffer_.clear();
}

// Runs one asynchronous operation to its end on our own io_context: the
// stream's expiry gives every step its timeout, which blocking calls lack.
template <class Start>
void http_client::run(Start&& start) {
  beast::error_code result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc_.restart();
  ioc_.run();
  if (result) {
    close();
    throw beast::system_error(result);
  }
}

void http_client::do_connect() {
  tcp::resolver resolver{ioc_};
  tcp::resolver::results_type endpoints;
  run([&](auto done) {
    resolver.async_resolve(host_, port_, [&, done](beast::error_code ec, auto results) {
      endpoints = results;
      done(ec);
    });
  });
  if (tls_) {
    tls_stream_.emplace(ioc_, tls_ctx_);
    auto& lowest = beast::get_lowest_layer(*tls_stream_);
    lowest.expires_after(timeout_);
    run([&](auto done) { lowest.async_connect(endpoints, done); });
    beast::error_code not_ip;
    asio::ip::make_address(host_, not_ip);
    // SNI names hosts only (RFC 6066 §3); an IP literal is verified below.
    if (not_ip && !SSL_set_tlsext_host_name(tls_stream_->native_handle(), host_.c_str()))
      throw beast::system_error(
        beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()));
    tls_stream_->set_verify_callback(asio::ssl::host_name_verification(host_));
    run([&](auto done) { tls_stream_->async_handshake(asio::ssl::stream_base::client, done); });
  } else {
    tcp_.emplace(ioc_);
    tcp_->expires_after(timeout_);
    run([&](auto done) { tcp_->async_connect(endpoints, done); });
  }
}

http_client::response http_client::send(request& req, std::size_t body_limit) {
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "upload-portal-push/" PORTAL_VERSION);
  req.prepare_payload();
  // A large body gets more time: the timeout plus one second per 64 KiB, so a
  // slow but moving link (>= 64 KiB/s) is not cut off mid-PATCH.
  auto budget = timeout_ + std::chrono::seconds(req.body().size() >> 16);
  auto attempt = [&] {
    http::response_parser<http::string_body> parser;
    parser.body_limit(body_limit);
    // A HEAD response announces a length but carries no body.
    parser.skip(req.method() == http::verb::head);
    auto exchange = [&](auto& stream) {
      beast::get_lowest_layer(stream).expires_after(budget);
      run([&](auto done) { http::async_write(stream, req, done); });
      run([&](auto done) { http::async_read(stream, buffer_, parser, done); });
    };
    if (tls_)
      exchange(*tls_stream_);
    else
      exchange(*tcp_);
    return parser.release();
  };
  bool reused = tcp_ || tls_stream_;
  if (!reused)
    do_connect();
  response res;
  try {
    res = attempt();
  } catch (const beast::system_error& e) {
    // A kept-alive connection that the server closed while it was idle
    // fails before any byte of an answer: sent again once, on a new one.
    const auto& ec = e.code();
    if (!reused || !(ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                     ec == asio::error::broken_pipe || ec == asio::error::eof))
      throw;
    do_connect();
    res = attempt();
  }
  if (!res.keep_alive())
    close();
  return res;
}

} // namespace portal::cli

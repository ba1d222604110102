// A small blocking HTTP/1.1 client over Boost.Beast for the CLI's network
// commands (`push`): one keep-alive connection to one origin, http or https
// (OpenSSL through Beast's ssl_stream; the peer's certificate is verified
// against the system's trust store, or SSL_CERT_FILE / SSL_CERT_DIR, and
// must name the URL's host). No parsing of our own: Beast reads and writes
// the messages.
//
// Errors: send() throws beast::system_error for anything that went wrong on
// the wire (resolve, connect, TLS handshake, a timeout, a closed
// connection); the connection is then closed and the next send() opens a new
// one. A request that finds its kept-alive connection closed by the server
// (no answer at all: EOF, reset) is sent once more on a new connection
// first. Any HTTP status is a response, not an error.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/url_view.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace portal::cli {

namespace http = boost::beast::http;

class http_client {
public:
  using request = http::request<http::string_body>;
  using response = http::response<http::string_body>;

  // `origin`: an http:// or https:// URL; only its scheme, host and port are
  // used. `timeout` bounds each connect and each request's whole exchange
  // (plus one second per 64 KiB of request body).
  // Throws std::invalid_argument for another scheme or a missing host.
  http_client(boost::urls::url_view origin, std::chrono::seconds timeout);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // Sends `req` (Host, User-Agent and Content-Length are set here) and reads
  // the response; a response body over `body_limit` bytes is an error.
  response send(request& req, std::size_t body_limit = std::size_t{1} << 20);

  void close();

private:
  template <class Start>
  void run(Start&& start);
  void do_connect();

  boost::asio::io_context ioc_;
  boost::asio::ssl::context tls_ctx_{boost::asio::ssl::context::tls_client};
  bool tls_;
  std::string host_;
  std::string port_;
  std::chrono::seconds timeout_;
  std::optional<boost::beast::tcp_stream> tcp_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_stream_;
  boost::beast::flat_buffer buffer_;
};

} // namespace portal::cli

// The socket-level operations a connection needs beside reading and writing,
// for each stream it runs on: a plain TCP stream, or TLS over one (SPEC §8).
// Both reach the same beast::tcp_stream underneath, so one definition serves
// both. Unit tests specialise stream_transport for beast::test::stream, which
// has no socket, so that a session runs there unchanged.
#pragma once

#include "net/http.hpp"

#include <boost/beast/ssl.hpp>

#include <chrono>
#include <string>

namespace portal {

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
struct stream_transport {
  static beast::tcp_stream& lowest(Stream& s) { return beast::get_lowest_layer(s); }

  // The socket's peer address, "-" if it is gone already.
  static std::string peer_address(Stream& s) {
    beast::error_code ec;
    auto ep = lowest(s).socket().remote_endpoint(ec);
    return ec ? "-" : ep.address().to_string();
  }

  // The stream's own deadline on the next operations: when it passes, the
  // socket is closed and the operation fails with beast::error::timeout.
  static void expires_after(Stream& s, std::chrono::steady_clock::duration d) {
    lowest(s).expires_after(d);
  }
  static void expires_never(Stream& s) { lowest(s).expires_never(); }

  // Makes the pending read complete now, with an error; its handler decides
  // from its own state what that means (a deadline, an early answer, drain).
  static void cancel(Stream& s) {
    beast::error_code ignored;
    lowest(s).socket().cancel(ignored);
  }

  static void shutdown_send(Stream& s) {
    beast::error_code ignored;
    lowest(s).socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  static void close(Stream& s) { lowest(s).close(); }
};

// The client closed or reset the connection. partial_message is Beast's
// word for an end of stream inside a message (a body cut off), and
// stream_truncated the same over TLS without close_notify: the client is
// gone, nothing is malformed, and no 400 is logged or counted for it.
inline bool is_disconnect(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::ssl::error::stream_truncated;
}

} // namespace portal

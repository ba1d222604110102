// One HTTP/1.1 connection: the request/response loop of Beast's
// advanced_server example. It owns its socket, reads one request head at a
// time within the head deadline and size limit (SPEC §8, §11), refuses a
// head whose framing is in doubt (net/framing), hands the request to the
// router and writes the answer; keep-alive loops back to the next head. A
// handler that takes the body gets it through the connection's body_stream
// (net/body_stream). It never blocks: database work goes to actors and comes
// back as a post() onto this connection's strand.
//
// One implementation for every transport: Stream is a plain beast::tcp_stream
// or a TLS stream over one (SPEC §8 native TLS), and only the start
// (handshake) and the end (close_notify) differ. The definitions are in
// net/http_session_impl.hpp, instantiated for exactly these two streams in
// http_session_plain.cpp and http_session_tls.cpp (so they compile in
// parallel); the unit tests instantiate it for beast::test::stream.
#pragma once

#include "config/error_code.hpp"
#include "net/body_stream.hpp"
#include "net/connection_registry.hpp"
#include "net/exchange.hpp"
#include "net/framing.hpp"
#include "net/http.hpp"
#include "net/transport.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace portal {

template <class Stream>
class http_session : public connection, public std::enable_shared_from_this<http_session<Stream>> {
public:
  http_session(Stream&& stream, const services& svc, connection_registry& registry);
  ~http_session() override;

  void run();
  void close_if_idle() override;
  void abort_upload_now() override;

private:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;
  using transport = stream_transport<Stream>;

  void start();
  void on_handshake(beast::error_code ec);
  void do_read_header();
  void on_head_deadline(unsigned generation, beast::error_code ec);
  void on_header(beast::error_code ec, std::size_t);
  void handle_request();
  void start_upload(exchange::spawn_upload spawn);
  void read_small_body(std::size_t limit, std::function<void(exchange::small_body)> done);
  void on_body_end(body_end how);
  void on_upload_done(upload_answer answer);
  void send(response res);
  void send_file(file_response res);
  template <class Body>
  void write_answer(http::response<Body>& res,
                    std::optional<http::response_serializer<Body>>& serializer);
  void on_write(bool close, beast::error_code ec, std::size_t);
  void do_close();
  void on_tls_shutdown(beast::error_code ec);
  void linger_close();
  void on_linger(beast::error_code ec, std::size_t);
  void answer_and_close(const failure& f);
  void refuse_framing(const failure& refusal);
  void log_access(unsigned status, std::size_t bytes_sent);

  Stream stream_;
  beast::flat_buffer buffer_;
  head_buffer head_buffer_{buffer_}; // buffer_ as the head parser sees it
  net::steady_timer head_deadline_;
  const services& svc_;
  connection_registry& registry_;
  std::string peer_ip_;   // the socket's peer
  std::string client_ip_; // the request's client (net/proxy_headers)

  // The request being read or answered.
  std::optional<http::request_parser<http::buffer_body>> parser_;
  body_stream<Stream> body_{stream_, buffer_, svc_};
  std::optional<response> res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::optional<file_response> file_res_;
  std::optional<http::response_serializer<file_range_body>> file_serializer_;
  unsigned status_ = 0; // of the answer being written
  unsigned head_generation_ = 0;
  bool waiting_for_head_ = false; // or for the TLS handshake
  bool handshake_done_ = false;
  bool closing_ = false;
  bool head_timed_out_ = false;
  bool draining_ = false;
  bool answered_ = false;        // this request has its answer (or the client is gone)
  bool refused_framing_ = false; // what follows the head is no request: linger, then close
  std::string request_id_;
  std::string method_ = "-";
  std::string path_ = "-";
  std::chrono::steady_clock::time_point started_;
  std::size_t lingered_ = 0;
};

extern template class http_session<plain_stream>;
extern template class http_session<tls_stream>;

} // namespace portal

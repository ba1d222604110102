// One HTTP/1.1 connection. It owns its socket, reads one request head at a
// time within the head deadline and size limit, hands the request to the
// router and writes the answer; keep-alive loops back to the next head.
// It never blocks: database work goes to actors and comes back as a post()
// onto this connection's strand.
//
// One implementation for both transports: Stream is a plain beast::tcp_stream
// or a TLS stream over one (SPEC §8 native TLS). Only the start (handshake)
// and the end (close_notify) differ; the code is in http_session.cpp,
// instantiated there for exactly these two streams.
#pragma once

#include "config/error_code.hpp"
#include "net/connection_registry.hpp"
#include "net/exchange.hpp"
#include "net/http.hpp"

#include <boost/beast/ssl.hpp>
#include <caf/actor.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace portal {

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

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

  beast::tcp_stream& transport() { return beast::get_lowest_layer(stream_); }
  void start();
  void on_handshake(beast::error_code ec);
  void do_read_header();
  void on_head_deadline(unsigned generation, beast::error_code ec);
  void on_header(beast::error_code ec, std::size_t);
  void handle_request();
  void start_upload(exchange::spawn_upload spawn);
  void read_small_body(std::size_t limit, std::function<void(exchange::small_body)> done);
  void do_read_small_body();
  void on_small_body(beast::error_code ec, std::size_t);
  void do_read_body();
  void on_body(beast::error_code ec, std::size_t);
  void arm_body_deadline();
  void on_body_deadline(unsigned generation, beast::error_code ec);
  void on_credit(std::size_t n);
  void on_upload_done(upload_answer answer);
  void end_upload();
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
  void log_access(unsigned status, std::size_t bytes_sent);

  Stream stream_;
  beast::flat_buffer buffer_;
  net::steady_timer head_deadline_; // also the body's idle deadline
  const services& svc_;
  connection_registry& registry_;
  std::string peer_ip_;   // the socket's peer
  std::string client_ip_; // the request's client (net/proxy_headers)

  // The request being read or answered.
  std::optional<http::request_parser<http::buffer_body>> parser_;
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
  std::string request_id_;
  std::string method_ = "-";
  std::string path_ = "-";
  std::chrono::steady_clock::time_point started_;

  // A small body being read whole (read_small_body).
  std::string small_body_;
  std::size_t small_limit_ = 0;
  std::function<void(exchange::small_body)> small_done_;

  // The upload whose body is streaming (null otherwise).
  upload_session_actor upload_;
  writable_chunk filling_; // the chunk being read into
  std::size_t credit_ = 0; // chunks we may still send before an ack
  bool reading_body_ = false;
  bool body_timed_out_ = false;
  std::chrono::steady_clock::time_point last_body_activity_;
  bool answered_ = false;               // this request has its answer (or the client is gone)
  bool upload_counted_ = true;          // a PUT upload's outcome is in the metrics
  std::optional<response> held_answer_; // waits for the pending body read to stop
  std::size_t lingered_ = 0;
  uint64_t body_bytes_ = 0;
};

extern template class http_session<plain_stream>;
extern template class http_session<tls_stream>;

} // namespace portal

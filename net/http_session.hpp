// One HTTP/1.1 connection. It owns its socket, reads one request head at a
// time within the head deadline and size limit, hands the request to the
// router and writes the answer; keep-alive loops back to the next head.
// It never blocks: database work goes to actors and comes back as a post()
// onto this connection's strand.
#pragma once

#include "net/connection_registry.hpp"
#include "net/exchange.hpp"
#include "net/http.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace portal {

class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(tcp::socket&& socket, const services& svc, connection_registry& registry);
  ~http_session();

  void run();
  // Shutdown: a connection waiting for its next request is closed now; a
  // busy one closes after its answer.
  void close_if_idle();

private:
  void do_read_header();
  void on_head_deadline(unsigned generation, beast::error_code ec);
  void on_header(beast::error_code ec, std::size_t);
  void handle_request();
  void send(response res);
  void on_write(bool close, beast::error_code ec, std::size_t);
  void do_close();
  void answer_and_close(http::status status, const char* code, const char* message);
  void log_access(unsigned status, std::size_t bytes_sent);

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  net::steady_timer head_deadline_;
  const services& svc_;
  connection_registry& registry_;
  std::string client_ip_;

  // The request being read or answered.
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::optional<response> res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  unsigned head_generation_ = 0;
  bool waiting_for_head_ = false;
  bool head_timed_out_ = false;
  bool draining_ = false;
  std::string request_id_;
  std::string method_ = "-";
  std::string path_ = "-";
  std::chrono::steady_clock::time_point started_;
};

} // namespace portal

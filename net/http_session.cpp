#include "net/http_session.hpp"

#include "config/log.hpp"
#include "net/responses.hpp"
#include "net/router.hpp"

#include <boost/url/parse.hpp>
#include <sodium.h>

namespace portal {

namespace {

constexpr std::size_t head_limit = 16 * 1024;      // SPEC §8: whole request head
constexpr std::chrono::seconds write_timeout{30}; // a reader that vanished

std::string new_request_id() {
  unsigned char raw[8];
  randombytes_buf(raw, sizeof raw);
  char hex[sizeof raw * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return hex;
}

bool is_disconnect(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

} // namespace

http_session::http_session(tcp::socket&& socket, const services& svc, connection_registry& registry)
  : stream_(std::move(socket)), head_deadline_(stream_.get_executor()), svc_(svc),
    registry_(registry) {
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  client_ip_ = ec ? "-" : ep.address().to_string();
}

http_session::~http_session() { registry_.remove(this); }

void http_session::run() {
  registry_.add(shared_from_this());
  net::dispatch(stream_.get_executor(),
                beast::bind_front_handler(&http_session::do_read_header, shared_from_this()));
}

void http_session::close_if_idle() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    self->draining_ = true;
    if (self->waiting_for_head_ && self->buffer_.size() == 0)
      self->do_close();
  });
}

// The head has its own deadline timer rather than the stream's: the stream's
// timeout closes the socket, and a half-sent head deserves a 408 first.
void http_session::do_read_header() {
  if (draining_)
    return do_close();
  parser_.emplace();
  parser_->header_limit(head_limit);
  waiting_for_head_ = true;
  head_timed_out_ = false;
  stream_.expires_never();
  head_deadline_.expires_after(svc_.cfg.header_timeout);
  head_deadline_.async_wait(beast::bind_front_handler(&http_session::on_head_deadline,
                                                      shared_from_this(), ++head_generation_));
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&http_session::on_header, shared_from_this()));
}

void http_session::on_head_deadline(unsigned generation, beast::error_code ec) {
  if (ec || generation != head_generation_ || !waiting_for_head_)
    return;
  head_timed_out_ = true;
  stream_.socket().cancel();
}

void http_session::on_header(beast::error_code ec, std::size_t) {
  waiting_for_head_ = false;
  head_deadline_.cancel();
  started_ = std::chrono::steady_clock::now();
  request_id_ = new_request_id();
  method_ = path_ = "-";
  if (head_timed_out_) {
    // Silence on a fresh or kept-alive connection is no request: just close.
    if (buffer_.size() == 0 && !parser_->got_some())
      return do_close();
    return answer_and_close(http::status::request_timeout, "request_timeout",
                            "the request head did not arrive in time");
  }
  if (is_disconnect(ec) || ec == net::error::operation_aborted)
    return do_close();
  if (ec == http::error::header_limit)
    return answer_and_close(http::status::request_header_fields_too_large,
                            "request_header_fields_too_large", "the request head exceeds 16 KiB");
  if (ec)
    return answer_and_close(http::status::bad_request, "bad_request", "malformed HTTP request");
  handle_request();
}

void http_session::handle_request() {
  auto& req = parser_->get();
  method_ = std::string{req.method_string()};
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target)
    return answer_and_close(http::status::bad_request, "bad_request", "malformed request target");
  path_ = target->path();

  auto ex = std::make_shared<exchange>();
  ex->head = req.base();
  ex->path = path_;
  ex->request_id = request_id_;
  ex->client_ip = client_ip_;
  ex->sink = [self = shared_from_this()](response res) {
    net::post(self->stream_.get_executor(),
              [self, res = std::move(res)]() mutable { self->send(std::move(res)); });
  };
  dispatch(svc_, std::move(ex));
}

void http_session::send(response res) {
  auto& req = parser_->get();
  // A body no route consumed is still on the wire: the connection cannot be
  // reused after it.
  bool close = draining_ || !req.keep_alive() || !parser_->is_done() || res.need_eof();
  res.keep_alive(!close);
  res.set("X-Request-Id", request_id_);
  add_security_headers(res, svc_.cfg.env);
  res_.emplace(std::move(res));
  serializer_.emplace(*res_);
  stream_.expires_after(write_timeout);
  auto on_write = beast::bind_front_handler(&http_session::on_write, shared_from_this(), close);
  if (req.method() == http::verb::head)
    http::async_write_header(stream_, *serializer_, std::move(on_write));
  else
    http::async_write(stream_, *serializer_, std::move(on_write));
}

void http_session::on_write(bool close, beast::error_code ec, std::size_t bytes) {
  log_access(res_->result_int(), bytes);
  if (ec || close)
    return do_close();
  do_read_header();
}

// For answers given before a request could be routed (bad or slow heads):
// they always close the connection.
void http_session::answer_and_close(http::status status, const char* code, const char* message) {
  parser_.emplace(); // a fresh parser: keep_alive() false, is_done() false
  send(error_response(status, code, message));
}

void http_session::do_close() {
  waiting_for_head_ = false;
  head_deadline_.cancel();
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
}

void http_session::log_access(unsigned status, std::size_t bytes_sent) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(steady_clock::now() - started_).count();
  log::info("request", {{"request_id", request_id_},
                        {"method", method_},
                        {"path", path_},
                        {"status", status},
                        {"bytes_sent", bytes_sent},
                        {"duration_us", us},
                        {"ip", client_ip_}});
}

} // namespace portal

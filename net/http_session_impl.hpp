// http_session's definitions, for the translation units that instantiate it:
// http_session_plain.cpp, http_session_tls.cpp and the unit tests.
#pragma once

#include "config/crypto.hpp"
#include "config/log.hpp"
#include "net/body_stream_impl.hpp"
#include "net/handlers.hpp"
#include "net/http_session.hpp"
#include "net/metrics.hpp"
#include "net/proxy_headers.hpp"
#include "net/responses.hpp"

#include <boost/url/parse.hpp>

#include <sodium.h>

namespace portal {

namespace http_session_detail {

constexpr std::size_t head_limit = std::size_t{16} * 1024; // SPEC §8: whole request head
constexpr std::chrono::seconds write_timeout{30};          // a reader that vanished
constexpr std::chrono::seconds tls_shutdown_timeout{1};    // waiting for close_notify back

inline std::string new_request_id() {
  unsigned char raw[8];
  randombytes_buf(raw, sizeof raw);
  return crypto::to_hex(raw, sizeof raw);
}

} // namespace http_session_detail

template <class Stream>
http_session<Stream>::http_session(Stream&& stream, const services& svc,
                                   connection_registry& registry)
  : stream_(std::move(stream)), head_deadline_(stream_.get_executor()), svc_(svc),
    registry_(registry), peer_ip_(transport::peer_address(stream_)), client_ip_(peer_ip_) {}

template <class Stream>
http_session<Stream>::~http_session() {
  registry_.remove(this);
}

template <class Stream>
void http_session<Stream>::run() {
  registry_.add(this->shared_from_this());
  net::dispatch(stream_.get_executor(),
                beast::bind_front_handler(&http_session::start, this->shared_from_this()));
}

template <class Stream>
void http_session<Stream>::start() {
  if constexpr (is_tls) {
    // The handshake has the head's deadline: a client that connects and says
    // nothing, or nothing a TLS server understands, is gone within it. The
    // stream's own timeout is right here: there is nobody to answer a 408 to.
    waiting_for_head_ = true;
    transport::expires_after(stream_, svc_.cfg.header_timeout);
    stream_.async_handshake(
      net::ssl::stream_base::server,
      beast::bind_front_handler(&http_session::on_handshake, this->shared_from_this()));
  } else {
    do_read_header();
  }
}

template <class Stream>
void http_session<Stream>::on_handshake(beast::error_code ec) {
  waiting_for_head_ = false;
  if (ec) {
    // Plain HTTP, an old protocol (SPEC §8: TLS 1.2+), an untrusted
    // certificate, or silence. One line, so a refused client can be explained.
    log::info("tls handshake failed", {{"ip", peer_ip_}, {"error", ec.message()}});
    return do_close();
  }
  handshake_done_ = true;
  do_read_header();
}

// Cancels the read of a connection waiting for its next request (or for its
// handshake); the read's handler then closes it, so that a TLS close never
// runs beside a pending read.
template <class Stream>
void http_session<Stream>::close_if_idle() {
  net::post(stream_.get_executor(), [self = this->shared_from_this()] {
    self->draining_ = true;
    if (self->waiting_for_head_ && self->buffer_.size() == 0)
      transport::cancel(self->stream_);
  });
}

// The head has its own deadline timer rather than the stream's: the stream's
// timeout closes the socket, and a half-sent head deserves a 408 first.
template <class Stream>
void http_session<Stream>::do_read_header() {
  if (draining_)
    return do_close();
  buffer_.shrink_to_fit(); // an upload's read buffer is not kept by an idle connection
  parser_.emplace();
  parser_->header_limit(http_session_detail::head_limit);
  // Beast would refuse a large Content-Length while still reading the head;
  // body limits are the upload's business (413 with the JSON shape).
  parser_->body_limit(boost::none);
  waiting_for_head_ = true;
  head_timed_out_ = false;
  head_buffer_.reset();
  transport::expires_never(stream_);
  head_deadline_.expires_after(svc_.cfg.header_timeout);
  head_deadline_.async_wait(beast::bind_front_handler(
    &http_session::on_head_deadline, this->shared_from_this(), ++head_generation_));
  http::async_read_header(
    stream_, head_buffer_, *parser_,
    beast::bind_front_handler(&http_session::on_header, this->shared_from_this()));
}

template <class Stream>
void http_session<Stream>::on_head_deadline(unsigned generation, beast::error_code ec) {
  if (ec || generation != head_generation_ || !waiting_for_head_)
    return;
  head_timed_out_ = true;
  transport::cancel(stream_);
}

template <class Stream>
void http_session<Stream>::on_header(beast::error_code ec, std::size_t) {
  waiting_for_head_ = false;
  head_deadline_.cancel();
  started_ = std::chrono::steady_clock::now();
  request_id_ = http_session_detail::new_request_id();
  method_ = path_ = "-";
  client_ip_ = peer_ip_;
  answered_ = false;
  refused_framing_ = false;
  body_.reset();
  if (head_timed_out_) {
    // Silence on a fresh or kept-alive connection is no request: just close.
    if (buffer_.size() == 0 && !parser_->got_some())
      return do_close();
    return answer_and_close(
      {error_code::request_timeout, "the request head did not arrive in time"});
  }
  if (is_disconnect(ec) || ec == net::error::operation_aborted)
    return do_close();
  if (ec == http::error::header_limit)
    return answer_and_close(
      {error_code::request_header_fields_too_large, "the request head exceeds 16 KiB"});
  if (ec)
    return answer_and_close({error_code::bad_request, "malformed HTTP request"});
  method_ = std::string{parser_->get().method_string()};
  if (head_buffer_.folded())
    return refuse_framing({error_code::bad_request,
                           "a header field continued on the next line (obs-fold)"});
  if (auto refusal = check_framing(parser_->get(), parser_->chunked()))
    return refuse_framing(*refusal);
  handle_request();
}

template <class Stream>
void http_session<Stream>::handle_request() {
  auto& req = parser_->get();
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target)
    return answer_and_close({error_code::bad_request, "malformed request target"});
  // Routed on the encoded path, so that "%2F" inside a name stays inside its
  // segment; the router decodes each parameter.
  path_ = std::string{target->encoded_path()};
  client_ip_ = client_address(req, peer_ip_, svc_.cfg.trust_proxy);
  if (auto location =
        https_redirect(req, path_, svc_.cfg.env == environment::production, svc_.cfg.trust_proxy)) {
    response res{http::status::moved_permanently, 11};
    res.set(http::field::location, *location);
    res.prepare_payload();
    return send(std::move(res));
  }

  auto ex = std::make_shared<exchange>();
  ex->head = req.base();
  ex->path = path_;
  ex->request_id = request_id_;
  ex->client_ip = client_ip_;
  // The posted handler takes the sink's reference, so the session's life
  // ends on its own strand: were the sink (destroyed by the replying thread,
  // an actor's, after this returns) to hold the last one, the session would
  // be destroyed there, racing its strand (a UBSan report under load).
  ex->sink = [self = this->shared_from_this()](any_response res) mutable {
    auto executor = self->stream_.get_executor();
    net::post(executor, [self = std::move(self), res = std::move(res)]() mutable {
      if (auto* file = std::get_if<file_response>(&res))
        return self->send_file(std::move(*file));
      self->send(std::move(std::get<response>(res)));
    });
  };
  ex->stream_body = [self = this->shared_from_this()](exchange::spawn_upload spawn) {
    net::post(self->stream_.get_executor(),
              [self, spawn = std::move(spawn)] { self->start_upload(spawn); });
  };
  ex->read_body = [self = this->shared_from_this()](
                    std::size_t limit, std::function<void(exchange::small_body)> done) {
    net::post(self->stream_.get_executor(), [self, limit, done = std::move(done)]() mutable {
      self->read_small_body(limit, std::move(done));
    });
  };
  svc_.route(svc_, std::move(ex));
}

// ---- the body, for the handler that took it ----------------------------------

template <class Stream>
void http_session<Stream>::read_small_body(std::size_t limit,
                                           std::function<void(exchange::small_body)> done) {
  body_.read_whole(
    *parser_, limit, std::move(done), [this](body_end) { do_close(); }, this->shared_from_this());
}

// The upload's actors answer through the link: credit as they consume
// chunks, then once the answer (answered by the link's destructor if they
// die).
template <class Stream>
void http_session<Stream>::start_upload(exchange::spawn_upload spawn) {
  auto self = this->shared_from_this();
  auto link = std::make_shared<upload_link>(
    [self](std::size_t n) {
      net::post(self->stream_.get_executor(), [self, n] { self->body_.credit(n); });
    },
    [self](upload_answer answer) {
      net::post(self->stream_.get_executor(),
                [self, answer = std::move(answer)]() mutable { self->on_upload_done(answer); });
    });
  svc_.metrics->upload_started();
  body_.stream_to(
    *parser_, spawn(std::move(link)), [this](body_end how) { on_body_end(how); }, self);
}

// The body ended before the upload answered; the upload heard eof or abort.
template <class Stream>
void http_session<Stream>::on_body_end(body_end how) {
  switch (how) {
  case body_end::complete:
    return; // the answer comes through the link
  case body_end::timed_out:
    return send(
      error_response({error_code::request_timeout, "the client sent nothing for too long"}));
  case body_end::disconnected:
    return do_close();
  case body_end::malformed:
    return send(error_response({error_code::bad_request, "malformed request body"}));
  }
}

template <class Stream>
void http_session<Stream>::on_upload_done(upload_answer answer) {
  // Status and headers come from net/error_table (SPEC §5.3: a body that
  // passed the limit closes the connection, even when all of it had arrived).
  auto res = handlers::upload_response(answer);
  svc_.metrics->upload_ended(res.result_int(), std::chrono::steady_clock::now() - started_,
                             !answer.error && !answer.upload.empty());
  if (answered_)
    return body_.stop(nullptr); // we answered first (408, 400), or the client is gone
  // Answered early: the stream stops reading first, then the answer goes.
  answered_ = true;
  body_.stop([self = this->shared_from_this(), res = std::move(res)]() mutable {
    self->send(std::move(res));
  });
}

template <class Stream>
void http_session<Stream>::abort_upload_now() {
  body_.abort_now();
}

// ---- answering ----------------------------------------------------------------

template <class Stream>
void http_session<Stream>::send(response res) {
  res_.emplace(std::move(res));
  write_answer(*res_, serializer_);
}

template <class Stream>
void http_session<Stream>::send_file(file_response res) {
  file_res_.emplace(std::move(res));
  write_answer(*file_res_, file_serializer_);
}

template <class Stream>
template <class Body>
void http_session<Stream>::write_answer(
  http::response<Body>& res, std::optional<http::response_serializer<Body>>& serializer) {
  answered_ = true;
  auto& req = parser_->get();
  // A body no route consumed is still on the wire: the connection cannot be
  // reused after it.
  bool close =
    draining_ || refused_framing_ || !req.keep_alive() || !parser_->is_done() || res.need_eof();
  res.keep_alive(!close);
  res.set("X-Request-Id", request_id_);
  add_security_headers(res.base(), svc_.cfg.env);
  status_ = res.result_int();
  serializer.emplace(res);
  transport::expires_after(stream_, http_session_detail::write_timeout);
  auto on_write =
    beast::bind_front_handler(&http_session::on_write, this->shared_from_this(), close);
  if (req.method() == http::verb::head)
    http::async_write_header(stream_, *serializer, std::move(on_write));
  else
    http::async_write(stream_, *serializer, std::move(on_write));
}

template <class Stream>
void http_session<Stream>::on_write(bool close, beast::error_code ec, std::size_t bytes) {
  log_access(status_, bytes);
  file_serializer_.reset();
  file_res_.reset(); // closes a download's file
  if (ec)
    return do_close();
  // An answer given before the whole body arrived (413, 415, 422...), or to
  // a head whose framing was refused: the client may still be sending;
  // closing at once could reset the connection before it reads the answer.
  if (close && (refused_framing_ || (!parser_->is_done() && parser_->is_header_done())))
    return linger_close();
  if (close)
    return do_close();
  do_read_header();
}

// For answers given before a request could be routed (bad or slow heads):
// they always close the connection.
template <class Stream>
void http_session<Stream>::answer_and_close(const failure& f) {
  parser_.emplace(); // a fresh parser: keep_alive() false, is_done() false
  send(error_response(f));
}

// A head whose framing is in doubt (net/framing): nothing after it is read as
// a request, not even a body.
template <class Stream>
void http_session<Stream>::refuse_framing(const failure& refusal) {
  refused_framing_ = true;
  send(error_response(refusal));
}

template <class Stream>
void http_session<Stream>::do_close() {
  waiting_for_head_ = false;
  body_.forget();
  head_deadline_.cancel();
  if (closing_)
    return;
  closing_ = true;
  if constexpr (is_tls) {
    if (handshake_done_) {
      // close_notify tells the client the answer was not truncated. It waits
      // for the client's own close_notify, but never longer than a moment:
      // a client that does not answer must not hold up the drain.
      transport::expires_after(stream_, http_session_detail::tls_shutdown_timeout);
      return stream_.async_shutdown(
        beast::bind_front_handler(&http_session::on_tls_shutdown, this->shared_from_this()));
    }
  }
  transport::shutdown_send(stream_);
  transport::close(stream_);
}

template <class Stream>
void http_session<Stream>::on_tls_shutdown(beast::error_code) {
  transport::close(stream_); // also after an error: the client may be gone already
}

// Reads and drops what the client still sends, briefly, so that it sees our
// answer instead of a reset; nginx calls this lingering close. Over TLS the
// sending side stays open: close_notify still has to go out (do_close).
template <class Stream>
void http_session<Stream>::linger_close() {
  if constexpr (!is_tls)
    transport::shutdown_send(stream_);
  transport::expires_after(stream_, std::chrono::seconds(2));
  auto scratch = std::make_shared<std::array<char, 16384>>();
  stream_.async_read_some(net::buffer(*scratch),
                          [self = this->shared_from_this(), scratch](
                            beast::error_code ec, std::size_t n) { self->on_linger(ec, n); });
}

template <class Stream>
void http_session<Stream>::on_linger(beast::error_code ec, std::size_t n) {
  lingered_ += n;
  if (ec || lingered_ > (std::size_t{4} << 20))
    return do_close();
  linger_close();
}

template <class Stream>
void http_session<Stream>::log_access(unsigned status, std::size_t bytes_sent) {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(steady_clock::now() - started_).count();
  svc_.metrics->request_done(method_, status);
  log::info("request", {{"request_id", request_id_},
                        {"method", method_},
                        {"path", path_},
                        {"status", status},
                        {"bytes_sent", bytes_sent},
                        {"bytes_received", body_.received()},
                        {"duration_us", us},
                        {"ip", client_ip_}});
}

} // namespace portal

#include "net/http_session.hpp"

#include "actors/messages.hpp"
#include "config/log.hpp"
#include "config/utf8_text.hpp"
#include "net/handlers.hpp"
#include "net/metrics.hpp"
#include "net/proxy_headers.hpp"
#include "net/responses.hpp"
#include "net/router.hpp"

#include <boost/url/parse.hpp>
#include <caf/all.hpp>

#include <sodium.h>

namespace portal {

namespace {

constexpr std::size_t head_limit = std::size_t{16} * 1024;      // SPEC §8: whole request head
constexpr std::size_t body_read_bytes = std::size_t{64} * 1024; // the most Beast reads at once
constexpr std::chrono::seconds write_timeout{30};               // a reader that vanished
constexpr std::chrono::seconds tls_shutdown_timeout{1};         // waiting for close_notify back

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

template <class Stream>
http_session<Stream>::http_session(Stream&& stream, const services& svc,
                                   connection_registry& registry)
  : stream_(std::move(stream)), head_deadline_(stream_.get_executor()), svc_(svc),
    registry_(registry) {
  beast::error_code ec;
  auto ep = transport().socket().remote_endpoint(ec);
  peer_ip_ = ec ? "-" : ep.address().to_string();
  client_ip_ = peer_ip_;
}

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
    transport().expires_after(svc_.cfg.header_timeout);
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
    if (self->waiting_for_head_ && self->buffer_.size() == 0) {
      beast::error_code ignored;
      self->transport().socket().cancel(ignored);
    }
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
  parser_->header_limit(head_limit);
  // Beast would refuse a large Content-Length while still reading the head;
  // body limits are the upload's business (413 with the JSON shape).
  parser_->body_limit(boost::none);
  waiting_for_head_ = true;
  head_timed_out_ = false;
  transport().expires_never();
  head_deadline_.expires_after(svc_.cfg.header_timeout);
  head_deadline_.async_wait(beast::bind_front_handler(
    &http_session::on_head_deadline, this->shared_from_this(), ++head_generation_));
  http::async_read_header(
    stream_, buffer_, *parser_,
    beast::bind_front_handler(&http_session::on_header, this->shared_from_this()));
}

template <class Stream>
void http_session<Stream>::on_head_deadline(unsigned generation, beast::error_code ec) {
  if (ec || generation != head_generation_ || !waiting_for_head_)
    return;
  head_timed_out_ = true;
  transport().socket().cancel();
}

template <class Stream>
void http_session<Stream>::on_header(beast::error_code ec, std::size_t) {
  waiting_for_head_ = false;
  head_deadline_.cancel();
  started_ = std::chrono::steady_clock::now();
  request_id_ = new_request_id();
  method_ = path_ = "-";
  client_ip_ = peer_ip_;
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
  handle_request();
}

template <class Stream>
void http_session<Stream>::handle_request() {
  auto& req = parser_->get();
  method_ = std::string{req.method_string()};
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
  ex->sink = [self = this->shared_from_this()](any_response res) {
    net::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable {
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
  answered_ = false;
  body_bytes_ = 0;
  // Every upload request counts once in portal_uploads_total, also when it
  // is refused before an upload actor exists (401, 400, 413, 429, 507).
  upload_counted_ = !(req.method() == http::verb::put && path_.rfind("/api/v1/uploads/", 0) == 0);
  svc_.route(svc_, std::move(ex));
}

// ---- reading a small body whole ----------------------------------------------
// A form is tiny and bounded: read into one buffer of limit + 1 bytes, so
// that a byte past the limit is seen without reading further.

template <class Stream>
void http_session<Stream>::read_small_body(std::size_t limit,
                                           std::function<void(exchange::small_body)> done) {
  auto length = parser_->content_length();
  if (length && *length > limit)
    return done(http::status::payload_too_large);
  small_body_.assign(limit + 1, '\0');
  small_limit_ = limit;
  small_done_ = std::move(done);
  body_bytes_ = 0;
  ++head_generation_;
  // The head's deadline covers the body too: a form is no slow upload.
  transport().expires_after(svc_.cfg.header_timeout);
  if (beast::iequals(parser_->get()[http::field::expect], "100-continue") && !parser_->is_done()) {
    auto cont = std::make_shared<response>(http::status::continue_, 11);
    http::async_write(stream_, *cont,
                      [self = this->shared_from_this(), cont](beast::error_code ec, std::size_t) {
                        if (ec)
                          return self->do_close();
                        self->do_read_small_body();
                      });
    return;
  }
  do_read_small_body();
}

template <class Stream>
void http_session<Stream>::do_read_small_body() {
  auto& body = parser_->get().body();
  body.data = small_body_.data() + body_bytes_;
  body.size = small_body_.size() - body_bytes_;
  if (parser_->is_done())
    return on_small_body({}, 0);
  http::async_read_some(
    stream_, buffer_, *parser_,
    beast::bind_front_handler(&http_session::on_small_body, this->shared_from_this()));
}

template <class Stream>
void http_session<Stream>::on_small_body(beast::error_code ec, std::size_t) {
  if (ec == http::error::need_buffer)
    ec = {};
  body_bytes_ = small_body_.size() - parser_->get().body().size;
  if (ec && (is_disconnect(ec) || ec == beast::error::timeout)) {
    small_done_ = nullptr; // it holds the exchange, which holds this session
    return do_close();
  }
  if (!ec && body_bytes_ <= small_limit_ && !parser_->is_done())
    return do_read_small_body();
  auto done = std::exchange(small_done_, nullptr);
  if (ec)
    return done(http::status::bad_request);
  if (body_bytes_ > small_limit_)
    return done(http::status::payload_too_large);
  small_body_.resize(body_bytes_);
  transport().expires_never();
  done(std::move(small_body_));
}

// ---- streaming a body into an upload actor ----------------------------------
// The body is read one chunk at a time, and only while the upload holds
// credit: a slow validator or disk leaves the socket unread, and TCP slows
// the sender. Memory per upload is credit_window chunks, whatever its size.

template <class Stream>
void http_session<Stream>::start_upload(exchange::spawn_upload spawn) {
  auto self = this->shared_from_this();
  auto link = std::make_shared<upload_link>(
    [self](std::size_t n) {
      net::post(self->stream_.get_executor(), [self, n] { self->on_credit(n); });
    },
    [self](upload_answer answer) {
      net::post(self->stream_.get_executor(),
                [self, answer = std::move(answer)]() mutable { self->on_upload_done(answer); });
    });
  upload_ = spawn(std::move(link));
  svc_.metrics->upload_started();
  // Beast reads as much as the buffer has room for: left at the 512 bytes
  // the head needed, a body costs one recvmsg, epoll round and strand hop
  // per 512 bytes, which was most of the server's CPU (bench/RESULTS.md).
  buffer_.reserve(body_read_bytes);
  credit_ = svc_.cfg.credit_window;
  body_timed_out_ = false;
  last_body_activity_ = std::chrono::steady_clock::now();
  ++head_generation_;
  arm_body_deadline();
  if (parser_->is_done()) // no body at all
    return caf::anon_send(upload_, eof_atom::value);
  if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
    // The upload is accepted: now the client may send the body.
    auto cont = std::make_shared<response>(http::status::continue_, 11);
    http::async_write(stream_, *cont, [self, cont](beast::error_code ec, std::size_t) {
      if (ec)
        return self->end_upload();
      self->do_read_body();
    });
    return;
  }
  do_read_body();
}

template <class Stream>
void http_session<Stream>::do_read_body() {
  if (!upload_ || reading_body_ || answered_ || parser_->is_done() || credit_ == 0)
    return;
  if (!filling_) {
    auto self = this->shared_from_this();
    filling_ = svc_.chunks->acquire(
      [self] { net::post(self->stream_.get_executor(), [self] { self->do_read_body(); }); });
    if (!filling_)
      return; // every buffer is in flight: woken when one comes back
  }
  auto& body = parser_->get().body();
  body.data = filling_->data.get() + filling_->size;
  body.size = filling_->capacity - filling_->size;
  reading_body_ = true;
  last_body_activity_ = std::chrono::steady_clock::now();
  // read_some, not read: every arrival counts as activity (a trickling
  // client is not silent), and the first bytes are seen at once.
  http::async_read_some(
    stream_, buffer_, *parser_,
    beast::bind_front_handler(&http_session::on_body, this->shared_from_this()));
}

// One timer for the whole body, not one per read (re-arming a timer per 64 KiB
// read was a measurable share of the upload's CPU): it wakes at the earliest
// moment the client could have been silent for body_idle_timeout, and only
// a pending read counts as waiting for the client (waiting for credit is
// the server being slow, not the client).
template <class Stream>
void http_session<Stream>::arm_body_deadline() {
  auto at = last_body_activity_ + svc_.cfg.body_idle_timeout;
  if (!reading_body_)
    at = std::chrono::steady_clock::now() + svc_.cfg.body_idle_timeout;
  head_deadline_.expires_at(at);
  head_deadline_.async_wait(beast::bind_front_handler(&http_session::on_body_deadline,
                                                      this->shared_from_this(), head_generation_));
}

template <class Stream>
void http_session<Stream>::on_body_deadline(unsigned generation, beast::error_code ec) {
  if (ec || generation != head_generation_ || !upload_)
    return;
  auto idle = std::chrono::steady_clock::now() - last_body_activity_;
  if (!reading_body_ || idle < svc_.cfg.body_idle_timeout)
    return arm_body_deadline();
  body_timed_out_ = true;
  transport().socket().cancel();
}

template <class Stream>
void http_session<Stream>::on_body(beast::error_code ec, std::size_t) {
  reading_body_ = false;
  last_body_activity_ = std::chrono::steady_clock::now();
  if (ec == http::error::need_buffer) // the chunk is full: not an error
    ec = {};
  if (held_answer_) { // the upload answered while this read was pending
    auto res = std::move(*held_answer_);
    held_answer_.reset();
    return send(std::move(res));
  }
  if (body_timed_out_) {
    end_upload();
    return send(
      error_response({error_code::request_timeout, "the client sent nothing for too long"}));
  }
  if (ec) {
    // Gone, or a malformed chunked encoding: either way the body is lost.
    end_upload();
    if (is_disconnect(ec) || ec == net::error::operation_aborted)
      return do_close();
    return send(error_response({error_code::bad_request, "malformed request body"}));
  }
  auto filled = filling_->capacity - parser_->get().body().size;
  body_bytes_ += filled - filling_->size;
  svc_.metrics->upload_bytes(filled - filling_->size);
  filling_->size = filled;
  bool done = parser_->is_done();
  // The first chunk goes out as soon as it has bytes, so a wrong magic
  // number is refused at once (SPEC §5.3 "415 within the first chunk").
  bool first = body_bytes_ == filled;
  if (filled == filling_->capacity || (done && filled > 0) || (first && filled > 0)) {
    --credit_;
    caf::anon_send(upload_, chunk_atom::value, chunk_ptr{std::move(filling_)});
  }
  if (done)
    return caf::anon_send(upload_, eof_atom::value); // the answer comes through the link
  do_read_body();
}

template <class Stream>
void http_session<Stream>::on_credit(std::size_t n) {
  credit_ += n;
  do_read_body();
}

template <class Stream>
void http_session<Stream>::on_upload_done(upload_answer answer) {
  upload_ = nullptr;
  upload_counted_ = true;
  // Status and headers come from net/error_table (SPEC §5.3: a body that
  // passed the limit closes the connection, even when all of it had arrived).
  auto res = handlers::upload_response(answer);
  svc_.metrics->upload_ended(res.result_int(), std::chrono::steady_clock::now() - started_);
  head_deadline_.cancel();
  filling_.reset();
  // We answered first (408), or the client is gone.
  if (answered_)
    return;
  if (reading_body_) { // answered early: stop the read first, then write
    held_answer_.emplace(std::move(res));
    answered_ = true;
    transport().socket().cancel();
    return;
  }
  send(std::move(res));
}

// The connection ends the upload (timeout, disconnect, malformed body); the
// upload actor discards what it had.
template <class Stream>
void http_session<Stream>::end_upload() {
  head_deadline_.cancel();
  filling_.reset();
  if (upload_)
    caf::anon_send(upload_, abort_atom::value);
  upload_ = nullptr;
}

template <class Stream>
void http_session<Stream>::abort_upload_now() {
  end_upload();
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
  bool close = draining_ || !req.keep_alive() || !parser_->is_done() || res.need_eof();
  res.keep_alive(!close);
  res.set("X-Request-Id", request_id_);
  add_security_headers(res.base(), svc_.cfg.env);
  status_ = res.result_int();
  serializer.emplace(res);
  transport().expires_after(write_timeout);
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
  // An answer given before the whole body arrived (413, 415, 422...): the
  // client may still be sending; closing at once could reset the connection
  // before it reads the answer.
  if (close && !parser_->is_done() && parser_->is_header_done())
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

template <class Stream>
void http_session<Stream>::do_close() {
  waiting_for_head_ = false;
  small_done_ = nullptr;
  head_deadline_.cancel();
  if (closing_)
    return;
  closing_ = true;
  if constexpr (is_tls) {
    if (handshake_done_) {
      // close_notify tells the client the answer was not truncated. It waits
      // for the client's own close_notify, but never longer than a moment:
      // a client that does not answer must not hold up the drain.
      transport().expires_after(tls_shutdown_timeout);
      return stream_.async_shutdown(
        beast::bind_front_handler(&http_session::on_tls_shutdown, this->shared_from_this()));
    }
  }
  beast::error_code ignored;
  transport().socket().shutdown(tcp::socket::shutdown_send, ignored);
  transport().close();
}

template <class Stream>
void http_session<Stream>::on_tls_shutdown(beast::error_code) {
  transport().close(); // also after an error: the client may be gone already
}

// Reads and drops what the client still sends, briefly, so that it sees our
// answer instead of a reset; nginx calls this lingering close. Over TLS the
// sending side stays open: close_notify still has to go out (do_close).
template <class Stream>
void http_session<Stream>::linger_close() {
  if constexpr (!is_tls) {
    beast::error_code ignored;
    transport().socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
  transport().expires_after(std::chrono::seconds(2));
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
  if (!upload_counted_) {
    upload_counted_ = true;
    svc_.metrics->upload_ended(status, steady_clock::now() - started_);
  }
  log::info("request", {{"request_id", request_id_},
                        {"method", method_},
                        {"path", path_},
                        {"status", status},
                        {"bytes_sent", bytes_sent},
                        {"bytes_received", body_bytes_},
                        {"duration_us", us},
                        {"ip", client_ip_}});
}

// The only two streams a session runs on (net/listener picks one).
template class http_session<plain_stream>;
template class http_session<tls_stream>;

} // namespace portal

// body_stream's definitions, for the translation units that instantiate it
// (through net/http_session_impl.hpp) and for the unit tests.
#pragma once

#include "actors/messages.hpp"
#include "net/body_stream.hpp"
#include "net/metrics.hpp"
#include "net/transport.hpp"

#include <caf/send.hpp>

#include <utility>

namespace portal {

namespace body_stream_detail {
// The most Beast reads at once.
constexpr std::size_t read_bytes = std::size_t{64} * 1024;
} // namespace body_stream_detail

template <class Stream>
body_stream<Stream>::body_stream(Stream& stream, beast::flat_buffer& buffer, const services& svc)
  : stream_(stream), buffer_(buffer), svc_(svc), idle_(stream.get_executor()) {}

// SPEC §11: a client that sent `Expect: 100-continue` waits for it before the
// body; it goes out only now that a handler took the body.
template <class Stream>
template <class Next>
void body_stream<Stream>::continue_then(Next next) {
  if (parser_->is_done() || !beast::iequals(parser_->get()[http::field::expect], "100-continue"))
    return next(beast::error_code{});
  auto cont = std::make_shared<response>(http::status::continue_, 11);
  continuing_ = true;
  http::async_write(stream_, *cont,
                    [this, cont, keep = owner_.lock(),
                     next = std::move(next)](beast::error_code ec, std::size_t) mutable {
                      continuing_ = false;
                      if (stopped_)
                        return std::exchange(stopped_, nullptr)();
                      next(ec);
                    });
}

// ---- streaming into an upload -------------------------------------------------

template <class Stream>
void body_stream<Stream>::stream_to(parser_type& parser, upload_session_actor upload,
                                    ended_fn ended, std::shared_ptr<void> owner) {
  parser_ = &parser;
  upload_ = std::move(upload);
  ended_ = std::move(ended);
  owner_ = owner;
  // Beast reads as much as the buffer has room for: left at the 512 bytes
  // the head needed, a body costs one recvmsg, epoll round and strand hop
  // per 512 bytes, which was most of the server's CPU (bench/RESULTS.md).
  buffer_.reserve(body_stream_detail::read_bytes);
  credit_ = svc_.cfg.credit_window;
  streaming_ = true;
  timed_out_ = false;
  stopped_ = nullptr;
  last_activity_ = std::chrono::steady_clock::now();
  ++generation_;
  arm_deadline();
  if (parser.is_done()) // no body at all
    return finish(body_end::complete);
  continue_then([this](beast::error_code ec) {
    if (ec)
      return finish(body_end::disconnected);
    do_read();
  });
}

template <class Stream>
void body_stream<Stream>::do_read() {
  if (!streaming_ || reading_ || continuing_ || parser_->is_done() || credit_ == 0)
    return;
  if (!filling_) {
    filling_ = svc_.chunks->acquire([this, keep = owner_.lock()] {
      net::post(stream_.get_executor(), [this, keep] { do_read(); });
    });
    if (!filling_)
      return; // every buffer is in flight: woken when one comes back
  }
  auto& body = parser_->get().body();
  body.data = filling_->data.get() + filling_->size;
  body.size = filling_->capacity - filling_->size;
  reading_ = true;
  last_activity_ = std::chrono::steady_clock::now();
  // read_some, not read: every arrival counts as activity (a trickling
  // client is not silent), and the first bytes are seen at once.
  http::async_read_some(
    stream_, buffer_, *parser_,
    [this, keep = owner_.lock()](beast::error_code ec, std::size_t) { on_read(ec); });
}

template <class Stream>
void body_stream<Stream>::on_read(beast::error_code ec) {
  reading_ = false;
  last_activity_ = std::chrono::steady_clock::now();
  if (stopped_) { // the upload answered while this read was pending
    filling_.reset();
    return std::exchange(stopped_, nullptr)();
  }
  if (timed_out_)
    return finish(body_end::timed_out);
  if (ec == http::error::need_buffer) // the chunk is full: not an error
    ec = {};
  if (ec)
    return finish(is_disconnect(ec) || ec == net::error::operation_aborted ? body_end::disconnected
                                                                           : body_end::malformed);
  auto filled = filling_->capacity - parser_->get().body().size;
  received_ += filled - filling_->size;
  svc_.metrics->upload_bytes(filled - filling_->size);
  filling_->size = filled;
  bool done = parser_->is_done();
  // The first chunk goes out as soon as it has bytes, so a wrong magic
  // number is refused at once (SPEC §5.3 "415 within the first chunk").
  bool first = received_ == filled;
  if (filled == filling_->capacity || (done && filled > 0) || (first && filled > 0)) {
    --credit_;
    caf::anon_send(upload_, chunk_atom::value, chunk_ptr{std::move(filling_)});
  }
  if (done)
    return finish(body_end::complete);
  do_read();
}

template <class Stream>
void body_stream<Stream>::credit(std::size_t n) {
  credit_ += n;
  do_read();
}

// One timer for the whole body, not one per read (re-arming a timer per 64 KiB
// read was a measurable share of the upload's CPU): it wakes at the earliest
// moment the client could have been silent for body_idle_timeout, and only
// a pending read counts as waiting for the client (waiting for credit is
// the server being slow, not the client).
template <class Stream>
void body_stream<Stream>::arm_deadline() {
  auto at = last_activity_ + svc_.cfg.body_idle_timeout;
  if (!reading_)
    at = std::chrono::steady_clock::now() + svc_.cfg.body_idle_timeout;
  idle_.expires_at(at);
  idle_.async_wait([this, keep = owner_.lock(), generation = generation_](beast::error_code ec) {
    on_deadline(generation, ec);
  });
}

template <class Stream>
void body_stream<Stream>::on_deadline(unsigned generation, beast::error_code ec) {
  if (ec || generation != generation_ || !streaming_)
    return;
  auto idle = std::chrono::steady_clock::now() - last_activity_;
  if (!reading_ || idle < svc_.cfg.body_idle_timeout)
    return arm_deadline();
  timed_out_ = true;
  stream_transport<Stream>::cancel(stream_);
}

// The end of a stream that was not stopped: the upload hears eof_atom, or
// abort_atom and is let go.
template <class Stream>
void body_stream<Stream>::finish(body_end how) {
  streaming_ = false;
  ++generation_;
  idle_.cancel();
  filling_.reset();
  if (how == body_end::complete) {
    caf::anon_send(upload_, eof_atom::value); // its answer comes through its upload_link
  } else {
    caf::anon_send(upload_, abort_atom::value);
    upload_ = nullptr;
  }
  if (auto ended = std::exchange(ended_, nullptr))
    ended(how);
}

template <class Stream>
void body_stream<Stream>::stop(std::function<void()> then) {
  upload_ = nullptr;
  if (streaming_) {
    streaming_ = false;
    ended_ = nullptr;
    ++generation_;
    idle_.cancel();
    if (reading_ || continuing_) {
      stopped_ = then ? std::move(then) : [] {};
      if (reading_)
        stream_transport<Stream>::cancel(stream_);
      return;
    }
    filling_.reset();
  }
  if (then)
    then();
}

template <class Stream>
void body_stream<Stream>::abort_now() {
  streaming_ = false;
  idle_.cancel();
  filling_.reset();
  if (upload_)
    caf::anon_send(upload_, abort_atom::value);
  upload_ = nullptr;
}

// ---- reading a small body whole -----------------------------------------------
// A form is tiny and bounded: read into one buffer of limit + 1 bytes, so
// that a byte past the limit is seen without reading further.

template <class Stream>
void body_stream<Stream>::read_whole(parser_type& parser, std::size_t limit,
                                     std::function<void(exchange::small_body)> done, ended_fn ended,
                                     std::shared_ptr<void> owner) {
  parser_ = &parser;
  owner_ = owner;
  auto length = parser.content_length();
  if (length && *length > limit)
    return done(http::status::payload_too_large);
  whole_.assign(limit + 1, '\0');
  whole_limit_ = limit;
  whole_done_ = std::move(done);
  ended_ = std::move(ended);
  received_ = 0;
  // The head's deadline covers the body too: a form is no slow upload.
  stream_transport<Stream>::expires_after(stream_, svc_.cfg.header_timeout);
  continue_then([this](beast::error_code ec) {
    if (ec)
      return whole_gone();
    do_read_whole();
  });
}

template <class Stream>
void body_stream<Stream>::do_read_whole() {
  auto& body = parser_->get().body();
  body.data = whole_.data() + received_;
  body.size = whole_.size() - received_;
  if (parser_->is_done())
    return on_read_whole({});
  http::async_read_some(
    stream_, buffer_, *parser_,
    [this, keep = owner_.lock()](beast::error_code ec, std::size_t) { on_read_whole(ec); });
}

template <class Stream>
void body_stream<Stream>::on_read_whole(beast::error_code ec) {
  if (ec == http::error::need_buffer)
    ec = {};
  received_ = whole_.size() - parser_->get().body().size;
  if (ec && (is_disconnect(ec) || ec == beast::error::timeout))
    return whole_gone();
  if (!ec && received_ <= whole_limit_ && !parser_->is_done())
    return do_read_whole();
  auto done = std::exchange(whole_done_, nullptr);
  ended_ = nullptr;
  if (!done)
    return; // forgotten: the connection closed meanwhile
  if (ec)
    return done(http::status::bad_request);
  if (received_ > whole_limit_)
    return done(http::status::payload_too_large);
  whole_.resize(received_);
  stream_transport<Stream>::expires_never(stream_);
  done(std::move(whole_));
}

// Nobody is left to answer: `done` is dropped, the owner closes.
template <class Stream>
void body_stream<Stream>::whole_gone() {
  whole_done_ = nullptr;
  if (auto ended = std::exchange(ended_, nullptr))
    ended(body_end::disconnected);
}

template <class Stream>
void body_stream<Stream>::forget() {
  whole_done_ = nullptr;
  ended_ = nullptr;
}

} // namespace portal

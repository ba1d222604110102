// Reads one request's body off the connection for the handler that asked for
// it (net/exchange.hpp): whole into a string, for a small form, or chunk by
// chunk into an upload actor (SPEC §5): a plain PUT today, a tus PATCH and a
// tus creation-with-upload POST next, all through stream_to() unchanged.
//
// Streaming (docs/ARCHITECTURE.md, "One upload"): the body is read into
// pooled chunks (actors/chunk_pool, chunk_bytes each) and only while the
// upload holds credit (credit_window chunks), so a slow validator or disk
// leaves the socket unread and TCP slows the sender. The upload hears, in
// order: (chunk_atom, chunk_ptr) per chunk, then (eof_atom) after the last
// byte, or (abort_atom) when the body was cut short: the client was silent
// for body_idle_timeout while a read was pending, went away, or sent a
// malformed chunked encoding. What a cut means is the upload's business: a
// plain PUT discards what it has, a tus PATCH keeps its durable bytes
// (SPEC §5.2, §5.3). When the upload answers first (413, 415, 422...),
// stop() ends the stream without abort_atom.
//
// `Expect: 100-continue` is answered here, the one place that writes it: only
// once a handler took the body, so its refusals come instead (SPEC §11).
//
// Runs on the connection's strand. The owner holds it by value and passes
// itself as `owner`: each pending operation holds the owner, so neither goes
// away while one is pending; the callbacks hold nothing.
#pragma once

#include "actors/chunk_pool.hpp"
#include "actors/upload_types.hpp"
#include "net/exchange.hpp"
#include "net/http.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace portal {

// How a body ended, if not by stop().
enum class body_end {
  complete,     // every byte arrived; streaming: eof_atom sent
  timed_out,    // silent for body_idle_timeout while a read was pending; abort_atom sent
  disconnected, // the client went away (or, reading whole, overran header_timeout); abort_atom sent
  malformed,    // a malformed chunked encoding; abort_atom sent
};

template <class Stream>
class body_stream {
public:
  using parser_type = http::request_parser<http::buffer_body>;
  using ended_fn = std::function<void(body_end)>;

  // Reads through `buffer`, the connection's read buffer (it may hold body
  // bytes read with the head); takes cfg, chunks and metrics from `svc`.
  body_stream(Stream& stream, beast::flat_buffer& buffer, const services& svc);

  // Streams the body announced by `parser` (its head read) into `upload`.
  // `ended` is called once, unless stop() comes first.
  void stream_to(parser_type& parser, upload_session_actor upload, ended_fn ended,
                 std::shared_ptr<void> owner);
  // The upload consumed n chunks: n more may go.
  void credit(std::size_t n);
  // The upload has answered: no more reads and no more messages to it; it
  // keeps what it received. `then` runs once no read or write of this stream
  // is pending (at once if none is).
  void stop(std::function<void()> then);
  // Shutdown, after the event loop stopped: the upload, if still held (also
  // after eof_atom, while it finishes), is sent abort_atom.
  void abort_now();

  // Reads a body of at most `limit` bytes whole, within header_timeout, for
  // `done`: the body, or the status to refuse it with (413 longer than
  // `limit`, 400 malformed). A client that goes away or overruns the
  // deadline gets `ended(disconnected)` instead, and `done` is dropped.
  void read_whole(parser_type& parser, std::size_t limit,
                  std::function<void(exchange::small_body)> done, ended_fn ended,
                  std::shared_ptr<void> owner);

  // The connection is closing: drops the callbacks (`done` holds the
  // request's exchange, which holds the connection).
  void forget();

  // Body bytes this request delivered so far; reset() before each request.
  std::uint64_t received() const { return received_; }
  void reset() { received_ = 0; }

private:
  template <class Next>
  void continue_then(Next next);
  void do_read();
  void on_read(beast::error_code ec);
  void arm_deadline();
  void on_deadline(unsigned generation, beast::error_code ec);
  void finish(body_end how);
  void do_read_whole();
  void on_read_whole(beast::error_code ec);
  void whole_gone();

  Stream& stream_;
  beast::flat_buffer& buffer_;
  const services& svc_;
  net::steady_timer idle_; // the body's idle deadline
  parser_type* parser_ = nullptr;
  std::weak_ptr<void> owner_;
  ended_fn ended_;
  std::uint64_t received_ = 0;

  // Streaming into an upload.
  upload_session_actor upload_; // held from stream_to() to stop(), a cut or abort_now()
  bool streaming_ = false;      // stream_to() until ended or stopped
  writable_chunk filling_;      // the chunk being read into
  std::size_t credit_ = 0;      // chunks that may still go before the next credit
  bool reading_ = false;        // a body read is pending
  bool continuing_ = false;     // the 100 Continue write is pending
  bool timed_out_ = false;
  std::function<void()> stopped_; // stop() while a read or write was pending
  unsigned generation_ = 0;       // of the deadline: a stale wake-up is ignored
  std::chrono::steady_clock::time_point last_activity_;

  // Reading a small body whole.
  std::string whole_;
  std::size_t whole_limit_ = 0;
  std::function<void(exchange::small_body)> whole_done_;
};

} // namespace portal

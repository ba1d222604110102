// Where a request's body ends must be beyond doubt (RFC 9112 §6): a proxy in
// front of the server and the server itself must read the same bytes as the
// body, or the rest of one request runs as another (request smuggling).
// Beast's parser refuses most ambiguous heads itself (a Content-Length that
// is not 1*DIGIT or differs between fields, Transfer-Encoding beside
// Content-Length after chunked or Transfer-Encoding after Content-Length,
// bare CR or LF, NUL and other controls, whitespace before a colon); these
// are the rules it leaves to the server. docs/SECURITY.md lists them all with their tests.
#pragma once

#include "config/error_code.hpp"
#include "net/http.hpp"

#include <optional>
#include <string_view>

namespace portal {

// The head's framing, judged before any body byte is read:
// - Transfer-Encoding (all its fields together, RFC 9112 §6.1): in
//   HTTP/1.0, beside Content-Length, not a valid token list, or with a final
//   coding other than `chunked` (`gzip`, `identity`, `chunked, gzip`, `chunked`
//   twice, or empty): 400. Chunked is final but follows other codings
//   (`gzip, chunked`): 501, the server implements none of them.
// - Content-Length: more than one field, or a list (`5, 5`, which RFC 9110
//   §8.6 lets a recipient merge or refuse): 400.
// `chunked` is the parser's own reading (basic_parser::chunked()): a
// Transfer-Encoding these rules accept but Beast did not read as chunked
// (a list Beast reads differently) is refused too, so that the two never
// disagree about where the body ends.
// The connection is closed after the refusal: the rest of it is no request.
// Refusals: bad_request (400), or not_implemented (501) for a transfer
// coding the server lacks.
std::optional<failure> check_framing(const http::request_header<>& head, bool chunked);

// The connection's read buffer as the head parser sees it. Beast replaces
// an obs-fold (a field line continued on the next line that starts with a
// space or tab, RFC 9112 §5.2) with a space, so a folded field looks like
// any other once parsed; a proxy may instead read the continuation as a
// field of its own. This wrapper sees the bytes of the head as the parser
// consumes them and notes a line that starts with a space or tab; the
// session refuses such a head with 400, as §5.2 allows.
class head_buffer {
public:
  using const_buffers_type = beast::flat_buffer::const_buffers_type;
  using mutable_buffers_type = beast::flat_buffer::mutable_buffers_type;

  explicit head_buffer(beast::flat_buffer& buffer) : buffer_(buffer) {}

  // Before each head.
  void reset() {
    previous_[0] = previous_[1] = 0;
    folded_ = false;
  }
  bool folded() const { return folded_; }

  // DynamicBuffer (v1), passed through to the connection's buffer.
  std::size_t size() const { return buffer_.size(); }
  std::size_t max_size() const { return buffer_.max_size(); }
  std::size_t capacity() const { return buffer_.capacity(); }
  const_buffers_type data() const { return buffer_.data(); }
  mutable_buffers_type prepare(std::size_t n) { return buffer_.prepare(n); }
  void commit(std::size_t n) { buffer_.commit(n); }
  void consume(std::size_t n);

private:
  beast::flat_buffer& buffer_;
  char previous_[2] = {}; // the last two bytes consumed
  bool folded_ = false;
};

} // namespace portal

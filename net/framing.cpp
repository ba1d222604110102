#include "net/framing.hpp"

#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>
#include <vector>

namespace portal {

namespace {

failure bad_request(std::string message) {
  return {error_code::bad_request, std::move(message)};
}

} // namespace

std::optional<failure> check_framing(const http::request_header<>& head, bool chunked) {
  auto lengths = head.equal_range(http::field::content_length);
  auto length_fields = std::distance(lengths.first, lengths.second);
  auto codings_fields = head.equal_range(http::field::transfer_encoding);
  if (codings_fields.first != codings_fields.second) {
    if (head.version() < 11)
      return bad_request("Transfer-Encoding is not HTTP/1.0");
    if (length_fields > 0)
      return bad_request("Transfer-Encoding and Content-Length together");
    std::vector<std::string_view> codings;
    for (auto it = codings_fields.first; it != codings_fields.second; ++it) {
      http::opt_token_list list{it->value()};
      if (!http::validate_list(list))
        return bad_request("Transfer-Encoding is not a list of transfer codings");
      for (auto coding : list)
        codings.push_back(coding);
    }
    auto is_chunked = [](std::string_view coding) { return beast::iequals(coding, "chunked"); };
    if (codings.empty() || !is_chunked(codings.back()))
      return bad_request("the final transfer coding is not chunked");
    codings.pop_back();
    if (std::any_of(codings.begin(), codings.end(), is_chunked))
      return bad_request("chunked is applied more than once");
    if (!codings.empty())
      return failure{error_code::not_implemented,
                     "no transfer coding other than chunked is supported"};
    if (!chunked)
      return bad_request("Transfer-Encoding is not a list of transfer codings");
  }
  if (length_fields > 1)
    return bad_request("more than one Content-Length");
  if (length_fields == 1 &&
      lengths.first->value().find_first_not_of("0123456789") != std::string_view::npos)
    return bad_request("Content-Length is not one decimal number");
  return std::nullopt;
}

// A byte that follows CR LF inside a head starts a field line; only an
// obs-fold starts one with a space or tab (the head's final CR LF CR LF ends
// what the parser consumes here).
void head_buffer::consume(std::size_t n) {
  n = std::min(n, buffer_.size());
  auto bytes = static_cast<const char*>(buffer_.data().data());
  for (std::size_t i = 0; i < n && !folded_; ++i) {
    char c = bytes[i];
    folded_ = previous_[0] == '\r' && previous_[1] == '\n' && (c == ' ' || c == '\t');
    previous_[0] = previous_[1];
    previous_[1] = c;
  }
  buffer_.consume(n);
}

} // namespace portal

// A Beast Body that sends one byte range of an open file, read with pread()
// in 64 KiB pieces as the socket takes them: downloads are streamed from
// disk, never loaded into memory. (Beast's file_body always sends the whole
// file, which cannot answer a Range request.)
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>

#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <unistd.h>
#include <utility>

namespace portal {

struct file_range_body {
  struct value_type {
    std::shared_ptr<int> fd; // closes on the last reference
    uint64_t offset = 0;
    uint64_t length = 0;
  };

  static std::uint64_t size(const value_type& v) { return v.length; }

  class writer {
  public:
    using const_buffers_type = boost::asio::const_buffer;

    template <bool isRequest, class Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& body)
      : body_(body), pos_(body.offset), remain_(body.length) {}

    void init(boost::beast::error_code& ec) { ec = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      if (remain_ == 0) {
        ec = {};
        return boost::none;
      }
      auto want = remain_ < buf_.size() ? static_cast<std::size_t>(remain_) : buf_.size();
      ssize_t n;
      do
        n = ::pread(*body_.fd, buf_.data(), want, static_cast<off_t>(pos_));
      while (n < 0 && errno == EINTR);
      if (n <= 0) { // the file shrank or failed under us: end the response
        ec = n == 0 ? boost::beast::http::error::short_read
                    : boost::beast::error_code{errno, boost::system::system_category()};
        return boost::none;
      }
      pos_ += static_cast<uint64_t>(n);
      remain_ -= static_cast<uint64_t>(n);
      ec = {};
      return {{const_buffers_type{buf_.data(), static_cast<std::size_t>(n)}, remain_ > 0}};
    }

  private:
    const value_type& body_;
    uint64_t pos_;
    uint64_t remain_;
    std::array<char, 65536> buf_;
  };
};

} // namespace portal

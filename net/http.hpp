// Names shared by the HTTP layer (Beast on Asio).
#pragma once

#include "net/file_range_body.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <variant>

namespace portal {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using response = http::response<http::string_body>;
using file_response = http::response<file_range_body>; // downloads, streamed from disk
using any_response = std::variant<response, file_response>;

} // namespace portal

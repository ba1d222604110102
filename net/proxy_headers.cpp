#include "net/proxy_headers.hpp"

#include <boost/algorithm/string/trim.hpp>
#include <boost/asio/ip/address.hpp>

#include <cctype>

namespace portal {

namespace {

std::optional<std::string> ip_of(std::string_view text) {
  auto trimmed = boost::algorithm::trim_copy(std::string{text});
  boost::system::error_code ec;
  auto address = net::ip::make_address(trimmed, ec);
  if (ec)
    return std::nullopt;
  return address.to_string();
}

} // namespace

std::string client_address(const http::request_header<>& head, const std::string& peer,
                           bool trust_proxy) {
  if (!trust_proxy)
    return peer;
  if (auto fly = head.find("Fly-Client-IP"); fly != head.end())
    if (auto ip = ip_of(fly->value()))
      return *ip;
  if (auto xff = head.find("X-Forwarded-For"); xff != head.end()) {
    auto chain = xff->value();
    auto comma = chain.rfind(',');
    auto last = comma == std::string_view::npos ? chain : chain.substr(comma + 1);
    if (auto ip = ip_of(last))
      return *ip;
  }
  return peer;
}

std::optional<std::string> https_redirect(const http::request_header<>& head, std::string_view path,
                                          bool production, bool trust_proxy) {
  if (!production || !trust_proxy || path == "/health")
    return std::nullopt;
  auto proto = head.find("X-Forwarded-Proto");
  if (proto == head.end() || !beast::iequals(proto->value(), "http"))
    return std::nullopt;
  // A host name, an IPv4 or a bracketed IPv6 address, and a port: nothing
  // that could turn the Location into another URL.
  auto host = head[http::field::host];
  bool plain = !host.empty() && host.size() <= 255;
  for (char c : host)
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                      c == ':' || c == '[' || c == ']');
  if (!plain)
    return std::nullopt; // nowhere sane to send it: answer it as it is
  return "https://" + std::string{host} + std::string{head.target()};
}

std::string request_origin(const http::request_header<>& head, bool tls, bool trust_proxy) {
  auto host = head[http::field::host];
  if (host.empty())
    return {};
  std::string scheme = tls ? "https" : "http";
  if (trust_proxy)
    if (auto proto = head.find("X-Forwarded-Proto"); proto != head.end())
      scheme = beast::iequals(proto->value(), "https") ? "https" : "http";
  return scheme + "://" + std::string{host};
}

} // namespace portal

// What a trusted reverse proxy (Fly's edge, PORTAL_TRUST_PROXY) tells us
// about the client: its address and whether it spoke plain http. Without
// PORTAL_TRUST_PROXY these headers are the client's own words and ignored.
#pragma once

#include "net/http.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace portal {

// The client's address: `Fly-Client-IP`, else the last `X-Forwarded-For`
// entry (the one the proxy itself appended; those left of it are whatever
// the client sent), else the socket's peer. Values that are not IP
// addresses are ignored. Always the peer when `trust_proxy` is false.
std::string client_address(const http::request_header<>& head, const std::string& peer,
                           bool trust_proxy);

// SPEC §8: in production behind a trusted proxy, a request that reached the
// proxy over plain http (`X-Forwarded-Proto: http`) is sent to https with a
// 301, except /health (the platform's checks speak http). Returns the
// Location, or nothing when the request may proceed.
std::optional<std::string> https_redirect(const http::request_header<>& head, std::string_view path,
                                          bool production, bool trust_proxy);

// The origin this request was addressed to ("https://host:port"): the scheme
// the client spoke (X-Forwarded-Proto when the proxy is trusted, else whether
// this listener speaks TLS) and the Host header. Empty without a Host.
std::string request_origin(const http::request_header<>& head, bool tls, bool trust_proxy);

} // namespace portal

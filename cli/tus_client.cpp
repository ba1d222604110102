#include "cli/tus_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <charconv>

namespace portal::cli {

namespace {

constexpr std::string_view tus_version = "1.0.0";

std::optional<uint64_t> number(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    return std::nullopt;
  return v;
}

uint64_t required_number(const http_client::response& res, std::string_view field) {
  auto it = res.find(field);
  auto v = it == res.end() ? std::nullopt : number(it->value());
  if (!v)
    throw tus_status_error(res.result_int(), "the server answered " +
                                               std::to_string(res.result_int()) +
                                               " without a valid " + std::string(field));
  return *v;
}

// "409 offset_mismatch: <message>" from the JSON error shape, else the
// status and its reason.
tus_status_error status_error(const http_client::response& res) {
  std::string what = std::to_string(res.result_int());
  try {
    auto doc = boost::json::parse(res.body());
    const auto& err = doc.as_object().at("error").as_object();
    what += " " + std::string(err.at("code").as_string()) + ": " +
            std::string(err.at("message").as_string());
  } catch (const std::exception&) {
    what += " " + std::string(res.reason());
  }
  std::optional<std::chrono::seconds> retry_after;
  if (auto it = res.find(http::field::retry_after); it != res.end())
    if (auto s = number(it->value())) // the HTTP-date form is not honoured: backoff then
      retry_after = std::chrono::seconds(*s);
  return {res.result_int(), what, retry_after};
}

} // namespace

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string tus_checksum_sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return "sha256 " + base64(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

tus_client::tus_client(http_client& http, boost::urls::url_view base, std::string token)
  : http_(http), base_(base), token_(std::move(token)) {
  // Directory semantics for resolve(): "https://h/portal" means "/portal/".
  if (base_.path().empty() || base_.path().back() != '/')
    base_.set_path(std::string(base_.path()) + "/");
  // The tus endpoint itself, as a tus client would be given it, names the
  // same server: its base is what comes before it.
  constexpr std::string_view endpoint = "api/v1/tus/";
  std::string path{base_.path()};
  if (path.size() >= endpoint.size() + 1 &&
      path.compare(path.size() - endpoint.size(), endpoint.size(), endpoint) == 0 &&
      path[path.size() - endpoint.size() - 1] == '/')
    base_.set_path(path.substr(0, path.size() - endpoint.size()));
  base_.remove_query().remove_fragment();
}

std::string tus_client::target_of(const std::string& url) const {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed || parsed->scheme() != base_.scheme() ||
      parsed->encoded_host() != base_.encoded_host() || parsed->port() != base_.port())
    throw tus_status_error(0, "upload URL " + url + " is not on the server " +
                                std::string(base_.buffer()));
  return std::string(parsed->encoded_target());
}

http_client::response tus_client::send(http_client::request& req) {
  req.set("Tus-Resumable", tus_version);
  req.set(http::field::authorization, "Bearer " + token_);
  if (!instance_.empty() && req.method() != http::verb::post)
    req.set("fly-force-instance-id", instance_);
  return http_.send(req);
}

tus_capabilities tus_client::options() {
  boost::urls::url endpoint;
  boost::urls::resolve(base_, boost::urls::parse_relative_ref("api/v1/tus/").value(), endpoint);
  http_client::request req{http::verb::options, endpoint.encoded_target(), 11};
  auto res = http_.send(req); // OPTIONS needs no credentials (tus core)
  if (res.result_int() != 200 && res.result_int() != 204)
    throw status_error(res);
  tus_capabilities caps;
  if (auto it = res.find("Tus-Checksum-Algorithm"); it != res.end()) {
    std::string_view list = it->value();
    for (std::size_t at = 0; at <= list.size();) {
      auto comma = std::min(list.find(',', at), list.size());
      auto word = list.substr(at, comma - at);
      while (!word.empty() && word.front() == ' ')
        word.remove_prefix(1);
      while (!word.empty() && word.back() == ' ')
        word.remove_suffix(1);
      if (word == "sha256")
        caps.sha256 = true;
      at = comma + 1;
    }
  }
  if (auto it = res.find("Tus-Max-Size"); it != res.end())
    caps.max_size = number(it->value());
  return caps;
}

tus_client::created tus_client::create(uint64_t length, const std::string& filename) {
  boost::urls::url endpoint;
  boost::urls::resolve(base_, boost::urls::parse_relative_ref("api/v1/tus/").value(), endpoint);
  http_client::request req{http::verb::post, endpoint.encoded_target(), 11};
  req.set("Upload-Length", std::to_string(length));
  req.set("Upload-Metadata", "filename " + base64(filename));
  auto res = send(req);
  if (res.result_int() != 201)
    throw status_error(res);
  auto location = res.find(http::field::location);
  auto ref = location == res.end() ? boost::urls::result<boost::urls::url_view>{}
                                   : boost::urls::parse_uri_reference(location->value());
  if (location == res.end() || !ref)
    throw tus_status_error(201, "the server created an upload without a valid Location");
  boost::urls::url resolved;
  boost::urls::resolve(endpoint, *ref, resolved);
  created made{std::string(resolved.buffer()), {}};
  target_of(made.upload_url);
  if (auto it = res.find("Portal-Instance"); it != res.end())
    made.instance = std::string(it->value());
  return made;
}

std::optional<tus_offset> tus_client::head(const std::string& upload_url) {
  http_client::request req{http::verb::head, target_of(upload_url), 11};
  auto res = send(req);
  if (res.result_int() == 404 || res.result_int() == 410)
    return std::nullopt;
  if (res.result_int() != 200)
    throw status_error(res);
  return tus_offset{required_number(res, "Upload-Offset"), required_number(res, "Upload-Length")};
}

uint64_t tus_client::patch(const std::string& upload_url, uint64_t offset, std::string data,
                           bool checksum) {
  http_client::request req{http::verb::patch, target_of(upload_url), 11};
  req.set(http::field::content_type, "application/offset+octet-stream");
  req.set("Upload-Offset", std::to_string(offset));
  if (checksum)
    req.set("Upload-Checksum", tus_checksum_sha256(data));
  req.body() = std::move(data);
  auto res = send(req);
  if (res.result_int() != 204)
    throw status_error(res);
  return required_number(res, "Upload-Offset");
}

std::string tus_client::upload_object(std::string_view id) {
  boost::urls::url url;
  boost::urls::resolve(base_, boost::urls::parse_relative_ref("api/v1/uploads").value(), url);
  url.segments().push_back(id); // percent-encodes what the id would need
  http_client::request req{http::verb::get, url.encoded_target(), 11};
  req.set(http::field::accept, "application/json");
  req.set(http::field::authorization, "Bearer " + token_); // not a tus request
  auto res = http_.send(req);
  if (res.result_int() != 200)
    throw status_error(res);
  return res.body();
}

std::string tus_client::id_of(const std::string& upload_url) {
  auto parsed = boost::urls::parse_uri(upload_url);
  if (!parsed || parsed->segments().empty())
    return {};
  return parsed->segments().back();
}

} // namespace portal::cli

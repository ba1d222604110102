#include "net/static_assets.hpp"

#include "config/crypto.hpp"
#include "net/responses.hpp"

#include <map>
#include <stdexcept>

namespace portal {

namespace {

constexpr std::string_view static_prefix = "static/";

struct served_file {
  std::string_view content;
  std::string content_type;
  std::string etag;
};

struct static_index {
  std::map<std::string, served_file, std::less<>> by_hashed_name; // what /static/ serves
  std::map<std::string, std::string, std::less<>> url_of;         // "static/x.js" -> its URL
};

std::string content_type_of(std::string_view name) {
  auto ends_with = [name](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (ends_with(".css"))
    return "text/css; charset=utf-8";
  if (ends_with(".js"))
    return "text/javascript; charset=utf-8";
  if (ends_with(".svg"))
    return "image/svg+xml";
  if (ends_with(".png"))
    return "image/png";
  if (ends_with(".ico"))
    return "image/x-icon";
  return "application/octet-stream";
}

// Built once: the files under static/ by hashed name, with type and digest.
const static_index& static_files() {
  static const auto index = [] {
    static_index ix;
    for (const auto& f : embedded_asset_files()) {
      if (f.name.substr(0, static_prefix.size()) != static_prefix)
        continue;
      auto digest = crypto::sha256_hex(f.content);
      auto name = hashed_name(f.name.substr(static_prefix.size()), f.content);
      ix.url_of.emplace(std::string{f.name}, "/static/" + name);
      ix.by_hashed_name.emplace(
        std::move(name), served_file{f.content, content_type_of(f.name), "\"" + digest + "\""});
    }
    return ix;
  }();
  return index;
}

} // namespace

std::string_view embedded_asset(std::string_view name) {
  for (const auto& f : embedded_asset_files())
    if (f.name == name)
      return f.content;
  throw std::out_of_range("no embedded asset " + std::string{name});
}

std::string hashed_name(std::string_view name, std::string_view content) {
  auto hash = crypto::sha256_hex(content).substr(0, 12);
  auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0)
    return std::string{name} + "." + hash;
  return std::string{name.substr(0, dot)} + "." + hash + std::string{name.substr(dot)};
}

const std::string& asset_url(std::string_view name) {
  const auto& urls = static_files().url_of;
  auto it = urls.find(name);
  if (it == urls.end())
    throw std::out_of_range("no static file " + std::string{name});
  return it->second;
}

void handlers::static_file(const services&, exchange_ptr ex) {
  const auto& files = static_files().by_hashed_name;
  auto it = files.find(ex->params.at(0));
  if (it == files.end())
    return ex->reply(error_response({error_code::not_found, "no such file"}));
  const auto& file = it->second;
  // The name changes with the content: a browser never needs to ask again.
  constexpr auto forever = "public, max-age=31536000, immutable";
  if (ex->head[http::field::if_none_match] == file.etag) {
    response res{http::status::not_modified, 11};
    res.set(http::field::etag, file.etag);
    res.set(http::field::cache_control, forever);
    return ex->reply(std::move(res));
  }
  response res{http::status::ok, 11};
  res.set(http::field::content_type, file.content_type);
  res.set(http::field::etag, file.etag);
  res.set(http::field::cache_control, forever);
  res.body() = std::string{file.content};
  res.prepare_payload();
  ex->reply(std::move(res));
}

} // namespace portal

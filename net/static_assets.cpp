#include "net/static_assets.hpp"

#include "config/crypto.hpp"
#include "net/responses.hpp"

#include <map>
#include <stdexcept>

namespace portal {

namespace {

struct served_file {
  std::string_view content;
  std::string content_type;
  std::string etag;
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

// Built once: names under static/ with their type and digest.
const std::map<std::string_view, served_file, std::less<>>& static_files() {
  static const auto files = [] {
    std::map<std::string_view, served_file, std::less<>> m;
    constexpr std::string_view prefix = "static/";
    for (const auto& f : embedded_asset_files())
      if (f.name.substr(0, prefix.size()) == prefix)
        m.emplace(f.name.substr(prefix.size()),
                  served_file{f.content, content_type_of(f.name),
                              "\"" + crypto::sha256_hex(f.content) + "\""});
    return m;
  }();
  return files;
}

} // namespace

std::string_view embedded_asset(std::string_view name) {
  for (const auto& f : embedded_asset_files())
    if (f.name == name)
      return f.content;
  throw std::out_of_range("no embedded asset " + std::string{name});
}

void handlers::static_file(const services&, exchange_ptr ex) {
  const auto& files = static_files();
  auto it = files.find(ex->params.at(0));
  if (it == files.end())
    return ex->reply(error_response({error_code::not_found, "no such file"}));
  const auto& file = it->second;
  if (ex->head[http::field::if_none_match] == file.etag) {
    response res{http::status::not_modified, 11};
    res.set(http::field::etag, file.etag);
    return ex->reply(std::move(res));
  }
  response res{http::status::ok, 11};
  res.set(http::field::content_type, file.content_type);
  res.set(http::field::etag, file.etag);
  // Revalidated on every use: the files change with the binary, and the
  // ETag makes the check cheap.
  res.set(http::field::cache_control, "no-cache");
  res.body() = std::string{file.content};
  res.prepare_payload();
  ex->reply(std::move(res));
}

} // namespace portal

#include "storage/archive_format.hpp"

#include <algorithm>

namespace portal::storage {

namespace {

// Without the locale: only ASCII letters fold.
bool iequals_ascii(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

bool has_suffix(std::string_view name, std::string_view suffix) {
  return name.size() > suffix.size() &&
         iequals_ascii(name.substr(name.size() - suffix.size()), suffix);
}

} // namespace

const char* to_string(archive_format f) {
  return f == archive_format::tar_gz ? "tar.gz" : "tar.zst";
}

std::optional<archive_format> format_from_string(std::string_view s) {
  for (auto f : {archive_format::tar_gz, archive_format::tar_zst})
    if (s == to_string(f))
      return f;
  return std::nullopt;
}

std::optional<archive_format> format_of_filename(std::string_view name) {
  if (has_suffix(name, ".tar.gz") || has_suffix(name, ".tgz"))
    return archive_format::tar_gz;
  if (has_suffix(name, ".tar.zst"))
    return archive_format::tar_zst;
  return std::nullopt;
}

const char* compression_name(archive_format f) {
  return f == archive_format::tar_gz ? "gzip" : "zstd";
}

const char* media_type(archive_format f) {
  return f == archive_format::tar_gz ? "application/gzip" : "application/zstd";
}

} // namespace portal::storage

#include "config/upload_id.hpp"

#include "config/crypto.hpp"

#include <algorithm>

namespace portal {

namespace {

constexpr std::size_t max_chars = 64;
constexpr std::size_t new_id_chars = 22;

} // namespace

bool valid_upload_id(std::string_view id) {
  if (id.empty() || id.size() > max_chars)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string new_upload_id() {
  return crypto::random_url_safe(new_id_chars);
}

} // namespace portal

#include "net/error_table.hpp"

#include <array>
#include <cstddef>
#include <string>

namespace portal {

namespace {

using s = http::status;
using c = error_code;

// One row per code, in the enum's order (checked below, so a lookup is an
// index). 499 is nginx's "client closed request": only logs and metrics see it.
constexpr std::array table{
  http_error{c::none, s::internal_server_error}, // answering "no error" as an error is a bug
  http_error{c::bad_request, s::bad_request},
  http_error{c::invalid_filename, s::bad_request},
  http_error{c::invalid_limit, s::bad_request},
  http_error{c::invalid_cursor, s::bad_request},
  http_error{c::unauthorized, s::unauthorized},
  http_error{c::forbidden, s::forbidden},
  http_error{c::csrf_token_missing, s::forbidden},
  http_error{c::not_found, s::not_found},
  http_error{c::method_not_allowed, s::method_not_allowed},
  http_error{c::not_implemented, s::not_implemented},
  http_error{c::request_timeout, s::request_timeout, 0, true},
  http_error{c::unsupervised, s::conflict},
  http_error{c::payload_too_large, s::payload_too_large, 0, true},
  http_error{c::quota_exceeded, s::payload_too_large},
  http_error{c::unsupported_media_type, s::unsupported_media_type},
  http_error{c::range_not_satisfiable, s::range_not_satisfiable},
  http_error{c::request_header_fields_too_large, s::request_header_fields_too_large, 0, true},
  http_error{c::too_many_requests, s::too_many_requests, 5},
  http_error{c::too_many_uploads, s::too_many_requests, 5},
  http_error{c::invalid_archive, s::unprocessable_entity},
  http_error{c::unsafe_entry, s::unprocessable_entity},
  http_error{c::archive_bomb, s::unprocessable_entity},
  http_error{c::tus_version_unsupported, s::precondition_failed},
  http_error{c::offset_mismatch, s::conflict},
  http_error{c::wrong_instance, s::conflict},
  http_error{c::checksum_mismatch, static_cast<s>(460)}, // tus checksum extension
  http_error{c::gone, s::gone},
  http_error{c::locked, s::locked},
  http_error{c::internal, s::internal_server_error},
  http_error{c::unavailable, s::service_unavailable, 5},
  http_error{c::storage_unavailable, s::service_unavailable, 5},
  http_error{c::insufficient_storage, s::insufficient_storage},
  http_error{c::client_closed, static_cast<s>(499)},
};

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < table.size(); ++i)
    if (static_cast<std::size_t>(table[i].code) != i)
      return false;
  return true;
}
static_assert(in_enum_order(), "one row per error_code, in the enum's order");

} // namespace

const http_error& http_error_of(error_code code) {
  auto i = static_cast<std::size_t>(code);
  return i < table.size() ? table[i] : table[static_cast<std::size_t>(c::internal)];
}

void set_error_head(response& res, error_code code, std::optional<unsigned> retry_after_seconds) {
  auto& row = http_error_of(code);
  res.result(row.status);
  if (auto wait = retry_after_seconds.value_or(row.retry_after))
    res.set(http::field::retry_after, std::to_string(wait));
  if (row.close)
    res.keep_alive(false);
}

} // namespace portal

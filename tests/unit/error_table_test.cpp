// The one error vocabulary (config/error_code.hpp) and its one HTTP table
// (net/error_table): every code has a snake_case name of its own and a row,
// the statuses are the contract's (SPEC §5.2, §5.3, §11), and the one body
// writer gives every error the same shape.
#include "config/error_code.hpp"
#include "net/error_table.hpp"
#include "net/responses.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

using portal::error_code;

namespace {

// The enum's values run from 0 without gaps; to_string() answers "internal"
// for a value that is no code. So the codes are the values whose names are
// new, up to the first that is not.
std::vector<error_code> all_codes() {
  std::vector<error_code> out;
  std::set<std::string_view> names;
  for (unsigned v = 0; v <= 255; ++v) {
    auto c = static_cast<error_code>(v);
    if (!names.insert(to_string(c)).second)
      break;
    out.push_back(c);
  }
  return out;
}

bool snake_case(std::string_view s) {
  if (s.empty() || s.front() == '_' || s.back() == '_')
    return false;
  for (char ch : s)
    if (!((ch >= 'a' && ch <= 'z') || ch == '_'))
      return false;
  return true;
}

unsigned status_of(error_code c) {
  return static_cast<unsigned>(portal::http_error_of(c).status);
}

} // namespace

TEST_CASE("every error code has a name of its own and a row in the HTTP table", "[errors]") {
  auto codes = all_codes();
  REQUIRE(codes.size() > 30);
  CHECK(codes.front() == error_code::none);
  CHECK(codes.back() == error_code::client_closed);
  // Nothing hides beyond the last code: every later value is no code.
  for (auto v = codes.size(); v <= 255; ++v)
    CHECK(to_string(static_cast<error_code>(v)) == "internal");

  for (auto c : codes) {
    INFO("code " << static_cast<unsigned>(c) << " " << to_string(c));
    CHECK(snake_case(to_string(c)));
    // A code past the end of the table would get internal's row.
    CHECK(portal::http_error_of(c).code == c);
    if (c != error_code::none) {
      CHECK(status_of(c) >= 400);
      CHECK(status_of(c) < 600);
    }
  }
}

TEST_CASE("the statuses and headers are the contract's", "[errors]") {
  struct row {
    error_code code;
    unsigned status;
    unsigned retry_after;
    bool close;
  };
  const std::vector<row> contract{
    {error_code::invalid_filename, 400, 0, false},
    {error_code::unauthorized, 401, 0, false},
    {error_code::csrf_token_missing, 403, 0, false},
    {error_code::not_found, 404, 0, false},
    {error_code::method_not_allowed, 405, 0, false},
    {error_code::request_timeout, 408, 0, true},
    {error_code::unsupervised, 409, 0, false},
    {error_code::payload_too_large, 413, 0, true}, // SPEC §5.3: connection closed
    {error_code::quota_exceeded, 413, 0, false},
    {error_code::unsupported_media_type, 415, 0, false},
    {error_code::range_not_satisfiable, 416, 0, false},
    {error_code::invalid_archive, 422, 0, false},
    {error_code::unsafe_entry, 422, 0, false},
    {error_code::archive_bomb, 422, 0, false},
    {error_code::too_many_uploads, 429, 5, false},
    {error_code::request_header_fields_too_large, 431, 0, true},
    {error_code::client_closed, 499, 0, false},
    {error_code::internal, 500, 0, false},
    {error_code::not_implemented, 501, 0, false},
    {error_code::unavailable, 503, 5, false},
    {error_code::storage_unavailable, 503, 5, false},
    {error_code::insufficient_storage, 507, 0, false},
    // tus 1.0.0 (SPEC §5.2)
    {error_code::tus_version_unsupported, 412, 0, false},
    {error_code::offset_mismatch, 409, 0, false},
    {error_code::wrong_instance, 409, 0, false},
    {error_code::checksum_mismatch, 460, 0, false},
    {error_code::gone, 410, 0, false},
    {error_code::locked, 423, 0, false},
  };
  for (auto& want : contract) {
    INFO(to_string(want.code));
    auto& got = portal::http_error_of(want.code);
    CHECK(static_cast<unsigned>(got.status) == want.status);
    CHECK(got.retry_after == want.retry_after);
    CHECK(got.close == want.close);
  }
}

TEST_CASE("error_response writes the one error shape with the table's head", "[errors]") {
  auto res = portal::error_response({error_code::unsafe_entry, "../etc/passwd escapes the root"});
  CHECK(res.result_int() == 422);
  CHECK(res[portal::http::field::content_type] == "application/json");
  CHECK(res[portal::http::field::cache_control] == "no-store");
  CHECK(res.keep_alive());
  auto body = boost::json::parse(res.body());
  CHECK(body ==
        boost::json::parse(
          R"({"error":{"code":"unsafe_entry","message":"../etc/passwd escapes the root"}})"));

  SECTION("Retry-After from the table, or the caller's") {
    auto table = portal::error_response({error_code::unavailable, "away"});
    CHECK(table.result_int() == 503);
    CHECK(table[portal::http::field::retry_after] == "5");
    auto own = portal::error_response({error_code::too_many_uploads, "wait"}, 17);
    CHECK(own.result_int() == 429);
    CHECK(own[portal::http::field::retry_after] == "17");
    auto none = portal::error_response({error_code::invalid_archive, "bad"});
    CHECK(none.find(portal::http::field::retry_after) == none.end());
  }
  SECTION("payload_too_large closes the connection") {
    auto res413 = portal::error_response({error_code::payload_too_large, "too big"});
    CHECK(res413.result_int() == 413);
    CHECK_FALSE(res413.keep_alive());
  }
}

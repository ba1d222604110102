// GET /api/v1/uploads/{id}/content (SPEC §6, §11): the stored archive,
// streamed from disk, with a strong ETag (the SHA-256), If-None-Match -> 304,
// one byte range -> 206, an unsatisfiable range -> 416; an archive not in
// this data directory -> 503 storage_unavailable.
#include "actors/archive_reader.hpp"
#include "actors/db_request.hpp"
#include "actors/messages.hpp"
#include "config/log.hpp"
#include "db/uploads.hpp"
#include "net/db_answer.hpp"
#include "net/handlers.hpp"
#include "net/responses.hpp"
#include "storage/archive_format.hpp"
#include "storage/data_dir.hpp"

#include <boost/json.hpp>
#include <caf/all.hpp>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <unistd.h>
#include <utility>

namespace portal::handlers {

namespace {

// The row's format was written from storage::to_string() at the upload.
storage::archive_format format_of(const db::upload_row& row) {
  return storage::format_from_string(row.format).value_or(storage::archive_format::tar_gz);
}

struct byte_range {
  uint64_t first = 0;
  uint64_t length = 0;
};

bool parse_u64(std::string_view s, uint64_t& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && end == s.data() + s.size();
}

// One "bytes=" range of RFC 9110 §14.1.2. nullopt: serve the whole file
// (no Range, one we do not understand, or several ranges); a zero-length
// result means unsatisfiable.
std::optional<byte_range> parse_range(std::string_view header, uint64_t size) {
  constexpr std::string_view unit = "bytes=";
  if (header.substr(0, unit.size()) != unit)
    return std::nullopt;
  auto spec = header.substr(unit.size());
  auto dash = spec.find('-');
  if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos)
    return std::nullopt;
  auto a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (a.empty()) { // suffix: the last N bytes
    if (!parse_u64(b, last))
      return std::nullopt;
    if (last == 0 || size == 0)
      return byte_range{0, 0};
    auto n = std::min(last, size);
    return byte_range{size - n, n};
  }
  if (!parse_u64(a, first) || (!b.empty() && !parse_u64(b, last)))
    return std::nullopt;
  if (!b.empty() && last < first)
    return std::nullopt;
  if (first >= size)
    return byte_range{0, 0};
  auto end = b.empty() ? size - 1 : std::min(last, size - 1);
  return byte_range{first, end - first + 1};
}

bool etag_matches(std::string_view if_none_match, const std::string& etag) {
  if (if_none_match == "*")
    return true;
  // A list of tags; weak comparison (W/ prefix ignored), as RFC 9110 asks.
  std::size_t pos = 0;
  while (pos < if_none_match.size()) {
    auto comma = if_none_match.find(',', pos);
    auto item = if_none_match.substr(pos, comma == std::string_view::npos ? std::string_view::npos
                                                                          : comma - pos);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item.substr(0, 2) == "W/")
      item.remove_prefix(2);
    if (item == etag)
      return true;
    if (comma == std::string_view::npos)
      break;
    pos = comma + 1;
  }
  return false;
}

// Why an archive whose row exists cannot be opened here. Missing while the
// row records another volume, or none (another machine's, on a shared
// database, or one not mounted here; storage/volume_id.hpp): this server
// cannot serve it now and another may (SPEC §5.3: storage unavailable, 503
// with Retry-After). Missing from this very volume, or unreadable: lost or
// broken here, which no retry mends (500, logged at error).
failure unreadable_archive(int err, const db::upload_row& row, const services& svc,
                           const exchange& ex) {
  if (err == ENOENT && (row.volume_id.empty() || row.volume_id != svc.volume_id)) {
    log::warn("an upload's archive is not in this data directory",
              {{"request_id", ex.request_id}, {"upload_id", row.id}, {"volume_id", row.volume_id}});
    return {error_code::storage_unavailable,
            "the archive is not on this server's volume, retry later"};
  }
  log::error("an upload's archive cannot be read from its own volume",
             {{"request_id", ex.request_id}, {"upload_id", row.id}, {"errno", err}});
  return {error_code::internal, "the archive could not be read"};
}

// Runs on a db worker's thread (the database's answer), where opening a
// file may block; the bytes themselves are read as the socket takes them.
any_response content_answer(const services& svc, const exchange& ex, const db::upload_row& row) {
  const auto& head = ex.head;
  auto etag = "\"" + row.sha256 + "\"";
  if (etag_matches(head[http::field::if_none_match], etag)) {
    response res{http::status::not_modified, 11};
    res.set(http::field::etag, etag);
    return res;
  }
  auto path = storage::layout_of(svc.cfg.data_dir).archives / row.id;
  // O_NONBLOCK: a FIFO in its place must not block this thread in open().
  // O_NOFOLLOW: storage writes no symlink there; /entries does not follow
  // one either.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0)
    return error_response(unreadable_archive(errno, row, svc, ex));
  // Anything but a regular file (a directory, a FIFO) is unreadable here.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return error_response(unreadable_archive(EINVAL, row, svc, ex));
  }
  auto file = std::shared_ptr<int>(new int{fd}, [](int* p) {
    ::close(*p);
    delete p;
  });
  std::optional<byte_range> range;
  auto if_range = head[http::field::if_range];
  if (if_range.empty() || if_range == etag)
    range = parse_range(head[http::field::range], row.size);
  if (range && range->length == 0) {
    auto res = error_response(
      {error_code::range_not_satisfiable, "the requested range is outside the archive"});
    res.set(http::field::content_range, "bytes */" + std::to_string(row.size));
    return res;
  }
  file_response res{range ? http::status::partial_content : http::status::ok, 11};
  res.set(http::field::content_type, storage::media_type(format_of(row)));
  res.set(http::field::content_disposition, "attachment; filename=\"" + row.filename + "\"");
  res.set(http::field::etag, etag);
  res.set(http::field::accept_ranges, "bytes");
  res.set(http::field::cache_control, "private, no-cache");
  if (range)
    res.set(http::field::content_range, "bytes " + std::to_string(range->first) + "-" +
                                          std::to_string(range->first + range->length - 1) + "/" +
                                          std::to_string(row.size));
  res.body() =
    file_range_body::value_type{file, range ? range->first : 0, range ? range->length : row.size};
  res.prepare_payload();
  return res;
}

} // namespace

void get_content(const services& svc, exchange_ptr ex) {
  with_upload(svc, ex, [&svc, ex](const db::upload_row& row) {
    std::visit([&](auto&& res) { ex->reply(std::forward<decltype(res)>(res)); },
               content_answer(svc, *ex, row));
  });
}

// GET /api/v1/uploads/{id}/entries: the members, read from the stored
// archive by an archive_reader (a blocking read of the whole file).
void get_entries(const services& svc, exchange_ptr ex) {
  with_upload(svc, ex, [&svc, ex](const db::upload_row& row) {
    auto path = storage::layout_of(svc.cfg.data_dir).archives / row.id;
    // The reader would block on a FIFO: only a regular file goes to it.
    struct stat st {};
    int err = ::lstat(path.c_str(), &st) != 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
    if (err != 0)
      return ex->reply(error_response(unreadable_archive(err, row, svc, *ex)));
    static std::atomic<unsigned> next{0};
    auto reader =
      svc.directory->find<archive_reader_actor>("archive_reader_" + std::to_string(next++ % 2 + 1));
    if (!reader)
      return ex->reply(
        error_response({error_code::unavailable, "storage is unavailable, retry later"}));
    entries_job job{
      path, format_of(row), [ex](std::optional<std::vector<storage::archive_entry_info>> entries) {
        if (!entries)
          return ex->reply(error_response({error_code::internal, "the archive could not be read"}));
        boost::json::array list;
        for (auto& e : *entries)
          list.push_back({{"path", e.path}, {"type", e.type}, {"size", e.size}});
        ex->reply(json_response(http::status::ok, {{"entries", std::move(list)}}));
      }};
    caf::anon_send(reader, list_atom::value, std::move(job));
  });
}

} // namespace portal::handlers

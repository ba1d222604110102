// SPEC §5.1 and §6: the plain streaming upload and the uploads API.
#include "actors/db_request.hpp"
#include "actors/messages.hpp"
#include "actors/storage_writer.hpp"
#include "actors/upload_session.hpp"
#include "db/credentials.hpp"
#include "db/quota.hpp"
#include "db/uploads.hpp"
#include "net/db_answer.hpp"
#include "net/handlers.hpp"
#include "net/metrics.hpp"
#include "net/responses.hpp"
#include "storage/data_dir.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <caf/all.hpp>

#include <charconv>

namespace portal::handlers {

namespace {

// SPEC §5.3: a plain name of [A-Za-z0-9._-], at most 255, no leading dot,
// ending in .tar.gz, .tgz or .tar.zst (suffix case-insensitive).
std::optional<storage::archive_format> format_of(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.front() == '.')
    return std::nullopt;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-')
      return std::nullopt;
  auto ends_with = [&](std::string_view suffix) {
    return name.size() > suffix.size() &&
           beast::iequals(std::string_view{name}.substr(name.size() - suffix.size()), suffix);
  };
  if (ends_with(".tar.gz") || ends_with(".tgz"))
    return storage::archive_format::tar_gz;
  if (ends_with(".tar.zst"))
    return storage::archive_format::tar_zst;
  return std::nullopt;
}

std::optional<uint64_t> content_length(const http::request_header<>& head) {
  auto v = head[http::field::content_length];
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || end != v.data() + v.size())
    return std::nullopt;
  return n;
}

response not_found() {
  return error_response(http::status::not_found, "not_found", "no such upload");
}

} // namespace

namespace {

response quota_exceeded() {
  return error_response(http::status::payload_too_large, "quota_exceeded",
                        "the upload would exceed your storage quota");
}

// The checks that need no database, then the upload actor.
void start_upload(const services& svc, const exchange_ptr& ex, storage::archive_format format,
                  uint64_t quota, std::optional<uint64_t> quota_left) {
  auto& cfg = svc.cfg;
  // A body that cannot fit is refused before the client sends it. (Only a
  // first check: uploads in flight share the space, and a write that meets
  // a full disk is refused 507 mid-stream.)
  if (auto length = content_length(ex->head); length && *length > storage::free_bytes(cfg.data_dir))
    return ex->reply(error_response(http::status::insufficient_storage, "insufficient_storage",
                                    "the server has no room for this upload"));
  auto admitted = svc.admission->admit(ex->user->user_id);
  if (auto* refusal = std::get_if<admission_refusal>(&admitted)) {
    auto res =
      error_response(http::status::too_many_requests, "too_many_uploads", refusal->message);
    res.set(http::field::retry_after, std::to_string(refusal->retry_after_seconds));
    return ex->reply(std::move(res));
  }
  auto ticket = std::get<upload_admission::ticket_ptr>(std::move(admitted));
  upload_request req{
    db::random_url_safe(22), ex->params.at(0),        format, *ex->user, ex->client_ip,
    ex->request_id,          content_length(ex->head)};
  upload_limits limits;
  limits.max_bytes = cfg.max_upload_bytes;
  limits.archive.max_uncompressed = cfg.max_upload_bytes * 32;
  limits.db_deadline = cfg.db_deadline;
  limits.retention_days = cfg.retention_days;
  limits.storage_writers = cfg.storage_writers;
  limits.quota = quota;
  limits.quota_left = quota_left;
  ex->hand_over([&svc, limits, req, ticket](upload_link_ptr link) {
    return spawn_upload_session(svc.sys, svc.directory, limits, req, ticket, std::move(link));
  });
}

} // namespace

void put_upload(const services& svc, exchange_ptr ex) {
  auto format = format_of(ex->params.at(0));
  if (!format)
    return ex->reply(error_response(
      http::status::bad_request, "invalid_filename",
      "the filename must be a plain name of [A-Za-z0-9._-] ending in .tar.gz, .tgz or .tar.zst"));
  auto& cfg = svc.cfg;
  if (auto length = content_length(ex->head); length && *length > cfg.max_upload_bytes)
    return ex->reply(error_response(http::status::payload_too_large, "payload_too_large",
                                    "the upload exceeds the size limit of " +
                                      std::to_string(cfg.max_upload_bytes) + " bytes"));
  auto quota = db::effective_quota(*ex->user, cfg.user_quota_bytes);
  if (quota == 0)
    return start_upload(svc, ex, *format, 0, std::nullopt);
  // With a quota, what the user already stores decides how much more may come.
  auto user_id = ex->user->user_id;
  auto query = [user_id](pqxx::work& tx) { return db::stored_bytes(tx, user_id); };
  with_db<uint64_t>(svc, ex, "stored bytes", query,
                    [&svc, ex, format = *format, quota](uint64_t stored) {
                      uint64_t left = stored >= quota ? 0 : quota - stored;
                      auto length = content_length(ex->head);
                      if (left == 0 || (length && *length > left))
                        return ex->reply(quota_exceeded());
                      start_upload(svc, ex, format, quota, left);
                    });
}

void list_uploads(const services& svc, exchange_ptr ex) {
  unsigned limit = 50;
  std::optional<std::string> cursor;
  auto url = boost::urls::parse_origin_form(ex->head.target());
  for (auto param : url->params()) {
    if (param.key == "limit") {
      auto& v = param.value;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
      if (ec != std::errc{} || end != v.data() + v.size() || limit < 1 || limit > 200)
        return ex->reply(error_response(http::status::bad_request, "invalid_limit",
                                        "limit must be an integer from 1 to 200"));
    } else if (param.key == "cursor") {
      cursor = param.value;
    }
  }
  using page = std::optional<db::upload_page>; // nullopt: the cursor is not ours
  auto viewer = *ex->user;
  with_db<page>(
    svc, ex, "list uploads",
    [viewer, limit, cursor](pqxx::work& tx) -> page {
      try {
        return db::list_uploads(tx, viewer, limit, cursor);
      } catch (const db::invalid_cursor&) {
        return std::nullopt;
      }
    },
    [ex](const page& p) {
      if (!p)
        return ex->reply(
          error_response(http::status::bad_request, "invalid_cursor", "invalid cursor"));
      boost::json::array uploads;
      for (auto& row : p->uploads)
        uploads.push_back(db::to_json(row));
      boost::json::object body{{"uploads", std::move(uploads)}};
      if (p->next_cursor)
        body["next_cursor"] = *p->next_cursor;
      else
        body["next_cursor"] = nullptr;
      ex->reply(json_response(http::status::ok, body));
    });
}

void get_upload(const services& svc, exchange_ptr ex) {
  with_upload(svc, ex, "get upload", [ex](const db::upload_row& row) {
    ex->reply(json_response(http::status::ok, db::to_json(row)));
  });
}

void delete_upload(const services& svc, exchange_ptr ex) {
  auto id = ex->params.at(0);
  auto viewer = *ex->user;
  auto ip = ex->client_ip;
  auto rid = ex->request_id;
  auto writer = svc.directory->find(storage_writer_name(id, svc.cfg.storage_writers));
  with_db<bool>(
    svc, ex, "delete upload",
    [id, viewer, ip, rid](pqxx::work& tx) { return db::delete_upload(tx, id, viewer, ip, rid); },
    [ex, id, writer, stats = svc.metrics](bool deleted) {
      if (!deleted)
        return ex->reply(not_found());
      stats->upload_deleted();
      // The row is gone (committed): the file follows. Should that fail or
      // the process die first, the next start moves it to orphans/.
      caf::anon_send(writer, remove_atom::value, id);
      ex->reply(response{http::status::no_content, 11});
    });
}

} // namespace portal::handlers

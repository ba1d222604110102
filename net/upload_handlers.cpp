// SPEC §5.1 and §6: the plain streaming upload and the uploads API.
#include "actors/db_request.hpp"
#include "actors/messages.hpp"
#include "actors/storage_writer.hpp"
#include "actors/upload_session.hpp"
#include "config/log.hpp"
#include "config/upload_id.hpp"
#include "db/audit.hpp"
#include "db/quota.hpp"
#include "db/uploads.hpp"
#include "net/db_answer.hpp"
#include "net/error_table.hpp"
#include "net/handlers.hpp"
#include "net/metrics.hpp"
#include "net/responses.hpp"
#include "storage/archive_format.hpp"
#include "storage/data_dir.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <caf/all.hpp>

#include <charconv>

namespace portal::handlers {

namespace {

std::optional<uint64_t> content_length(const http::request_header<>& head) {
  auto v = head[http::field::content_length];
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || end != v.data() + v.size())
    return std::nullopt;
  return n;
}

// A refused archive (bad format, too big, over quota...) is in the audit
// trail like a completed one, with the status its client heard. Written on
// the side: the client's answer does not wait for it, and a database that
// is away loses only this row. Failures of the server (5xx) and clients
// that went away (499) are not refusals.
std::function<void(const failure&, uint64_t)> audit_refusal(const services& svc,
                                                            const upload_request& req) {
  db::audit_actor who{req.owner.user_id, req.owner.username, req.ip, req.request_id};
  return [dir = svc.directory, deadline = svc.cfg.db_deadline, who, id = req.id,
          filename = req.filename](const failure& f, uint64_t bytes) {
    auto status = static_cast<unsigned>(http_error_of(f.code).status);
    if (status < 400 || status >= 499)
      return;
    boost::json::object detail{{"upload_id", id},
                               {"filename", filename},
                               {"status", status},
                               {"code", to_string(f.code)},
                               {"bytes", bytes}};
    auto query = [who, detail](pqxx::work& tx) {
      db::record_audit(tx, who, "upload.rejected", detail);
      return true;
    };
    // Nobody waits: the audit row is written however late. One that never
    // is (the database away, the process exiting first) says so in the log.
    auto not_written = [id, rid = who.request_id.value_or("")](const db_outcome<bool>& outcome) {
      if (auto* failed = std::get_if<db_failure>(&outcome))
        log::warn("audit row not written", {{"event", "upload.rejected"},
                                            {"upload_id", id},
                                            {"request_id", rid},
                                            {"why", to_string(*failed)}});
    };
    auto req = make_db_request<bool>(std::string{db::sql::insert_audit_event.name},
                                     std::chrono::steady_clock::now() + deadline, std::move(query),
                                     std::move(not_written));
    req->commit_however_late();
    submit(*dir, std::move(req));
  };
}

// The checks that need no database, then the upload actor.
void start_upload(const services& svc, const exchange_ptr& ex, storage::archive_format format,
                  uint64_t quota, std::optional<uint64_t> quota_left) {
  auto& cfg = svc.cfg;
  // A body that cannot fit is refused before the client sends it. (Only a
  // first check: uploads in flight share the space, and a write that meets
  // a full disk is refused 507 mid-stream.)
  if (auto length = content_length(ex->head); length && *length > storage::free_bytes(cfg.data_dir))
    return ex->reply(
      error_response({error_code::insufficient_storage, "the server has no room for this upload"}));
  auto admitted = svc.admission->admit(ex->user->user_id);
  if (auto* refusal = std::get_if<admission_refusal>(&admitted))
    return ex->reply(error_response({error_code::too_many_uploads, refusal->message},
                                    refusal->retry_after_seconds));
  auto ticket = std::get<upload_admission::ticket_ptr>(std::move(admitted));
  upload_request req{new_upload_id(), ex->params.at(0),         format, *ex->user, ex->client_ip,
                     ex->request_id,  content_length(ex->head), {}};
  req.failed = audit_refusal(svc, req);
  upload_limits limits;
  limits.max_bytes = cfg.max_upload_bytes;
  limits.archive = archive_limits_of(cfg);
  limits.db_deadline = cfg.db_deadline;
  limits.retention_days = cfg.retention_days;
  limits.storage_writers = cfg.storage_writers;
  limits.quota = quota;
  limits.quota_left = quota_left;
  limits.volume_id = svc.volume_id;
  ex->hand_over([&svc, limits, req, ticket](upload_link_ptr link) {
    return spawn_upload_session(svc.sys, svc.directory, limits, req, ticket, std::move(link));
  });
}

} // namespace

storage::archive_limits archive_limits_of(const config& cfg) {
  storage::archive_limits l;
  l.max_uncompressed = cfg.max_upload_bytes * 32;
  l.inflater = cfg.gzip_inflater == gzip_inflater_choice::isal ? storage::gzip_inflater::isal
                                                               : storage::gzip_inflater::zlib;
  return l;
}

std::optional<storage::archive_format> archive_name_format(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.front() == '.')
    return std::nullopt;
  // Not isalnum(): it follows the locale, and the rule is ASCII.
  for (char c : name)
    if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '.' &&
        c != '_' && c != '-')
      return std::nullopt;
  return storage::format_of_filename(name);
}

void put_upload(const services& svc, exchange_ptr ex) {
  auto format = archive_name_format(ex->params.at(0));
  if (!format)
    return ex->reply(error_response(
      {error_code::invalid_filename,
       "the filename must be a plain name of [A-Za-z0-9._-] ending in .tar.gz, .tgz or .tar.zst"}));
  auto& cfg = svc.cfg;
  if (auto length = content_length(ex->head); length && *length > cfg.max_upload_bytes)
    return ex->reply(error_response(
      {error_code::payload_too_large,
       "the upload exceeds the size limit of " + std::to_string(cfg.max_upload_bytes) + " bytes"}));
  auto quota = db::effective_quota(*ex->user, cfg.user_quota_bytes);
  if (quota == 0)
    return start_upload(svc, ex, *format, 0, std::nullopt);
  // With a quota, what the user already stores decides how much more may come.
  auto user_id = ex->user->user_id;
  auto query = [user_id](pqxx::work& tx) { return db::stored_bytes(tx, user_id); };
  with_db<uint64_t>(svc, ex, db::sql::stored_bytes, query,
                    [&svc, ex, format = *format, quota](uint64_t stored) {
                      uint64_t left = stored >= quota ? 0 : quota - stored;
                      auto length = content_length(ex->head);
                      if (left == 0 || (length && *length > left))
                        return ex->reply(error_response(over_quota()));
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
        return ex->reply(
          error_response({error_code::invalid_limit, "limit must be an integer from 1 to 200"}));
    } else if (param.key == "cursor") {
      cursor = param.value;
    }
  }
  using page = std::variant<db::upload_page, failure>; // failure: the cursor is not ours
  auto viewer = *ex->user;
  with_db<page>(
    svc, ex, db::sql::list_uploads,
    [viewer, limit, cursor, days = svc.cfg.retention_days](pqxx::work& tx) {
      return db::list_uploads(tx, viewer, limit, cursor, days);
    },
    [ex](const page& outcome) {
      if (auto* refused = std::get_if<failure>(&outcome))
        return ex->reply(error_response(*refused));
      const auto& p = std::get<db::upload_page>(outcome);
      boost::json::array uploads;
      for (auto& row : p.uploads)
        uploads.push_back(db::to_json(row));
      boost::json::object body{{"uploads", std::move(uploads)}};
      if (p.next_cursor)
        body["next_cursor"] = *p.next_cursor;
      else
        body["next_cursor"] = nullptr;
      ex->reply(json_response(http::status::ok, body));
    });
}

void get_upload(const services& svc, exchange_ptr ex) {
  with_upload(svc, ex, [ex](const db::upload_row& row) {
    ex->reply(json_response(http::status::ok, db::to_json(row)));
  });
}

void delete_upload(const services& svc, exchange_ptr ex) {
  auto id = ex->params.at(0);
  auto viewer = *ex->user;
  auto ip = ex->client_ip;
  auto rid = ex->request_id;
  auto writer =
    svc.directory->find<storage_writer_actor>(storage_writer_name(id, svc.cfg.storage_writers));
  with_db<bool>(
    svc, ex, db::sql::delete_upload,
    [id, viewer, ip, rid](pqxx::work& tx) { return db::delete_upload(tx, id, viewer, ip, rid); },
    [ex, id, writer, stats = svc.metrics](bool deleted) {
      if (!deleted)
        return ex->reply(no_such_upload());
      stats->upload_deleted();
      // The row is gone (committed): the file follows. Should that fail or
      // the process die first, the next start moves it to orphans/.
      caf::anon_send(writer, remove_atom::value, id);
      ex->reply(response{http::status::no_content, 11});
    });
}

response upload_response(const upload_answer& answer) {
  if (answer.tus)
    return tus_response(answer);
  if (answer.error)
    return error_response(answer.error);
  auto res = json_response(http::status::created, answer.upload);
  res.set(http::field::location,
          "/api/v1/uploads/" + std::string{answer.upload.at("id").as_string()});
  return res;
}

} // namespace portal::handlers

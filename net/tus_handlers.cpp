// SPEC §5.2: tus 1.0.0 (core, creation, creation-with-upload, termination,
// checksum, expiration) under /api/v1/tus/. What a client can rely on is in
// docs/TUS.md; the session that serves an upload is actors/tus_session.hpp.
#include "actors/tus_registry.hpp"
#include "actors/tus_session.hpp"
#include "config/log.hpp"
#include "config/upload_id.hpp"
#include "db/quota.hpp"
#include "db/tus_uploads.hpp"
#include "db/uploads.hpp"
#include "net/db_answer.hpp"
#include "net/error_table.hpp"
#include "net/handlers.hpp"
#include "net/responses.hpp"
#include "storage/data_dir.hpp"
#include "storage/partial_file.hpp"
#include "storage/upload_file.hpp"

#include <caf/all.hpp>

#include <charconv>
#include <ctime>
#include <set>
#include <sodium.h>

namespace portal::handlers {

namespace {

constexpr char tus_version[] = "1.0.0";
constexpr char offset_type[] = "application/offset+octet-stream";

// RFC 9110 HTTP-date (IMF-fixdate) of seconds since the epoch.
std::string http_date(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[40];
  auto n = std::strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(out, n);
}

std::optional<uint64_t> number(std::string_view v) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc{} || end != v.data() + v.size())
    return std::nullopt;
  return n;
}

// Standard base64 with padding (RFC 4648 §4), as tus's metadata and
// checksums use it (libsodium's strict decoder).
std::optional<std::string> base64_decode(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(len);
  return out;
}

response with_tus(response res) {
  res.set("Tus-Resumable", tus_version);
  res.prepare_payload();
  return res;
}

response tus_error(const failure& f) {
  auto res = with_tus(error_response(f));
  if (f.code == error_code::tus_version_unsupported)
    res.set("Tus-Version", tus_version);
  return res;
}

// Every tus request but OPTIONS names the protocol version (412 otherwise).
// Every answer says Tus-Resumable (announce_tus).
// A tus field given twice is refused, as a repeated Content-Length is
// (docs/SECURITY.md, HTTP framing): which one a proxy or another reader
// believes is anyone's guess.
bool repeated_tus_field(const http::request_header<>& head) {
  for (const char* name : {"Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata",
                           "Upload-Checksum", "Upload-Defer-Length"})
    if (head.count(name) > 1)
      return true;
  return false;
}

bool resumable(const exchange_ptr& ex) {
  if (repeated_tus_field(ex->head)) {
    ex->reply(tus_error({error_code::bad_request, "a tus header field is given more than once"}));
    return false;
  }
  if (std::string_view{ex->head["Tus-Resumable"]} == tus_version)
    return true;
  ex->reply(tus_error({error_code::tus_version_unsupported, "Tus-Resumable must be 1.0.0"}));
  return false;
}

// Upload-Metadata: "key base64value" pairs, comma-separated, keys unique
// (tus 1.0.0); the filename.
std::variant<std::string, failure> metadata_filename(std::string_view metadata) {
  // Keys are ASCII and values base64 (tus 1.0.0): anything else in the
  // header is no metadata; and the header is stored as text, which must be
  // UTF-8 in PostgreSQL (a raw 0xE9 failed the INSERT: 500).
  for (unsigned char c : metadata)
    if (c < 0x20 || c > 0x7e)
      return failure{error_code::bad_request,
                     "Upload-Metadata must be ASCII: keys and base64 values"};
  std::optional<std::string> filename;
  std::set<std::string_view> keys;
  while (!metadata.empty()) {
    auto comma = metadata.find(',');
    auto pair = metadata.substr(0, comma);
    metadata = comma == std::string_view::npos ? std::string_view{} : metadata.substr(comma + 1);
    while (!pair.empty() && pair.front() == ' ')
      pair.remove_prefix(1);
    auto space = pair.find(' ');
    auto key = pair.substr(0, space);
    auto value = space == std::string_view::npos ? std::string_view{} : pair.substr(space + 1);
    auto decoded = base64_decode(value);
    if (key.empty() || !decoded)
      return failure{error_code::bad_request, "Upload-Metadata is not key/base64 pairs"};
    if (!keys.insert(key).second)
      return failure{error_code::bad_request, "Upload-Metadata repeats a key"};
    if (key == "filename")
      filename = std::move(*decoded);
  }
  if (!filename)
    return failure{error_code::bad_request, "Upload-Metadata must carry filename"};
  return *filename;
}

// Upload-Checksum: "<algorithm> <base64 digest>" (tus checksum extension).
std::variant<std::optional<tus_checksum>, failure> checksum_of(std::string_view header) {
  if (header.empty())
    return std::optional<tus_checksum>{};
  auto space = header.find(' ');
  auto algorithm = std::string{header.substr(0, space)};
  if (algorithm != "sha1" && algorithm != "sha256")
    return failure{error_code::bad_request,
                   "Upload-Checksum: the algorithm must be sha1 or sha256"};
  auto digest =
    space == std::string_view::npos ? std::nullopt : base64_decode(header.substr(space + 1));
  if (!digest || digest->size() != (algorithm == "sha1" ? 20U : 32U))
    return failure{error_code::bad_request,
                   "Upload-Checksum: the digest is not base64 of the algorithm's size"};
  return std::optional<tus_checksum>{tus_checksum{algorithm, std::move(*digest)}};
}

bool is_offset_stream(const exchange_ptr& ex) {
  return beast::iequals(ex->head[http::field::content_type], offset_type);
}

tus_limits limits_of(const services& svc, const db::identity& owner) {
  auto& cfg = svc.cfg;
  tus_limits l;
  l.layout = storage::layout_of(cfg.data_dir);
  l.archive = archive_limits_of(cfg);
  l.db_deadline = cfg.db_deadline;
  l.retention_days = cfg.retention_days;
  l.quota = db::effective_quota(owner, cfg.user_quota_bytes);
  l.sync_bytes = cfg.tus_sync_bytes;
  l.expiry = cfg.tus_expiry;
  l.idle = cfg.tus_session_idle;
  l.machine_id = cfg.machine_id;
  l.volume_id = svc.volume_id;
  return l;
}

tus_upload_info info_of(const db::tus_row& row, const db::identity& owner) {
  auto format =
    row.format == "tar.zst" ? storage::archive_format::tar_zst : storage::archive_format::tar_gz;
  return {row.id, owner, row.filename, format, row.length, row.expires_at};
}

// A partial of another machine (SPEC §5.2): Fly replays a bodiless request
// there; a client not behind Fly sees 409 wrong_instance.
std::optional<response> elsewhere(const services& svc, const db::tus_row& row) {
  if (!row.machine_id || *row.machine_id == svc.cfg.machine_id)
    return std::nullopt;
  auto res = tus_error({error_code::wrong_instance, "this upload is held by another machine"});
  res.set("fly-replay", "instance=" + *row.machine_id);
  return res;
}

// What HEAD/PATCH/DELETE find under {id}: a partial of the caller, or a
// completed upload of the caller (HEAD answers it complete), or nothing.
struct lookup {
  std::optional<db::tus_row> partial;
  std::optional<uint64_t> completed_size;
};

template <class Then>
void with_tus_upload(const services& svc, const exchange_ptr& ex, Then then) {
  auto id = ex->params.at(0);
  if (!valid_upload_id(id))
    return ex->reply(tus_error({error_code::not_found, "no such upload"}));
  auto viewer = *ex->user;
  // Reads that need no common snapshot: an upload that completes between
  // the two is found by the second.
  auto query = [id, viewer](pqxx::transaction_base& tx) {
    lookup found;
    found.partial = db::find_tus_upload(tx, id, viewer.user_id);
    if (!found.partial) {
      // Only its size is used: no retention is needed for its expiry.
      auto done = db::find_upload(tx, id, viewer, std::nullopt);
      if (done && done->owner == viewer.username)
        found.completed_size = done->size;
    }
    return found;
  };
  with_db_autocommit<lookup>(svc, ex, db::sql::find_tus_upload, query,
                             [ex, then = std::move(then)](const lookup& found) { then(found); });
}

response head_answer(const db::tus_row& row, uint64_t offset) {
  auto res = with_tus(response{http::status::ok, 11});
  res.set("Upload-Offset", std::to_string(offset));
  res.set("Upload-Length", std::to_string(row.length));
  if (!row.metadata.empty())
    res.set("Upload-Metadata", row.metadata);
  res.set("Upload-Expires", http_date(row.expires_at));
  res.set(http::field::cache_control, "no-store");
  return res;
}

// The head of a PATCH's (or creation's) body for the session: begin (offset
// check, before any byte is read), then the stream into the feed of
// `*session` (set when the head is sent).
tus_begin begin_of(const services& svc, const exchange_ptr& ex, uint64_t offset,
                   std::optional<tus_checksum> checksum, bool creation,
                   upload_admission::ticket_ptr ticket,
                   const std::shared_ptr<tus_session_actor>& session) {
  tus_begin head;
  head.offset = offset;
  head.body_length = number(std::string_view{ex->head[http::field::content_length]});
  head.checksum = std::move(checksum);
  head.creation = creation;
  head.caller = ex->user->user_id;
  head.ticket = std::move(ticket);
  head.ip = ex->client_ip;
  head.request_id = ex->request_id;
  head.reply = [ex, session, sys = &svc.sys](std::variant<uint64_t, failure> begun) {
    if (auto* refused = std::get_if<failure>(&begun))
      return ex->reply(tus_error(*refused));
    auto n = std::get<uint64_t>(begun);
    ex->hand_over([sys, session, n](upload_link_ptr link) {
      auto feed = spawn_tus_feed(*sys, *session, n);
      caf::anon_send(*session, tus_attach_atom::value, n, std::move(link), feed);
      return feed;
    });
  };
  return head;
}

// The live session of `row`, spawned when there is none, gets `use`.
void with_session_of(const services& svc, const exchange_ptr& ex, const db::tus_row& row,
                     const std::function<void(const tus_session_actor&)>& use) {
  auto owner = *ex->user;
  svc.tus->with_session(
    row.id,
    [&] {
      return spawn_tus_session(svc.sys, svc.directory, svc.tus, limits_of(svc, owner),
                               info_of(row, owner));
    },
    use);
}

// Sends `message` to the upload's live session, spawning it if needed.
template <class... Ts>
void to_session(const services& svc, const exchange_ptr& ex, const db::tus_row& row,
                Ts&&... message) {
  with_session_of(svc, ex, row, [&](const tus_session_actor& session) {
    caf::anon_send(session, std::forward<Ts>(message)...);
  });
}

// `head` (begin_of, with `session`) goes to the session of `row`, spawned
// when there is none.
void send_begin(const services& svc, const exchange_ptr& ex, const db::tus_row& row, tus_begin head,
                const std::shared_ptr<tus_session_actor>& session) {
  with_session_of(svc, ex, row, [&](const tus_session_actor& s) {
    *session = s;
    caf::anon_send(s, tus_begin_atom::value, std::move(head));
  });
}

} // namespace

bool is_tus_path(std::string_view path) {
  constexpr std::string_view prefix = "/api/v1/tus";
  return path.substr(0, prefix.size()) == prefix &&
         (path.size() == prefix.size() || path[prefix.size()] == '/');
}

void announce_tus(exchange& ex) {
  ex.sink = [sink = std::move(ex.sink)](any_response res) {
    if (auto* plain = std::get_if<response>(&res))
      plain->set("Tus-Resumable", tus_version);
    sink(std::move(res));
  };
}

response tus_response(const upload_answer& answer) {
  const auto& tus = *answer.tus;
  auto res =
    answer.error
      ? tus_error(answer.error)
      : with_tus(response{tus.created ? http::status::created : http::status::no_content, 11});
  // A creation whose body failed (460, a cut connection, a full disk) still
  // made the upload when the session kept it (`created`; a refused archive
  // is deleted and answers without): the client learns where to resume, as
  // from tusd.
  if (answer.error && !tus.created)
    return res;
  res.set("Upload-Offset", std::to_string(tus.offset));
  if (answer.upload.empty())
    res.set("Upload-Expires", http_date(tus.expires_at));
  if (tus.created) {
    res.set(http::field::location, "/api/v1/tus/" + tus.id);
    if (!tus.instance.empty())
      res.set("Portal-Instance", tus.instance);
  }
  return res;
}

void tus_options(const services& svc, exchange_ptr ex) {
  auto res = with_tus(response{http::status::no_content, 11});
  res.set("Tus-Version", tus_version);
  res.set("Tus-Extension", "creation,creation-with-upload,termination,checksum,expiration");
  res.set("Tus-Max-Size", std::to_string(svc.cfg.max_upload_bytes));
  res.set("Tus-Checksum-Algorithm", "sha1,sha256");
  ex->reply(std::move(res));
}

void tus_create(const services& svc, exchange_ptr ex) {
  if (!resumable(ex))
    return;
  auto& cfg = svc.cfg;
  if (!ex->head["Upload-Defer-Length"].empty())
    return ex->reply(tus_error({error_code::bad_request, "Upload-Defer-Length is not supported"}));
  auto length = number(std::string_view{ex->head["Upload-Length"]});
  if (!length)
    return ex->reply(tus_error({error_code::bad_request, "Upload-Length must be a byte count"}));
  // As an empty PUT (SPEC §5.3): no byte can carry the compression's magic.
  // Refused here, or a client would read HEAD's 0 of 0 as a finished upload.
  if (*length == 0)
    return ex->reply(
      tus_error({error_code::unsupported_media_type, "an empty file is not an archive"}));
  if (*length > cfg.max_upload_bytes)
    return ex->reply(tus_error(
      {error_code::payload_too_large,
       "the upload exceeds the size limit of " + std::to_string(cfg.max_upload_bytes) + " bytes"}));
  std::string metadata{ex->head["Upload-Metadata"]};
  auto named = metadata_filename(metadata);
  if (auto* refused = std::get_if<failure>(&named))
    return ex->reply(tus_error(*refused));
  auto filename = std::get<std::string>(named);
  auto format = archive_name_format(filename);
  if (!format)
    return ex->reply(tus_error(
      {error_code::invalid_filename,
       "the filename must be a plain name of [A-Za-z0-9._-] ending in .tar.gz, .tgz or .tar.zst"}));
  auto body = number(std::string_view{ex->head[http::field::content_length]}).value_or(0);
  bool with_body = body > 0 || ex->head[http::field::transfer_encoding].size() > 0;
  if (with_body && !is_offset_stream(ex))
    return ex->reply(tus_error({error_code::unsupported_media_type,
                                "a creation's body must be application/offset+octet-stream"}));
  if (body > *length)
    return ex->reply(
      tus_error({error_code::payload_too_large, "the body goes past Upload-Length"}));
  // The checksum extension covers a creation's body as it covers a PATCH's.
  auto checked = checksum_of(std::string_view{ex->head["Upload-Checksum"]});
  if (auto* refused = std::get_if<failure>(&checked))
    return ex->reply(tus_error(*refused));
  auto checksum = std::get<std::optional<tus_checksum>>(std::move(checked));
  if (*length > storage::free_bytes(cfg.data_dir))
    return ex->reply(
      tus_error({error_code::insufficient_storage, "the server has no room for this upload"}));
  // A creation is an upload's start (SPEC §11: starts per minute); with a
  // body it is also one of the user's running uploads until answered.
  auto admitted = svc.admission->admit(ex->user->user_id);
  if (auto* refusal = std::get_if<admission_refusal>(&admitted))
    return ex->reply(with_tus(error_response({error_code::too_many_uploads, refusal->message},
                                             refusal->retry_after_seconds)));
  auto ticket = std::get<upload_admission::ticket_ptr>(std::move(admitted));

  db::new_tus_upload up{new_upload_id(),
                        ex->user->user_id,
                        filename,
                        storage::to_string(*format),
                        *length,
                        metadata,
                        static_cast<int64_t>(cfg.tus_expiry.count()),
                        cfg.machine_id.empty() ? std::nullopt
                                               : std::optional<std::string>{cfg.machine_id},
                        svc.volume_id,
                        db::effective_quota(*ex->user, cfg.user_quota_bytes)};
  using created = std::variant<db::tus_row, failure>;
  auto layout = storage::layout_of(cfg.data_dir);
  // The partial is made before the row: a row never names a file that does
  // not exist. A transaction rolled back (its deadline passed, its
  // connection lost before COMMIT) removes the file after it (`undo`); only
  // a commit in doubt leaves a file without a row, removed at the next
  // start (main.cpp).
  auto query = [up, layout](pqxx::work& tx) -> created {
    try {
      storage::partial_file::create(layout, up.id);
    } catch (const storage::storage_error& e) {
      // EEXIST: this same request's earlier attempt (a fresh random id)
      if (e.code() != std::errc::file_exists) {
        if (e.disk_full())
          return failure{error_code::insufficient_storage,
                         "the server has no room for this upload"};
        return failure{error_code::storage_unavailable, "storage is unavailable, retry later"};
      }
    }
    // A refusal (quota) or a failed statement: the file goes with the row
    // that will never exist, now rather than at the next start.
    std::variant<db::tus_row, failure> row;
    try {
      row = db::insert_tus_upload(tx, up);
    } catch (...) {
      try {
        storage::remove_partial(layout, up.id);
      } catch (const storage::storage_error&) {
        // left for the next start's reconciliation; the statement's error wins
      }
      throw;
    }
    if (std::holds_alternative<failure>(row))
      storage::remove_partial(layout, up.id);
    return row;
  };
  with_db<created>(
    svc, ex, db::sql::insert_tus_upload, query,
    [&svc, ex, with_body, ticket, checksum](const created& outcome) {
      if (auto* refused = std::get_if<failure>(&outcome))
        return ex->reply(tus_error(*refused));
      auto& row = std::get<db::tus_row>(outcome);
      if (with_body) {
        auto session = std::make_shared<tus_session_actor>();
        return send_begin(svc, ex, row, begin_of(svc, ex, 0, checksum, true, ticket, session),
                          session);
      }
      ticket->release();
      // The session starts now: the PATCH that follows finds
      // it live and needs no lookup (tus_patch).
      with_session_of(svc, ex, row, [](const tus_session_actor&) {});
      auto res = with_tus(response{http::status::created, 11});
      res.set(http::field::location, "/api/v1/tus/" + row.id);
      res.set("Upload-Expires", http_date(row.expires_at));
      if (!svc.cfg.machine_id.empty())
        res.set("Portal-Instance", svc.cfg.machine_id);
      ex->reply(std::move(res));
    },
    [layout, id = up.id] {
      try {
        storage::remove_partial(layout, id);
      } catch (const storage::storage_error& e) {
        log::error("tus partial not removed", {{"upload_id", id}, {"error", e.what()}});
      }
    });
}

void tus_head(const services& svc, exchange_ptr ex) {
  if (!resumable(ex))
    return;
  with_tus_upload(svc, ex, [&svc, ex](const lookup& found) {
    if (found.completed_size) {
      // Completed: a resuming client sees success; the object is at
      // /api/v1/uploads/{id}.
      auto res = with_tus(response{http::status::ok, 11});
      res.set("Upload-Offset", std::to_string(*found.completed_size));
      res.set("Upload-Length", std::to_string(*found.completed_size));
      res.set(http::field::cache_control, "no-store");
      return ex->reply(std::move(res));
    }
    if (!found.partial)
      return ex->reply(tus_error({error_code::not_found, "no such upload"}));
    auto& row = *found.partial;
    if (auto replay = elsewhere(svc, row))
      return ex->reply(std::move(*replay));
    if (row.expired)
      return ex->reply(tus_error({error_code::gone, "the upload expired"}));
    tus_reply reply = [ex, row](tus_offset offset) {
      if (auto* refused = std::get_if<failure>(&offset))
        return ex->reply(tus_error(*refused));
      ex->reply(head_answer(row, std::get<uint64_t>(offset)));
    };
    to_session(svc, ex, row, tus_head_atom::value, std::move(reply));
  });
}

void tus_patch(const services& svc, exchange_ptr ex) {
  if (!resumable(ex))
    return;
  if (!is_offset_stream(ex))
    return ex->reply(tus_error({error_code::unsupported_media_type,
                                "a PATCH's body must be application/offset+octet-stream"}));
  auto offset = number(std::string_view{ex->head["Upload-Offset"]});
  if (!offset)
    return ex->reply(tus_error({error_code::bad_request, "Upload-Offset must be a byte count"}));
  auto checked = checksum_of(std::string_view{ex->head["Upload-Checksum"]});
  if (auto* refused = std::get_if<failure>(&checked))
    return ex->reply(tus_error(*refused));
  auto checksum = std::get<std::optional<tus_checksum>>(std::move(checked));
  auto admitted = svc.admission->admit_resumed(ex->user->user_id);
  if (auto* refusal = std::get_if<admission_refusal>(&admitted))
    return ex->reply(with_tus(error_response({error_code::too_many_uploads, refusal->message},
                                             refusal->retry_after_seconds)));
  auto ticket = std::get<upload_admission::ticket_ptr>(std::move(admitted));
  // A live session is this machine's and knows its upload (owner, expiry,
  // offset): the PATCH goes straight to it. Only an upload without one
  // costs the lookup's database round trip.
  auto session = std::make_shared<tus_session_actor>();
  auto head = begin_of(svc, ex, *offset, checksum, false, std::move(ticket), session);
  if (svc.tus->with_live_session(ex->params.at(0), [&](const tus_session_actor& s) {
        *session = s;
        caf::anon_send(s, tus_begin_atom::value, std::move(head));
      }))
    return;
  with_tus_upload(svc, ex, [&svc, ex, head, session](const lookup& found) {
    if (!found.partial)
      return ex->reply(tus_error({error_code::not_found, "no such upload"}));
    auto& row = *found.partial;
    // Another machine: 409 without reading the body (the connection closes).
    if (row.machine_id && *row.machine_id != svc.cfg.machine_id)
      return ex->reply(
        tus_error({error_code::wrong_instance, "this upload is held by another machine"}));
    if (row.expired)
      return ex->reply(tus_error({error_code::gone, "the upload expired"}));
    send_begin(svc, ex, row, head, session);
  });
}

void tus_delete(const services& svc, exchange_ptr ex) {
  if (!resumable(ex))
    return;
  with_tus_upload(svc, ex, [&svc, ex](const lookup& found) {
    if (!found.partial)
      return ex->reply(tus_error({error_code::not_found, "no such upload"}));
    auto row = *found.partial;
    if (auto replay = elsewhere(svc, row))
      return ex->reply(std::move(*replay));
    auto owner = ex->user->user_id;
    with_db<bool>(
      svc, ex, db::sql::delete_tus_upload,
      [id = row.id, owner](pqxx::work& tx) { return db::delete_tus_upload(tx, id, owner); },
      [&svc, ex, row](bool deleted) {
        if (!deleted)
          return ex->reply(tus_error({error_code::not_found, "no such upload"}));
        tus_reply reply = [ex](const tus_offset&) {
          ex->reply(with_tus(response{http::status::no_content, 11}));
        };
        to_session(svc, ex, row, tus_delete_atom::value, std::move(reply));
      });
  });
}

} // namespace portal::handlers

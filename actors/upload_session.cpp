#include "actors/upload_session.hpp"

#include "actors/archive_validator.hpp"
#include "actors/chunk_pool.hpp"
#include "actors/db_pool.hpp"
#include "actors/db_request.hpp"
#include "actors/messages.hpp"
#include "actors/storage_writer.hpp"
#include "config/log.hpp"
#include "db/audit.hpp"
#include "db/quota.hpp"
#include "db/uploads.hpp"

#include <caf/all.hpp>

namespace portal {

// nullopt: recording it would have passed the owner's quota.
using recorded = db_outcome<std::optional<db::upload_row>>;

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::recorded)

namespace portal {

namespace {

std::string session_name(const std::string& upload_id) {
  return "upload_session_" + upload_id;
}

struct session_state {
  std::shared_ptr<actor_directory> dir;
  upload_limits limits;
  upload_request req;
  upload_link_ptr link;
  probe_ptr probe;
  // One of the user's concurrent uploads. Declared after the link so that a
  // crashed session's client hears its 500 before the slot is freed.
  upload_admission::ticket_ptr ticket;
  caf::actor validator;
  caf::actor writer;
  uint64_t bytes = 0;
  uint64_t sent = 0;      // chunks handed to both stages
  uint64_t validated = 0; // chunks the validator consumed
  uint64_t stored = 0;    // chunks the writer consumed
  uint64_t credited = 0;  // credits returned to the connection
  bool eof = false;
  bool finishing = false;
  bool over = false;
  const char* name = "upload_session";
};

using session_ptr = caf::stateful_actor<session_state>*;

upload_failure quota_failure() {
  return {413, "quota_exceeded", "the upload would exceed your storage quota"};
}

boost::json::object error_body(const upload_failure& f) {
  return {{"error", {{"code", f.code}, {"message", f.message}}}};
}

// Frees the upload's concurrency slot, then tells the client: once it has
// the answer, it may start another upload.
void answer(session_ptr self, upload_answer a) {
  auto& st = self->state;
  if (st.ticket)
    st.ticket->release();
  st.link->done(std::move(a));
}

// A refused archive (bad format, too big, over quota...) is in the audit
// trail like a completed one. Written on the side: the client's answer does
// not wait for it, and a database that is away loses only this row.
void audit_rejection(session_ptr self, const upload_failure& f) {
  auto& st = self->state;
  db::audit_actor who{st.req.owner.user_id, st.req.owner.username, st.req.ip, st.req.request_id};
  boost::json::object detail{{"upload_id", st.req.id},
                             {"filename", st.req.filename},
                             {"status", f.status},
                             {"code", f.code},
                             {"bytes", st.bytes}};
  auto query = [who, detail](pqxx::work& tx) {
    db::record_audit(tx, who, "upload.rejected", detail);
    return true;
  };
  submit(*st.dir, make_db_request<bool>("audit rejection",
                                        std::chrono::steady_clock::now() + st.limits.db_deadline,
                                        std::move(query), [](const db_outcome<bool>&) {}));
}

// The one way out of a session that did not succeed.
void fail(session_ptr self, const upload_failure& f) {
  auto& st = self->state;
  if (st.over)
    return;
  st.over = true;
  self->send(st.writer, discard_atom::value, st.req.id);
  log::info("upload refused", {{"request_id", st.req.request_id},
                               {"upload_id", st.req.id},
                               {"status", f.status},
                               {"code", f.code},
                               {"bytes", st.bytes}});
  if (f.status >= 400 && f.status < 499)
    audit_rejection(self, f);
  answer(self, upload_answer{f.status, error_body(f)});
  self->send_exit(st.validator, caf::exit_reason::user_shutdown);
  self->quit();
}

void internal_failure(session_ptr self, const char* stage, const caf::error& e) {
  log::error(
    "upload stage failed",
    {{"upload_id", self->state.req.id}, {"stage", stage}, {"error", self->system().render(e)}});
  fail(self, {500, "internal", "the upload failed"});
}

void record(session_ptr self, const validation_result& v, const commit_result& c) {
  auto& st = self->state;
  db::new_upload row{st.req.id,
                     st.req.owner.user_id,
                     st.req.filename,
                     c.size,
                     c.sha256,
                     storage::to_string(st.req.format),
                     v.entries,
                     v.uncompressed_size,
                     st.limits.retention_days,
                     st.limits.quota};
  auto owner = st.req.owner;
  auto ip = st.req.ip;
  auto rid = st.req.request_id;
  auto me = caf::actor_cast<caf::actor>(self);
  auto query = [row, owner, ip, rid](pqxx::work& tx) -> std::optional<db::upload_row> {
    try {
      return db::insert_upload(tx, row, owner, ip, rid);
    } catch (const db::quota_exceeded&) {
      return std::nullopt;
    }
  };
  auto done = [me](recorded outcome) {
    caf::anon_send(me, recorded_atom::value, std::move(outcome));
  };
  submit(*st.dir, make_db_request<std::optional<db::upload_row>>(
                    "insert upload", std::chrono::steady_clock::now() + st.limits.db_deadline,
                    std::move(query), std::move(done)));
}

void commit(session_ptr self, validation_result v) {
  auto& st = self->state;
  self->request(st.writer, caf::infinite, commit_atom::value, st.req.id)
    .then(
      [=](commit_result& c) {
        if (c.failure)
          return fail(self, c.failure); // the writer already dropped the file
        record(self, v, c);
      },
      [=](caf::error& e) { internal_failure(self, "commit", e); });
}

void finish(session_ptr self) {
  auto& st = self->state;
  st.finishing = true;
  self->request(st.validator, caf::infinite, finish_atom::value)
    .then(
      [=](validation_result& v) {
        if (v.failure)
          return fail(self, v.failure);
        commit(self, v);
      },
      [=](caf::error& e) { internal_failure(self, "validate", e); });
}

// Returns credit for chunks both stages consumed; finishes after the last.
void progress(session_ptr self) {
  auto& st = self->state;
  if (st.over)
    return;
  auto consumed = std::min(st.validated, st.stored);
  if (consumed > st.credited && !st.eof) {
    st.link->credit(consumed - st.credited);
    st.credited = consumed;
  }
  if (st.eof && !st.finishing && consumed == st.sent)
    finish(self);
}

void on_chunk(session_ptr self, const chunk_ptr& c) {
  auto& st = self->state;
  if (st.over)
    return;
  st.bytes += c->size;
  if (st.limits.quota_left && st.bytes > *st.limits.quota_left)
    return fail(self, quota_failure());
  st.probe->upload->bytes_received.store(st.bytes, std::memory_order_relaxed);
  if (st.bytes > st.limits.max_bytes)
    return fail(self, {413, "payload_too_large", "the upload exceeds the size limit"});
  ++st.sent;
  self->request(st.validator, caf::infinite, chunk_atom::value, c)
    .then(
      [=](upload_failure& f) {
        if (f)
          return fail(self, f);
        ++self->state.validated;
        progress(self);
      },
      [=](caf::error& e) { internal_failure(self, "validate", e); });
  self->request(st.writer, caf::infinite, chunk_atom::value, st.req.id, c)
    .then(
      [=](upload_failure& f) {
        if (f)
          return fail(self, f);
        ++self->state.stored;
        progress(self);
      },
      [=](caf::error& e) { internal_failure(self, "store", e); });
}

caf::behavior upload_session(session_ptr self, probe_ptr probe,
                             std::shared_ptr<actor_directory> dir, upload_limits limits,
                             upload_request req, upload_admission::ticket_ptr ticket,
                             upload_link_ptr link) {
  auto& st = self->state;
  st.ticket = std::move(ticket);
  st.probe = probe;
  st.dir = std::move(dir);
  st.limits = limits;
  st.req = std::move(req);
  st.link = std::move(link);
  st.writer = st.dir->find(storage_writer_name(st.req.id, st.limits.storage_writers));
  if (!st.writer) {
    fail(self, {503, "storage_unavailable", "storage is unavailable, retry later"});
    return {};
  }
  auto validator_probe = std::make_shared<actor_probe>();
  st.validator = spawn_archive_validator(self, validator_probe, st.req.format, st.limits.archive);
  st.dir->record_temporary(actor_entry{"archive_validator_" + st.req.id, "archive_validator",
                                       session_name(st.req.id), st.validator.id(), 0,
                                       validator_probe},
                           st.validator);
  return probed(
    self, probe, [=](chunk_atom, const chunk_ptr& c) { on_chunk(self, c); },
    [=](eof_atom) {
      self->state.eof = true;
      progress(self);
    },
    // Nobody hears the answer: the connection has already gone or answered.
    [=](abort_atom) {
      fail(self, {499, "client_closed", "the client went away"});
    },
    [=](recorded_atom, recorded& outcome) {
      auto& s = self->state;
      if (auto* failure = std::get_if<db_failure>(&outcome)) {
        // The archive is in place but unrecorded: it must go, or the next
        // start would find it an orphan.
        self->send(s.writer, remove_atom::value, s.req.id);
        log::warn("upload not recorded", {{"upload_id", s.req.id}, {"error", to_string(*failure)}});
        if (*failure == db_failure::error)
          return fail(self, {500, "internal", "the upload could not be recorded"});
        return fail(self, {503, "unavailable", "the database is unavailable, retry later"});
      }
      auto& recorded_row = std::get<std::optional<db::upload_row>>(outcome);
      if (!recorded_row) {
        self->send(s.writer, remove_atom::value, s.req.id);
        return fail(self, quota_failure());
      }
      auto& row = *recorded_row;
      s.over = true;
      log::info("upload complete", {{"request_id", s.req.request_id},
                                    {"upload_id", row.id},
                                    {"size", row.size},
                                    {"entries", row.entries}});
      answer(self, upload_answer{201, db::to_json(row)});
      self->send_exit(s.validator, caf::exit_reason::user_shutdown);
      self->quit();
    });
}

} // namespace

upload_session_actor spawn_upload_session(caf::actor_system& sys, std::shared_ptr<actor_directory> dir,
                                upload_limits limits, upload_request req,
                                upload_admission::ticket_ptr ticket, upload_link_ptr link) {
  auto probe = std::make_shared<actor_probe>();
  probe->upload = std::make_shared<upload_progress>();
  probe->upload->id = req.id;
  probe->upload->owner = req.owner.username;
  probe->upload->filename = req.filename;
  probe->upload->bytes_expected = req.declared_size;
  auto name = session_name(req.id);
  auto h = sys.spawn(upload_session, probe, dir, limits, std::move(req), std::move(ticket),
                     std::move(link));
  // Not supervised: nothing restarts an upload whose client is gone. Its
  // crash fails that one upload (the link answers 500) and is counted.
  dir->record_temporary(actor_entry{name, "upload_session", "", h.id(), 0, probe}, h);
  return h;
}

} // namespace portal

#include "actors/upload_session.hpp"

#include "actors/archive_validator.hpp"
#include "actors/caf_error.hpp"
#include "actors/db_pool.hpp"
#include "actors/db_request.hpp"
#include "actors/storage_writer.hpp"
#include "config/log.hpp"
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

// The session's whole interface: what the connection sends, and the
// database's answer to the record step, which the session sends itself.
using session_actor = upload_session_actor::extend<caf::reacts_to<recorded_atom, recorded>>;

// Where the upload is (actors/upload_session.hpp). Each phase waits for one
// thing: the connection's chunks and eof, the stages' consumption, or one
// stage's answer; fail() ends any of them.
enum class phase { receiving, draining, validating, committing, recording, over };

struct session_state {
  std::shared_ptr<actor_directory> dir;
  upload_limits limits;
  upload_request req;
  upload_link_ptr link;
  probe_ptr probe;
  // One of the user's concurrent uploads. Declared after the link, so
  // destroyed before it: a crashed session frees the slot before its client
  // hears the answer, as answer() does.
  upload_admission::ticket_ptr ticket;
  archive_validator_actor validator;
  storage_writer_actor writer;
  phase at = phase::receiving;
  uint64_t bytes = 0;
  uint64_t sent = 0;      // chunks handed to both stages
  uint64_t validated = 0; // chunks the validator consumed
  uint64_t stored = 0;    // chunks the writer consumed
  uint64_t credited = 0;  // credits returned to the connection
  const char* name = "upload_session";
};

using session_ptr = session_actor::stateful_pointer<session_state>;

// The steps, in the order an upload runs them.
session_actor::behavior_type upload_session(session_ptr self, probe_ptr probe,
                                            std::shared_ptr<actor_directory> dir,
                                            upload_limits limits, upload_request req,
                                            upload_admission::ticket_ptr ticket,
                                            upload_link_ptr link);
void on_chunk(session_ptr self, const chunk_ptr& c);
void on_consumed(session_ptr self);
void on_eof(session_ptr self);
void validate(session_ptr self);
void commit(session_ptr self, const validation_result& v);
void record(session_ptr self, const validation_result& v, const commit_result& c);
void on_recorded(session_ptr self, recorded& outcome);
void succeed(session_ptr self, const db::upload_row& row);
void fail(session_ptr self, const failure& f);
failure stage_failed(session_ptr self, const char* stage, const caf::error& e);
void answer(session_ptr self, upload_answer a);

std::string session_name(const std::string& upload_id) {
  return "upload_session_" + upload_id;
}

} // namespace

// ---- spawn -------------------------------------------------------------------

upload_session_actor spawn_upload_session(caf::actor_system& sys,
                                          std::shared_ptr<actor_directory> dir,
                                          upload_limits limits, upload_request req,
                                          upload_admission::ticket_ptr ticket,
                                          upload_link_ptr link) {
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
  // crash fails that one upload (the link answers) and is counted.
  dir->record_temporary(actor_entry{name, "upload_session", "", h.id(), 0, probe},
                        caf::actor_cast<caf::actor>(h));
  return h;
}

namespace {

// Finds the upload's storage writer and starts its validator; then takes
// the connection's messages.
session_actor::behavior_type upload_session(session_ptr self, probe_ptr probe,
                                            std::shared_ptr<actor_directory> dir,
                                            upload_limits limits, upload_request req,
                                            upload_admission::ticket_ptr ticket,
                                            upload_link_ptr link) {
  auto& st = self->state;
  st.ticket = std::move(ticket);
  st.probe = probe;
  st.dir = std::move(dir);
  st.limits = limits;
  st.req = std::move(req);
  st.link = std::move(link);
  st.writer =
    st.dir->find<storage_writer_actor>(storage_writer_name(st.req.id, st.limits.storage_writers));
  if (st.writer) {
    auto validator_probe = std::make_shared<actor_probe>();
    st.validator = spawn_archive_validator(self, validator_probe, st.req.format, st.limits.archive);
    st.dir->record_temporary(actor_entry{"archive_validator_" + st.req.id, "archive_validator",
                                         session_name(st.req.id), st.validator.id(), 0,
                                         validator_probe},
                             caf::actor_cast<caf::actor>(st.validator));
  } else {
    // It quits at once: the behavior below never runs.
    fail(self, {error_code::storage_unavailable, "storage is unavailable, retry later"});
  }
  return probed(
    self, probe, [=](chunk_atom, const chunk_ptr& c) { on_chunk(self, c); },
    [=](eof_atom) { on_eof(self); },
    // Nobody hears the answer: the connection has already gone or answered.
    [=](abort_atom) {
      fail(self, {error_code::client_closed, "the client went away"});
    },
    [=](recorded_atom, recorded& outcome) { on_recorded(self, outcome); });
}

// ---- receiving: chunks to both stages, credit back ----------------------------

void on_chunk(session_ptr self, const chunk_ptr& c) {
  auto& st = self->state;
  if (st.at != phase::receiving)
    return;
  st.bytes += c->size;
  if (st.limits.quota_left && st.bytes > *st.limits.quota_left)
    return fail(self, over_quota());
  st.probe->upload->bytes_received.store(st.bytes, std::memory_order_relaxed);
  if (st.bytes > st.limits.max_bytes)
    return fail(self, {error_code::payload_too_large, "the upload exceeds the size limit"});
  ++st.sent;
  self->request(st.validator, caf::infinite, chunk_atom::value, c)
    .then(
      [=](caf::ok_atom) {
        ++self->state.validated;
        on_consumed(self);
      },
      [=](caf::error& e) { fail(self, stage_failed(self, "validate", e)); });
  self->request(st.writer, caf::infinite, chunk_atom::value, st.req.id, c)
    .then(
      [=](caf::ok_atom) {
        ++self->state.stored;
        on_consumed(self);
      },
      [=](caf::error& e) { fail(self, stage_failed(self, "store", e)); });
}

// A chunk that both stages consumed is one credit for the connection; after
// the body's end, the last one starts the validation of the end.
void on_consumed(session_ptr self) {
  auto& st = self->state;
  auto consumed = std::min(st.validated, st.stored);
  if (st.at == phase::receiving && consumed > st.credited) {
    st.link->credit(consumed - st.credited);
    st.credited = consumed;
  }
  if (st.at == phase::draining && consumed == st.sent)
    validate(self);
}

// ---- the end of the body --------------------------------------------------------

void on_eof(session_ptr self) {
  auto& st = self->state;
  if (st.at != phase::receiving)
    return;
  st.at = phase::draining;
  on_consumed(self);
}

void validate(session_ptr self) {
  auto& st = self->state;
  st.at = phase::validating;
  self->request(st.validator, caf::infinite, finish_atom::value)
    .then([=](validation_result& v) { commit(self, v); },
          [=](caf::error& e) { fail(self, stage_failed(self, "validate", e)); });
}

// ---- commit: the file is durable ------------------------------------------------

void commit(session_ptr self, const validation_result& v) {
  auto& st = self->state;
  st.at = phase::committing;
  self->request(st.writer, caf::infinite, commit_atom::value, st.req.id)
    .then([=](commit_result& c) { record(self, v, c); },
          // the writer has already dropped the file
          [=](caf::error& e) { fail(self, stage_failed(self, "commit", e)); });
}

// ---- record: the row, under the owner's quota ----------------------------------

void record(session_ptr self, const validation_result& v, const commit_result& c) {
  auto& st = self->state;
  st.at = phase::recording;
  db::new_upload row{st.req.id,
                     st.req.owner.user_id,
                     st.req.filename,
                     c.size,
                     c.sha256,
                     storage::to_string(st.req.format),
                     v.entries,
                     v.uncompressed_size,
                     st.limits.retention_days,
                     st.limits.quota,
                     st.limits.volume_id};
  auto owner = st.req.owner;
  auto ip = st.req.ip;
  auto rid = st.req.request_id;
  auto me = caf::actor_cast<session_actor>(self);
  auto query = [row, owner, ip, rid](pqxx::work& tx) -> std::optional<db::upload_row> {
    auto inserted = db::insert_upload(tx, row, owner, ip, rid);
    if (auto* stored = std::get_if<db::upload_row>(&inserted))
      return std::move(*stored);
    return std::nullopt; // quota_exceeded
  };
  auto done = [me](recorded outcome) {
    caf::anon_send(me, recorded_atom::value, std::move(outcome));
  };
  submit(*st.dir, make_db_request<std::optional<db::upload_row>>(
                    std::string{db::sql::insert_upload.name},
                    std::chrono::steady_clock::now() + st.limits.db_deadline, std::move(query),
                    std::move(done)));
}

void on_recorded(session_ptr self, recorded& outcome) {
  auto& st = self->state;
  if (st.at != phase::recording)
    return;
  if (auto* failed = std::get_if<db_failure>(&outcome)) {
    // The archive is in place but unrecorded: it must go, or the next
    // start would find it an orphan. Unless the row may have been
    // committed after all: then the next start judges it (SPEC §9).
    if (*failed != db_failure::in_doubt)
      self->send(st.writer, remove_atom::value, st.req.id);
    log::warn("upload not recorded", {{"upload_id", st.req.id}, {"error", to_string(*failed)}});
    if (*failed == db_failure::error)
      return fail(self, {error_code::internal, "the upload could not be recorded"});
    return fail(self, {error_code::unavailable, "the database is unavailable, retry later"});
  }
  auto& row = std::get<std::optional<db::upload_row>>(outcome);
  if (!row) {
    self->send(st.writer, remove_atom::value, st.req.id);
    return fail(self, over_quota());
  }
  succeed(self, *row);
}

// ---- answer ---------------------------------------------------------------------

void succeed(session_ptr self, const db::upload_row& row) {
  auto& st = self->state;
  st.at = phase::over;
  log::info("upload complete", {{"request_id", st.req.request_id},
                                {"upload_id", row.id},
                                {"size", row.size},
                                {"entries", row.entries}});
  answer(self, upload_answer{{}, db::to_json(row), {}});
  self->send_exit(st.validator, caf::exit_reason::user_shutdown);
  self->quit();
}

// The one way out of a session that did not succeed.
void fail(session_ptr self, const failure& f) {
  auto& st = self->state;
  if (st.at == phase::over)
    return;
  st.at = phase::over;
  self->send(st.writer, discard_atom::value, st.req.id);
  log::info("upload refused", {{"request_id", st.req.request_id},
                               {"upload_id", st.req.id},
                               {"code", to_string(f.code)},
                               {"bytes", st.bytes}});
  if (st.req.failed)
    st.req.failed(f, st.bytes);
  answer(self, upload_answer{f, {}, {}});
  self->send_exit(st.validator, caf::exit_reason::user_shutdown);
  self->quit();
}

// A stage's refusal as it gave it; anything else (a stage that died, a
// bug) is logged and answered as internal.
failure stage_failed(session_ptr self, const char* stage, const caf::error& e) {
  if (auto refused = to_failure(e))
    return *refused;
  log::error(
    "upload stage failed",
    {{"upload_id", self->state.req.id}, {"stage", stage}, {"error", self->system().render(e)}});
  return {error_code::internal, "the upload failed"};
}

// Frees the upload's concurrency slot, then tells the client: once it has
// the answer, it may start another upload.
void answer(session_ptr self, upload_answer a) {
  auto& st = self->state;
  if (st.ticket)
    st.ticket->release();
  st.link->done(std::move(a));
}

} // namespace

} // namespace portal

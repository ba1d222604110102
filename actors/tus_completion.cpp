#include "actors/db_pool.hpp"
#include "actors/tus_registry.hpp"
#include "actors/tus_session_state.hpp"
#include "config/log.hpp"

namespace portal::tus_detail {

// ---- completion: validated, committed, recorded like a plain upload ----------

void complete(session_ptr self) {
  auto& st = self->state;
  st.at = phase::completing;
  if (!st.judged) {
    // Completed by a HEAD after a restart, the validator and the digest are
    // rebuilt from the file first.
    if (!st.check) {
      if (auto refused = rebuild(self))
        return destroy(self, *refused);
    }
    auto outcome = st.check->finish();
    if (auto* refused = std::get_if<failure>(&outcome))
      return destroy(self, *refused);
    try {
      st.judged =
        session_state::verdict{std::get<storage::archive_summary>(outcome), st.sha->hex_digest()};
    } catch (const storage::storage_error& e) {
      return destroy(self, storage_failure(e));
    }
  }
  auto summary = st.judged->summary;
  auto sha = st.judged->sha256;
  try {
    st.file->commit_to_archive(st.limits.layout);
    st.file.reset();
  } catch (const storage::storage_error& e) {
    return destroy(self, storage_failure(e));
  }
  db::new_upload row{st.info.id,
                     st.info.owner.user_id,
                     st.info.filename,
                     st.durable,
                     sha,
                     storage::to_string(st.info.format),
                     summary.entries,
                     summary.uncompressed_size,
                     st.limits.retention_days,
                     st.limits.quota,
                     st.limits.volume_id};
  auto owner = st.info.owner;
  // A HEAD's completion has no PATCH: its audit row names no request.
  auto ip = st.patch ? st.patch->head.ip : std::string{};
  auto rid = st.patch ? st.patch->head.request_id : std::string{};
  auto me = caf::actor_cast<session_actor>(self);
  auto query = [row, owner, ip, rid](pqxx::work& tx) {
    return db::complete_tus_upload(tx, row, owner, ip, rid);
  };
  auto done = [me](tus_recorded outcome) {
    caf::anon_send(me, recorded_atom::value, std::move(outcome));
  };
  auto req = make_db_request<std::variant<db::upload_row, failure>>(
    std::string{db::sql::insert_upload.name},
    std::chrono::steady_clock::now() + st.limits.db_deadline, std::move(query), std::move(done));
  req->on_rollback([me] { caf::anon_send(me, settled_atom::value); });
  st.record_in_flight = true;
  submit(*st.dir, std::move(req));
}

namespace {

// A completion the database never recorded (timeout: rolled back;
// unavailable: lost before COMMIT; actors/db_request.hpp): the archive goes
// back to partials/ and the session is open again at the full offset, so a
// database outage costs the client a retry, not the upload. The next HEAD
// or PATCH completes it again. False when it could not be moved back.
bool reopen(session_ptr self) {
  auto& st = self->state;
  if (st.terminated)
    return false;
  try {
    storage::return_to_partials(st.limits.layout, st.info.id);
  } catch (const storage::storage_error& e) {
    log::error("tus archive not returned to partials",
               {{"upload_id", st.info.id}, {"error", e.what()}});
    return false;
  }
  st.check.reset(); // finished: the next completion takes st.judged
  st.sha.reset();
  st.at = phase::open;
  // Kept: its expiry moves as after any PATCH that ends with the upload, once
  // the attempt no longer holds its row (its transaction deleted it).
  if (st.record_in_flight)
    st.expiry_pending = true;
  else
    move_expiry(self);
  log::warn("tus upload complete but not recorded; kept for a retry",
            {{"upload_id", st.info.id}, {"offset", st.durable}});
  return true;
}

void remove_archive(session_ptr self) {
  auto& st = self->state;
  try {
    storage::remove_archive(st.limits.layout, st.info.id);
  } catch (const std::exception& e) {
    log::error("could not remove archive", {{"upload_id", st.info.id}, {"error", e.what()}});
  }
}

} // namespace

// The connection was lost after the record's COMMIT was sent: it may have
// committed or not, and the archive must stay where that row would find it
// until the database says which (db::find_completion_fate, once that
// transaction has ended). Asked again at each HEAD and idle tick until
// answered; one question at a time.
void ask_fate(session_ptr self) {
  auto& st = self->state;
  if (st.asking)
    return;
  st.asking = true;
  auto me = caf::actor_cast<session_actor>(self);
  auto id = st.info.id;
  submit(*st.dir, make_db_request<db::completion_fate>(
                    std::string{db::sql::lock_tus_upload.name},
                    std::chrono::steady_clock::now() + st.limits.db_deadline,
                    [id](pqxx::work& tx) { return db::find_completion_fate(tx, id); },
                    [me](tus_fate fate) { caf::anon_send(me, fate_atom::value, fate); }));
}

void on_fate(session_ptr self, const tus_fate& fate) {
  auto& st = self->state;
  st.asking = false;
  if (!st.in_doubt || st.at != phase::completing)
    return;
  auto* known = std::get_if<db::completion_fate>(&fate);
  if (!known || *known == db::completion_fate::pending)
    return; // still unknown: the next HEAD or idle tick asks again
  st.in_doubt = false;
  log::info("tus upload's record in doubt: resolved",
            {{"upload_id", st.info.id},
             {"fate", *known == db::completion_fate::kept       ? "rolled back"
                      : *known == db::completion_fate::recorded ? "committed"
                                                                : "gone"}});
  if (*known == db::completion_fate::recorded) {
    st.at = phase::over;
    log::info("upload complete", {{"upload_id", st.info.id}, {"size", st.durable}, {"tus", true}});
    st.registry->forget(st.info.id, self->address());
    return self->quit();
  }
  if (*known == db::completion_fate::kept && reopen(self))
    return;
  // Terminated meanwhile (or kept, but the archive could not go back).
  remove_archive(self);
  destroy(self, {error_code::not_found, "the upload was terminated"});
}

void on_recorded(session_ptr self, tus_recorded& outcome) {
  auto& st = self->state;
  if (st.at != phase::completing)
    return;
  bool creation = st.patch && st.patch->head.creation;
  // Answered `timeout`, the worker may still run it: settled_atom says when
  // it is over. Any other outcome comes from the worker, or from a request
  // that never ran.
  auto* late = std::get_if<db_failure>(&outcome);
  if (!late || *late != db_failure::timeout)
    st.record_in_flight = false;
  if (auto* failed = std::get_if<db_failure>(&outcome);
      failed && (*failed == db_failure::timeout || *failed == db_failure::unavailable) &&
      reopen(self))
    return end_patch(
      self, upload_answer{{error_code::unavailable, "the database is unavailable, retry later"},
                          {},
                          progress_of(self, creation)});
  if (auto* failed = std::get_if<db_failure>(&outcome); failed && *failed == db_failure::in_doubt) {
    st.in_doubt = true;
    log::warn("tus upload's record in doubt; asking the database what it did",
              {{"upload_id", st.info.id}});
    end_patch(self,
              upload_answer{{error_code::unavailable, "the database is unavailable, retry later"},
                            {},
                            progress_of(self, creation)});
    return ask_fate(self);
  }
  std::optional<failure> refused;
  if (auto* failed = std::get_if<db_failure>(&outcome))
    refused = *failed == db_failure::error
                ? failure{error_code::internal, "the upload could not be recorded"}
                : failure{error_code::unavailable, "the database is unavailable, retry later"};
  else if (auto* over = std::get_if<failure>(&std::get<0>(outcome)))
    refused = *over;
  if (refused) {
    // The archive is in place but unrecorded: it goes, and so does the
    // resource (a HEAD must not report a complete upload that has no object).
    remove_archive(self);
    return destroy(self, *refused);
  }
  auto& row = std::get<db::upload_row>(std::get<0>(outcome));
  st.at = phase::over;
  log::info("upload complete", {{"request_id", st.patch ? st.patch->head.request_id : ""},
                                {"upload_id", row.id},
                                {"size", row.size},
                                {"entries", row.entries},
                                {"tus", true}});
  st.registry->forget(st.info.id, self->address());
  end_patch(self, upload_answer{{}, db::to_json(row), progress_of(self, creation)});
  self->quit();
}

} // namespace portal::tus_detail

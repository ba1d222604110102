#include "actors/tus_session.hpp"

#include "actors/db_pool.hpp"
#include "actors/tus_registry.hpp"
#include "actors/tus_session_state.hpp"
#include "config/log.hpp"

#include <vector>

namespace portal::tus_detail {

failure storage_failure(const storage::storage_error& e) {
  if (e.disk_full())
    return {error_code::insufficient_storage, "the server has no room for this upload"};
  log::error("tus storage failed", {{"error", e.what()}});
  return {error_code::storage_unavailable, "storage is unavailable, retry later"};
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

void arm_idle(session_ptr self) {
  auto& st = self->state;
  self->delayed_send(self, st.limits.idle, tus_idle_atom::value, ++st.idle_generation);
}

// The partial, opened (and fsynced) once per session.
std::optional<failure> open_file(session_ptr self) {
  auto& st = self->state;
  if (st.file)
    return std::nullopt;
  try {
    st.file = storage::partial_file::open(st.limits.layout, st.info.id);
    st.durable = st.file->size();
    st.probe->upload->bytes_before.store(st.durable, std::memory_order_relaxed);
    st.probe->upload->bytes_received.store(st.durable, std::memory_order_relaxed);
    return std::nullopt;
  } catch (const storage::storage_error& e) {
    if (e.code() == std::errc::no_such_file_or_directory)
      return failure{error_code::not_found, "no such upload"};
    return storage_failure(e);
  }
}

// Replays the durable prefix from disk through a new validator and digest:
// a new session, or after a PATCH was cut back (460, 413). One buffer, read
// in chunks: nothing is held beyond it.
std::optional<failure> rebuild(session_ptr self) {
  auto& st = self->state;
  st.check = std::make_unique<storage::archive_check>(st.info.format, st.limits.archive);
  st.sha = std::make_unique<storage::sha256_hasher>();
  // Sized to what there is to replay, at most 1 MiB: a fresh upload (nothing
  // durable yet) allocates nothing.
  std::vector<char> buffer(std::min<uint64_t>(st.durable, uint64_t{1} << 20));
  uint64_t at = 0;
  try {
    while (at < st.durable) {
      auto n =
        st.file->read_at(at, buffer.data(), std::min<uint64_t>(buffer.size(), st.durable - at));
      if (n == 0)
        break;
      if (auto refused = st.check->feed(buffer.data(), n))
        return refused;
      st.sha->update(buffer.data(), n);
      at += n;
    }
  } catch (const storage::storage_error& e) {
    return storage_failure(e);
  }
  if (at > 0)
    log::info("tus validator rebuilt from the partial", {{"upload_id", st.info.id}, {"bytes", at}});
  return std::nullopt;
}

tus_progress progress_of(session_ptr self, bool created) {
  auto& st = self->state;
  return tus_progress{st.info.id, st.durable, st.info.expires_at, created, st.limits.machine_id};
}

// Answers the PATCH being served and lets its feed go.
void end_patch(session_ptr self, upload_answer answer) {
  auto& st = self->state;
  if (!st.patch)
    return;
  auto p = std::move(*st.patch);
  st.patch.reset();
  if (p.head.ticket)
    p.head.ticket->release();
  if (p.feed)
    self->send(p.feed, abort_atom::value); // it stops; its tag is stale now
  if (p.link)
    p.link->done(std::move(answer));
}

// Cuts the partial back to where the PATCH began: nothing of it counts (460,
// 413, a checksummed PATCH that did not finish).
std::optional<failure> cut_back(session_ptr self) {
  auto& st = self->state;
  try {
    st.file->cut_to(st.patch->start);
    st.file->release();
  } catch (const storage::storage_error& e) {
    return storage_failure(e);
  }
  st.durable = st.patch->start;
  st.unsynced = 0;
  return rebuild(self);
}

// What a PATCH that ends without its last byte keeps: every byte it made
// durable (SPEC §5.2), except under a checksum, which covers all or nothing.
std::optional<failure> keep_durable(session_ptr self) {
  auto& st = self->state;
  if (st.patch->checksum)
    return cut_back(self);
  try {
    st.file->sync();
  } catch (const storage::storage_error& e) {
    return storage_failure(e);
  }
  st.durable = st.file->size();
  st.unsynced = 0;
  return std::nullopt;
}

// A PATCH cut off (client gone, timeout, drain) or taken over by a newer
// request: it keeps its durable bytes and is answered with `why`.
// Upload-Expires moves at the end of every PATCH that kept the upload,
// whole or stopped (SPEC §5.2 expiration); the row follows on the side.
void move_expiry(session_ptr self) {
  auto& st = self->state;
  st.info.expires_at = now_seconds() + st.limits.expiry.count();
  auto id = st.info.id;
  auto expiry = static_cast<int64_t>(st.limits.expiry.count());
  // Nobody waits: it commits however late (the expiry the client was sent
  // must hold).
  auto req = make_db_request<int64_t>(
    std::string{db::sql::touch_tus_upload.name},
    std::chrono::steady_clock::now() + st.limits.db_deadline,
    [id, expiry](pqxx::work& tx) { return db::touch_tus_upload(tx, id, expiry); },
    [](const db_outcome<int64_t>&) {});
  req->commit_however_late();
  submit(*st.dir, std::move(req));
}

void stop_patch(session_ptr self, failure why) {
  auto& st = self->state;
  if (!st.patch)
    return;
  if (auto broken = keep_durable(self))
    return destroy(self, *broken);
  move_expiry(self);
  log::info("tus patch stopped", {{"upload_id", st.info.id},
                                  {"request_id", st.patch->head.request_id},
                                  {"offset", st.durable},
                                  {"why", to_string(why.code)}});
  end_patch(self, upload_answer{std::move(why), {}, progress_of(self, st.patch->head.creation)});
}

// The partial file goes and the registry forgets this session: the end of
// every way out but completion (a refusal, a termination).
void drop_partial(session_ptr self) {
  auto& st = self->state;
  st.file.reset();
  try {
    storage::remove_partial(st.limits.layout, st.info.id);
  } catch (const storage::storage_error& e) {
    log::error("tus partial not removed", {{"upload_id", st.info.id}, {"error", e.what()}});
  }
  st.registry->forget(st.info.id, self->address());
}

// The upload can never complete (validation failed, its file is gone...):
// the partial and the row go, then `why` is the answer (SPEC §5.2: a later
// HEAD answers 404).
void destroy(session_ptr self, failure why) {
  auto& st = self->state;
  if (st.at == phase::over)
    return;
  st.at = phase::over;
  drop_partial(self);
  log::info("tus upload refused",
            {{"upload_id", st.info.id}, {"code", to_string(why.code)}, {"offset", st.durable}});
  // The answer waits for the row's deletion, so that no later request finds it.
  std::optional<patch_state> p;
  if (st.patch) {
    p = std::move(*st.patch);
    st.patch.reset();
    if (p->feed)
      self->send(p->feed, abort_atom::value);
  }
  auto link = p ? p->link : nullptr;
  auto ticket = p ? p->head.ticket : nullptr;
  auto id = st.info.id;
  auto owner = st.info.owner.user_id;
  auto done = [link, ticket, why](const db_outcome<bool>&) {
    if (ticket)
      ticket->release();
    if (link)
      link->done(upload_answer{why, {}, tus_progress{}});
  };
  // The answer is `why`, whatever the database says: the deletion is not
  // rolled back for being late (a row would outlive its partial).
  auto req = make_db_request<bool>(
    std::string{db::sql::delete_tus_upload.name},
    std::chrono::steady_clock::now() + st.limits.db_deadline,
    [id, owner](pqxx::work& tx) { return db::delete_tus_upload(tx, id, owner); }, std::move(done));
  req->commit_however_late(db_request::awaited::yes);
  submit(*st.dir, std::move(req));
  self->quit();
}

namespace {

// ---- a PATCH ---------------------------------------------------------------------

void on_begin(session_ptr self, tus_begin& head) {
  auto& st = self->state;
  arm_idle(self);
  if (head.caller != st.info.owner.user_id)
    return head.reply(failure{error_code::not_found, "no such upload"});
  // The session's expiry is the row's: only this session moves it.
  if (st.info.expires_at <= now_seconds())
    return head.reply(failure{error_code::gone, "the upload expired"});
  if (st.at != phase::open || st.record_in_flight)
    return head.reply(failure{error_code::locked, "the upload is completing"});
  stop_patch(self, {error_code::request_timeout, "a newer request for this upload took over"});
  if (st.at != phase::open)
    return head.reply(failure{error_code::not_found, "no such upload"});
  if (auto broken = open_file(self))
    return head.reply(*broken);
  if (head.offset != st.durable)
    return head.reply(failure{error_code::offset_mismatch,
                              "Upload-Offset is " + std::to_string(head.offset) +
                                ", the upload's offset is " + std::to_string(st.durable)});
  if (head.body_length && *head.body_length > st.info.length - st.durable)
    return head.reply(failure{error_code::payload_too_large, "the body goes past Upload-Length"});
  // A judged upload (whole, kept) needs no validator: its PATCH can only be
  // empty, and one with a byte past the length cuts back and rebuilds.
  if (!st.check && !st.judged) {
    if (auto refused = rebuild(self)) {
      head.reply(*refused);
      return destroy(self, *refused);
    }
  }
  patch_state p;
  p.number = ++st.patches;
  p.start = st.durable;
  if (head.checksum) {
    p.checksum = std::make_unique<patch_digest>(head.checksum->algorithm);
    try {
      st.file->hold(); // a crash before the verdict cuts back to p.start
    } catch (const storage::storage_error& e) {
      return head.reply(storage_failure(e));
    }
  }
  auto reply = std::move(head.reply);
  p.head = std::move(head);
  st.patch = std::move(p);
  reply(st.patch->number);
}

void on_attach(session_ptr self, uint64_t n, upload_link_ptr link, upload_session_actor feed) {
  auto& st = self->state;
  if (!st.patch || st.patch->number != n || st.patch->link) {
    self->send(feed, abort_atom::value);
    link->done(upload_answer{{error_code::locked, "another request for this upload took over"},
                             {},
                             progress_of(self, false)});
    return;
  }
  st.patch->link = std::move(link);
  st.patch->feed = std::move(feed);
}

bool current(session_ptr self, uint64_t n) {
  auto& st = self->state;
  return st.at == phase::open && st.patch && st.patch->number == n && st.patch->link;
}

void on_chunk(session_ptr self, uint64_t n, const chunk_ptr& c) {
  auto& st = self->state;
  if (!current(self, n))
    return;
  auto& p = *st.patch;
  if (c->size == 0) // nothing to judge (nor, once judged, a validator to feed)
    return p.link->credit(1);
  if (st.file->size() + c->size > st.info.length) {
    if (auto broken = cut_back(self))
      return destroy(self, *broken);
    return end_patch(
      self, upload_answer{{error_code::payload_too_large, "the body goes past Upload-Length"},
                          {},
                          progress_of(self, p.head.creation)});
  }
  if (p.checksum)
    p.checksum->update(c->data.get(), c->size);
  if (auto refused = st.check->feed(c->data.get(), c->size))
    return destroy(self, refused);
  try {
    st.file->append(c->data.get(), c->size);
    st.probe->upload->bytes_received.store(st.file->size(), std::memory_order_relaxed);
    st.sha->update(c->data.get(), c->size);
    st.unsynced += c->size;
    // Progress of a long PATCH survives a power loss every sync_bytes; a
    // checksummed PATCH counts only once verified.
    if (st.unsynced >= st.limits.sync_bytes && !p.checksum) {
      st.file->sync();
      st.durable = st.file->size();
      st.unsynced = 0;
    }
  } catch (const storage::storage_error& e) {
    auto f = storage_failure(e);
    if (auto broken = keep_durable(self))
      return destroy(self, *broken);
    return end_patch(self, upload_answer{f, {}, progress_of(self, p.head.creation)});
  }
  p.link->credit(1);
}

void on_eof(session_ptr self, uint64_t n) {
  auto& st = self->state;
  if (!current(self, n))
    return;
  auto& p = *st.patch;
  if (p.checksum && p.checksum->digest() != p.head.checksum->digest) {
    if (auto broken = cut_back(self))
      return destroy(self, *broken);
    return end_patch(self, upload_answer{{error_code::checksum_mismatch,
                                          "the body does not match Upload-Checksum"},
                                         {},
                                         progress_of(self, p.head.creation)});
  }
  if (p.checksum) {
    try {
      st.file->release(); // verified: these bytes count from now on, crash or not
    } catch (const storage::storage_error& e) {
      return destroy(self, storage_failure(e));
    }
  }
  // The last byte: the commit syncs it and moves the file into archives/,
  // so the partials/ name need not be made durable first.
  if (st.file->size() == st.info.length) {
    st.durable = st.file->size();
    return complete(self);
  }
  try {
    st.file->sync();
  } catch (const storage::storage_error& e) {
    return destroy(self, storage_failure(e));
  }
  st.durable = st.file->size();
  st.unsynced = 0;
  move_expiry(self);
  end_patch(self, upload_answer{{}, {}, progress_of(self, p.head.creation)});
}

void on_abort(session_ptr self, uint64_t n) {
  if (!current(self, n))
    return;
  stop_patch(self, {error_code::client_closed, "the client went away"});
}

// ---- HEAD and termination --------------------------------------------------------

// Every byte is here but the upload object is not, yet: a HEAD answered
// with the full offset now would tell a client (tus-js-client) that it is
// done, before the record, which may fail. It is told to retry instead:
// 423, which tus-js-client retries on the same URL (any other error makes
// it start a new upload), and `push` too; then it finds the upload object,
// or the partial.
failure being_recorded() {
  return {error_code::locked, "the upload is being recorded, retry later"};
}

void on_head(session_ptr self, const tus_reply& reply) {
  auto& st = self->state;
  arm_idle(self);
  if (st.at == phase::completing) {
    if (st.in_doubt)
      ask_fate(self);
    return reply(being_recorded());
  }
  stop_patch(self, {error_code::request_timeout, "a newer request for this upload took over"});
  if (st.at == phase::over)
    return reply(failure{error_code::not_found, "no such upload"});
  if (auto broken = open_file(self))
    return reply(*broken);
  if (st.durable == st.info.length) {
    // Complete but unrecorded: a crash between the last fsync and the
    // record, or a record the database did not take (reopen).
    reply(being_recorded());
    if (!st.record_in_flight)
      complete(self);
    return;
  }
  reply(st.durable);
}

// The row is already gone (the handler deleted it): the file follows. While
// completing, the completion's transaction finds no row and undoes itself.
void on_delete(session_ptr self, const tus_reply& reply) {
  auto& st = self->state;
  if (st.at == phase::completing) {
    st.terminated = true;
    return reply(uint64_t{0});
  }
  stop_patch(self, {error_code::not_found, "the upload was terminated"});
  st.at = phase::over;
  drop_partial(self);
  reply(uint64_t{0});
  self->quit();
}

// The record answered `timeout` has been rolled back: its worker and its
// row locks are free.
void on_settled(session_ptr self) {
  auto& st = self->state;
  st.record_in_flight = false;
  if (std::exchange(st.expiry_pending, false) && st.at == phase::open)
    move_expiry(self);
}

void on_idle(session_ptr self, uint64_t generation) {
  auto& st = self->state;
  if (generation != st.idle_generation || st.at == phase::over)
    return;
  if (st.in_doubt)
    ask_fate(self);
  // A long PATCH, or a completion, is activity: look again later (a
  // completion the database did not take reopens the session, which must
  // still stop idle, so that the reaper can expire it). So is a record still
  // out (answered `timeout`, not yet rolled back): a new session would start
  // a second completion beside it, each holding a db worker (review 4: HEADs
  // then answered 503).
  if (st.patch || st.at == phase::completing || st.record_in_flight)
    return arm_idle(self);
  if (st.registry->retire(st.info.id, self->address(),
                          [self] { return self->mailbox().empty(); })) {
    log::info("tus session idle, stopped", {{"upload_id", st.info.id}, {"offset", st.durable}});
    return self->quit();
  }
  arm_idle(self);
}

session_actor::behavior_type tus_session(session_ptr self, probe_ptr probe,
                                         std::shared_ptr<actor_directory> dir,
                                         std::shared_ptr<tus_registry> registry, tus_limits limits,
                                         tus_upload_info info) {
  auto& st = self->state;
  st.probe = probe;
  st.dir = std::move(dir);
  st.registry = std::move(registry);
  st.limits = std::move(limits);
  st.info = std::move(info);
  arm_idle(self);
  return probed(
    self, probe, [=](tus_begin_atom, tus_begin& head) { on_begin(self, head); },
    [=](tus_attach_atom, uint64_t n, upload_link_ptr& link, upload_session_actor& feed) {
      on_attach(self, n, std::move(link), std::move(feed));
    },
    [=](chunk_atom, uint64_t n, const chunk_ptr& c) { on_chunk(self, n, c); },
    [=](eof_atom, uint64_t n) { on_eof(self, n); },
    [=](abort_atom, uint64_t n) { on_abort(self, n); },
    [=](tus_head_atom, const tus_reply& reply) { on_head(self, reply); },
    [=](tus_delete_atom, const tus_reply& reply) { on_delete(self, reply); },
    [=](tus_idle_atom, uint64_t generation) { on_idle(self, generation); },
    [=](recorded_atom, tus_recorded& outcome) { on_recorded(self, outcome); },
    [=](settled_atom) { on_settled(self); },
    [=](fate_atom, const tus_fate& fate) { on_fate(self, fate); });
}

} // namespace

} // namespace portal::tus_detail

namespace portal {

using tus_detail::tus_session;

tus_session_actor spawn_tus_session(caf::actor_system& sys, std::shared_ptr<actor_directory> dir,
                                    std::shared_ptr<tus_registry> registry, tus_limits limits,
                                    tus_upload_info info) {
  auto probe = std::make_shared<actor_probe>();
  probe->upload = std::make_shared<upload_progress>();
  probe->upload->id = info.id;
  probe->upload->owner = info.owner.username;
  probe->upload->filename = info.filename;
  probe->upload->bytes_expected = info.length;
  auto name = "tus_session_" + info.id;
  auto h =
    sys.spawn<caf::detached>(tus_session, probe, dir, std::move(registry), std::move(limits), info);
  // Not supervised, like a plain upload's session: its state is on disk and
  // the next request spawns a new one.
  dir->record_temporary(actor_entry{name, "tus_session", "", h.id(), 0, probe},
                        caf::actor_cast<caf::actor>(h));
  return h;
}

upload_session_actor spawn_tus_feed(caf::actor_system& sys, tus_session_actor session,
                                    uint64_t patch) {
  return sys.spawn(
    [session, patch](upload_session_actor::pointer self) -> upload_session_actor::behavior_type {
      // A session that is gone takes its feeds with it.
      self->monitor(session);
      self->set_down_handler([self](caf::down_msg&) { self->quit(); });
      return {
        [=](chunk_atom, const chunk_ptr& c) { self->send(session, chunk_atom::value, patch, c); },
        [=](eof_atom) { self->send(session, eof_atom::value, patch); },
        [=](abort_atom) {
          self->send(session, abort_atom::value, patch);
          self->quit();
        },
      };
    });
}

} // namespace portal

#include "actors/retention_reaper.hpp"

#include "actors/db_pool.hpp"
#include "actors/db_request.hpp"
#include "actors/messages.hpp"
#include "actors/storage_writer.hpp"
#include "config/log.hpp"
#include "db/tus_uploads.hpp"
#include "db/uploads.hpp"
#include "storage/partial_file.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace portal {

namespace {

struct reaper_state {
  unsigned failures = 0; // rounds in a row that could not reach the database
  const char* name = "retention_reaper";
};

// After a round that could not reach the database, the next comes soon (the
// first round runs while the db workers are still connecting at start):
// 1 s doubling to 60 s, never later than the interval.
std::chrono::seconds retry_delay(unsigned failures, std::chrono::seconds interval) {
  auto backoff = std::chrono::seconds{int64_t{1} << std::min(failures - 1, 6U)};
  return std::min({backoff, std::chrono::seconds{60}, interval});
}

using reaper_ptr = caf::stateful_actor<reaper_state>*;

caf::behavior retention_reaper(reaper_ptr self, probe_ptr probe,
                               std::shared_ptr<actor_directory> dir, reaper_options opts) {
  self->send(self, reap_atom::value);
  return probed(
    self, probe,
    [=](reap_atom) {
      auto me = caf::actor_cast<caf::actor>(self);
      auto batch = opts.batch;
      // Rows first, files after COMMIT: a round that rolls back (its
      // deadline passed) must leave every file its rows name.
      struct expired {
        std::vector<std::string> partials; // tus uploads
        std::vector<std::string> archives; // uploads
      };
      auto query = [batch, layout = opts.layout, machine = opts.machine_id, volume = opts.volume,
                    retention = opts.retention_days, live_tus = opts.live_tus](pqxx::work& tx) {
        // Read here, on the worker, right before the statement: the window
        // in which a new session could miss the list is this statement's.
        auto live = live_tus ? live_tus() : std::vector<std::string>{};
        expired found;
        found.partials = db::delete_expired_tus_uploads(tx, machine, volume.id, batch, live);
        if (!retention)
          return found;
        // Listed right before the statement, on the worker: an archive
        // committed after the listing has a row that has not expired. A
        // directory that cannot be listed leaves only a judged volume's rows.
        std::vector<std::string> here;
        try {
          here = storage::archive_ids(layout);
        } catch (const std::exception& e) {
          log::error("retention reaper could not list the archives", {{"error", e.what()}});
        }
        found.archives = db::delete_expired_uploads(tx, {volume.id, volume.judged, std::move(here)},
                                                    *retention, batch);
        return found;
      };
      // On success this runs on the db worker's thread, after COMMIT.
      auto done = [me, batch, layout = opts.layout](db_outcome<expired> outcome) {
        auto* found = std::get_if<expired>(&outcome);
        if (!found)
          return caf::anon_send(me, reaped_atom::value, std::vector<std::string>{}, false, false);
        for (auto& id : found->partials) {
          try {
            storage::remove_partial(layout, id);
            log::info("tus partial expired", {{"upload_id", id}});
          } catch (const std::exception& e) {
            log::error("tus partial not removed", {{"upload_id", id}, {"error", e.what()}});
          }
        }
        caf::anon_send(me, reaped_atom::value, found->archives, true,
                       found->partials.size() == batch);
      };
      submit(*dir, make_db_request<expired>(std::string{db::sql::delete_expired_uploads.name},
                                            std::chrono::steady_clock::now() + opts.db_deadline,
                                            std::move(query), std::move(done)));
    },
    [=](reaped_atom, const std::vector<std::string>& ids, bool ok, bool more_partials) {
      auto& failures = self->state.failures;
      if (!ok) {
        // One miss is the start-up race or a blip; two in a row are news.
        if (++failures >= 2)
          log::warn("retention reaper could not reach the database; retrying later",
                    {{"attempts", failures}});
        return self->delayed_send(self, retry_delay(failures, opts.interval), reap_atom::value);
      }
      if (failures >= 2)
        log::info("retention reaper reached the database again", {{"attempts", failures}});
      failures = 0;
      for (auto& id : ids) {
        // The row is gone (committed): the file follows.
        caf::anon_send(
          dir->find<storage_writer_actor>(storage_writer_name(id, opts.storage_writers)),
          remove_atom::value, id);
        log::info("upload expired", {{"upload_id", id}});
      }
      if (ids.size() == opts.batch || more_partials)
        return self->send(self, reap_atom::value); // more are waiting
      self->delayed_send(self, opts.interval, reap_atom::value);
    });
}

} // namespace

caf::actor spawn_retention_reaper(caf::event_based_actor* sup, probe_ptr probe,
                                  std::shared_ptr<actor_directory> dir, reaper_options opts) {
  return sup->spawn(retention_reaper, std::move(probe), std::move(dir), opts);
}

} // namespace portal

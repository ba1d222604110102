#include "actors/actor_tree.hpp"

#include "actors/archive_reader.hpp"
#include "actors/db_worker.hpp"
#include "actors/retention_reaper.hpp"
#include "actors/storage_writer.hpp"
#include "actors/supervisor.hpp"

#include <caf/all.hpp>

namespace portal {

namespace {

using namespace std::chrono_literals;

// A supervisor holds its children untyped (it only monitors, restarts and
// stops them); clients get typed handles back from the directory.
template <class Handle>
caf::actor untyped(const Handle& h) {
  return caf::actor_cast<caf::actor>(h);
}

supervisor_spec db_workers_spec(std::shared_ptr<actor_directory> dir, const config& cfg) {
  supervisor_spec spec{"db_workers", restart_strategy::one_for_one, {10, 10s}, {}};
  for (unsigned i = 1; i <= cfg.db_pool_size; ++i) {
    auto name = "db_worker_" + std::to_string(i);
    db_worker_options opts;
    opts.conninfo = cfg.database_url;
    spec.children.push_back(child_spec{name, "db_worker", restart_policy::permanent,
                                       [dir, opts, name](caf::event_based_actor* sup, probe_ptr p) {
                                         return untyped(spawn_db_worker(sup, p, dir, opts, name));
                                       }});
  }
  return spec;
}

supervisor_spec db_supervisor_spec(std::shared_ptr<actor_directory> dir,
                                   std::shared_ptr<db_pool_counts> counts, const config& cfg) {
  auto workers = cfg.db_pool_size;
  child_spec pool{"db_pool", "db_pool", restart_policy::permanent,
                  [counts, workers](caf::event_based_actor* sup, probe_ptr p) {
                    return untyped(spawn_db_pool(sup, p, counts, workers));
                  }};
  return supervisor_spec{"db_supervisor",
                         restart_strategy::rest_for_one,
                         {5, 10s},
                         {pool, supervisor_child(dir, db_workers_spec(dir, cfg))}};
}

supervisor_spec storage_supervisor_spec(const config& cfg) {
  auto layout = storage::layout_of(cfg.data_dir);
  supervisor_spec spec{"storage_supervisor", restart_strategy::one_for_one, {10, 10s}, {}};
  for (unsigned i = 1; i <= cfg.storage_writers; ++i)
    spec.children.push_back(child_spec{"storage_writer_" + std::to_string(i), "storage_writer",
                                       restart_policy::permanent,
                                       [layout](caf::event_based_actor* sup, probe_ptr p) {
                                         return untyped(spawn_storage_writer(sup, p, layout));
                                       }});
  for (unsigned i = 1; i <= 2; ++i)
    spec.children.push_back(child_spec{"archive_reader_" + std::to_string(i), "archive_reader",
                                       restart_policy::permanent,
                                       [](caf::event_based_actor* sup, probe_ptr p) {
                                         return untyped(spawn_archive_reader(sup, p));
                                       }});
  return spec;
}

} // namespace

actor_tree start_actor_tree(caf::actor_system& sys, const config& cfg, reaped_volume volume,
                            std::function<std::vector<std::string>()> live_tus,
                            heap_trim_options trim) {
  actor_tree tree;
  tree.directory = std::make_shared<actor_directory>();
  tree.db_counts = std::make_shared<db_pool_counts>();
  supervisor_spec root{
    "root",
    restart_strategy::one_for_one,
    {5, 60s},
    {supervisor_child(tree.directory, db_supervisor_spec(tree.directory, tree.db_counts, cfg)),
     supervisor_child(tree.directory, storage_supervisor_spec(cfg))}};
  // Started after both subsystems it uses, so that its first look finds them.
  // Always: tus partials expire whether or not uploads do.
  reaper_options opts{cfg.reaper_interval,
                      cfg.db_deadline,
                      cfg.storage_writers,
                      500,
                      storage::layout_of(cfg.data_dir),
                      cfg.machine_id,
                      std::move(volume),
                      cfg.retention_days,
                      std::move(live_tus)};
  root.children.push_back(
    child_spec{"retention_reaper", "retention_reaper", restart_policy::permanent,
               [dir = tree.directory, opts](caf::event_based_actor* sup, probe_ptr p) {
                 return spawn_retention_reaper(sup, p, dir, opts);
               }});
  if (trim.idle_after) // no measure of idleness (unit tests): nothing to trim by
    root.children.push_back(
      child_spec{"heap_trimmer", "heap_trimmer", restart_policy::permanent,
                 [trim = std::move(trim)](caf::event_based_actor* sup, probe_ptr p) {
                   return spawn_heap_trimmer(sup, p, trim);
                 }});
  auto names = names_started_by(root);
  tree.root = spawn_supervisor(sys, tree.directory, std::move(root));
  tree.started = tree.directory->wait_for(names, std::chrono::steady_clock::now() + 10s);
  return tree;
}

} // namespace portal

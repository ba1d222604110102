// upload-portal: one binary, the subcommands of SPEC §2. This is the entry
// point and the composition root: the one file that sees every layer.
//
//   main ── the command line: [--config FILE] COMMAND [ARGS]
//   ├── serve           composed below: configuration → actor system →
//   │                   supervision tree → listeners → drain → ordered stop
//   └── migrate, user, token, check-config, version, backup, restore, push:
//       cli/, one file each
#include "actors/actor_tree.hpp"
#include "actors/caf_error.hpp"
#include "actors/openssl_thread_hook.hpp"
#include "actors/tus_registry.hpp"
#include "cli/backup_command.hpp"
#include "cli/commands.hpp"
#include "cli/push_command.hpp"
#include "config/config.hpp"
#include "config/log.hpp"
#include "db/migrate.hpp"
#include "db/tus_uploads.hpp"
#include "db/uploads.hpp"
#include "net/connection_registry.hpp"
#include "net/drain.hpp"
#include "net/http.hpp"
#include "net/listener.hpp"
#include "net/metrics.hpp"
#include "net/router.hpp"
#include "net/tls_context.hpp"
#include "storage/data_dir.hpp"
#include "storage/data_dir_lock.hpp"
#include "storage/partial_file.hpp"
#include "storage/partial_reconcile.hpp"
#include "storage/reconcile.hpp"
#include "storage/upload_file.hpp"
#include "storage/volume_id.hpp"

#include <caf/all.hpp>
#include <pqxx/pqxx>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <sodium.h>
#include <string>
#include <thread>
#include <vector>

namespace portal {

namespace {

constexpr const char* usage = R"(usage: upload-portal [--config FILE] COMMAND [ARGS]

commands:
  serve                                   run the server until SIGTERM/SIGINT
  migrate                                 apply pending database migrations
  user add NAME [--role admin|uploader] [--password-stdin]
  user list | user disable NAME | user quota NAME BYTES|default
  token create --user NAME [--name LABEL] [--expires-in DURATION]
  token list [--user NAME] | token revoke ID | token revoke --all [--user NAME]
  backup FILE.tar.zst | restore FILE.tar.zst [--force]
  push FILE... --url URL                  upload files over tus, resuming (token: PORTAL_TOKEN)
  check-config                            print the effective configuration, secrets redacted
  version (or --version)                  version and linked library versions
  help [COMMAND]                          this text, or one command's usage
)";

constexpr const char* serve_usage = "usage: upload-portal [--config FILE] serve\n";

// ---- serve ---------------------------------------------------------------------

unsigned worker_threads() {
  return std::max(2u, std::thread::hardware_concurrency());
}

tcp::endpoint resolve(net::io_context& ioc, const listen_address& where) {
  tcp::resolver resolver{ioc};
  auto results = resolver.resolve(where.host, std::to_string(where.port),
                                  tcp::resolver::numeric_service | tcp::resolver::passive);
  return results.begin()->endpoint();
}

// How the rows of one table stand with this volume: what was taken over, and
// what is kept without its file because it records no volume.
void log_volume_verdict(std::string_view table, uint64_t claimed,
                        const std::vector<std::string>& unattributed) {
  if (claimed > 0)
    log::info(std::string{table} + " rows now record this volume", {{"rows", claimed}});
  if (!unattributed.empty())
    log::warn(std::string{table} + " rows kept without their file: they record no volume",
              {{"rows", unattributed.size()}, {"first", unattributed.front()}});
}

// The directory holds the file of none of the rows its volume id names: it
// is not that volume (a volume-id copied by hand to another directory, or
// every file of it lost). Deleting them all would make a wrong id permanent
// loss, and keeping the id would let the first upload here make the next
// start delete them; so the directory gets its own id, as a copy does, and
// those rows are left to the volume that holds them.
storage::volume_identity not_that_volume(const config& cfg, const storage::data_dir_layout& layout,
                                         std::size_t rows) {
  auto renewed = storage::renew_volume_identity(layout, cfg.machine_id);
  log::warn("this data directory holds none of the files of the rows of its volume id: it gets "
            "its own id, and those rows are left alone (deploy/README.md, \"The volume's "
            "identity\")",
            {{"volume_id", renewed.id}, {"was", renewed.copied_from}, {"rows", rows}});
  return renewed;
}

// Every start says where the database's uploads are. Rows of other volumes
// while this one holds none, or with one machine (no FLY_MACHINE_ID) at
// all, have no file this server can reach: a wrong PORTAL_DATA_DIR (an
// unmounted volume), or a volume replaced without a restore; their
// downloads fail, so it warns at every such start (nothing is deleted
// either way). A new machine's first start warns too; later ones, with
// rows of their own, say it at info.
void log_row_volumes(const config& cfg, const storage::row_volumes& rows, const std::string& here) {
  std::size_t mine = 0, elsewhere = 0, none = 0;
  for (const auto& [id, volume] : rows)
    ++(volume == here ? mine : volume.empty() ? none : elsewhere);
  boost::json::object counts{{"here", mine}, {"elsewhere", elsewhere}, {"no_volume", none}};
  if (elsewhere > 0 && (cfg.machine_id.empty() || mine == 0))
    log::warn("upload rows of other volumes: their files are not in this data directory; "
              "is PORTAL_DATA_DIR the right volume? (deploy/README.md, \"The volume's identity\")",
              counts);
  else
    log::info("upload rows by volume", counts);
}

// A tus completion cut off between its move into archives/ and its record's
// COMMIT (docs/TUS.md, Completion): its archive goes back to partials/ once
// this transaction holds its tus row, since no COMMIT of that record can land
// after (an expired row's archive is orphaned by reconcile(), as before), and
// stays where a committed record finds it while the row is locked
// (`in_flight`: the killed server's transaction still runs, and may commit).
// The upload rows are read after the locks, so a record that committed
// before them is seen.
struct settled_completions {
  storage::row_volumes rows; // every upload row and its volume
  std::vector<std::string> in_flight;
};

settled_completions settle_cut_off_completions(pqxx::transaction_base& tx,
                                               const storage::data_dir_layout& layout,
                                               const std::string& here) {
  auto archived = storage::archived_partials(layout, db::tus_volumes(tx), here);
  auto held = db::hold_tus_uploads(tx, archived);
  settled_completions settled{db::upload_volumes(tx), {}};
  std::vector<std::string> unrecorded;
  for (auto& id : archived) {
    if (settled.rows.count(id) != 0)
      continue;
    auto row = held.find(id);
    if (row == held.end())
      settled.in_flight.push_back(id);
    else if (!row->second) // not expired
      unrecorded.push_back(id);
  }
  for (auto& id : settled.in_flight)
    log::warn("tus archive kept: its record's transaction may still commit", {{"upload_id", id}});
  storage::return_unrecorded_archives(layout, unrecorded);
  return settled;
}

// SPEC §9, §11: before serving, stale temporary files go, files without a
// row go to orphans/, rows whose file is missing are deleted (audited) and
// expired tus partials go. Only rows that record this directory's volume id
// are deleted for a missing file (storage/volume_id.hpp): an empty or wrong
// directory (an unmounted volume, a mistyped PORTAL_DATA_DIR), a copy of a
// volume on another machine, or another machine's volume on the same
// database deletes none. Runs before the listener exists, so nothing else
// touches the data dir meanwhile; without a database now, nothing is
// repaired, and the next start does it.
// Returns the directory's volume id, and whether the rows were judged
// against it (not without a database now; new rows then record no volume).
// Throws std::runtime_error when the directory's volume-id cannot be read or
// made: without it the directory cannot say which rows are its own, so
// `serve` refuses to start.
reaped_volume reconcile_on_start(const config& cfg) {
  auto layout = storage::layout_of(cfg.data_dir);
  storage::volume_identity volume;
  try {
    volume = storage::open_volume_identity(layout, cfg.machine_id);
  } catch (const storage::storage_error& e) {
    throw std::runtime_error(std::string{"the data directory has no usable volume id ("} +
                             e.what() + "); see deploy/README.md, \"The volume's identity\"");
  }
  if (!volume.copied_from.empty())
    log::warn(volume.copied_from_machine.empty()
                ? "this data directory's volume-id names no machine, and this one has "
                  "FLY_MACHINE_ID: it is treated as a copy and gets its own volume id; the rows "
                  "of the old id are left alone"
                : "this data directory is a copy of another machine's: it gets its own volume "
                  "id, and the rows of the original are left to the original",
              {{"volume_id", volume.id},
               {"copied_from", volume.copied_from},
               {"copied_from_machine", volume.copied_from_machine}});
  else if (volume.created)
    log::info("a new data directory: volume id made",
              {{"volume_id", volume.id}, {"data_dir", cfg.data_dir.string()}});
  try {
    pqxx::connection conn{cfg.database_url};
    pqxx::work tx{conn};
    // Said once here; /ready says it until `migrate` has run.
    if (int at = db::applied_version(tx), needs = db::latest_migration_version(); at < needs)
      log::error("the database schema is behind this server: run upload-portal migrate",
                 {{"schema_version", at}, {"needs", needs}});
    auto settled = settle_cut_off_completions(tx, layout, volume.id);
    auto& rows = settled.rows;
    auto judged = rows; // and the archives of records that may still commit
    for (auto& id : settled.in_flight)
      judged.emplace(id, volume.id);
    auto report = storage::reconcile(layout, judged, volume.id);
    for (auto& id : db::delete_expired_tus_uploads(tx, cfg.machine_id, volume.id, 1000000, {})) {
      storage::remove_partial(layout, id);
      log::info("tus partial expired", {{"upload_id", id}});
    }
    auto tus_rows = db::tus_volumes(tx);
    for (auto& id : settled.in_flight)
      tus_rows.erase(id); // not a missing partial: its record may still commit
    auto partials = storage::reconcile_partials(layout, tus_rows, volume.id);
    if (!report.holds_any && !partials.holds_any &&
        (!report.missing_files.empty() || !partials.missing.empty())) {
      volume = not_that_volume(cfg, layout, report.missing_files.size() + partials.missing.size());
      report.missing_files.clear();
      partials.missing.clear();
    }
    log_row_volumes(cfg, rows, volume.id);

    for (auto& id : db::delete_missing_uploads(tx, volume.id, report.missing_files))
      log::warn("upload row deleted: its archive file is missing", {{"upload_id", id}});
    log_volume_verdict("upload", db::claim_uploads(tx, volume.id, report.claimed),
                       report.unattributed);
    for (auto& id : db::delete_missing_tus_uploads(tx, volume.id, cfg.machine_id, partials.missing))
      log::warn("tus row deleted: its partial is missing", {{"upload_id", id}});
    log_volume_verdict("tus", db::claim_tus_uploads(tx, volume.id, partials.claimed),
                       partials.unattributed);
    tx.commit();
  } catch (const std::exception& e) {
    // Unjudged, the id may be one copied by hand to the wrong directory:
    // rows made now record none, and the next start that judges the
    // directory claims them for the volume that holds their files.
    log::warn("start-up reconciliation skipped: new rows record no volume until a start "
              "completes it",
              {{"error", e.what()}});
    return {volume.id, false};
  }
  return {volume.id, true};
}

void tune_scheduler(caf::actor_system_config& caf_cfg) {
  caf_cfg.set("scheduler.max-threads", worker_threads());
  // Unlimited by default: one busy actor would starve the others.
  caf_cfg.set("scheduler.max-throughput", 100);
  // The default work-stealing policy polls idle workers with 50 µs sleeps,
  // which costs more CPU than the uploads themselves on a small machine
  // (measured: see bench/RESULTS.md); sharing blocks idle workers instead.
  caf_cfg.set("scheduler.policy", caf::atom("sharing"));
}

// Returns the process exit code: 0 after a drain, 1 when the root supervisor
// gave up. Throws config_error for a configuration `serve` refuses.
int serve(const config& cfg) {
  for (auto& warning : check_serve_rules(cfg))
    log::warn(warning);
  // Before anything else: a certificate or key that cannot be used is a
  // configuration error, refused at once (exit 1, one line).
  std::unique_ptr<net::ssl::context> tls;
  if (!cfg.tls_cert.empty())
    tls = make_tls_context(cfg.tls_cert, cfg.tls_key);
  // libpq waits this long for a database that does not answer a connect.
  ::setenv("PGCONNECT_TIMEOUT", "5", 0);
  // The lock before anything else touches the directory, and held until the
  // process ends: refused (exit 1, one line) while another serve runs there.
  // Only a missing root is made first, the lock file's home.
  std::filesystem::create_directories(cfg.data_dir);
  storage::data_dir_lock data_dir_lock{cfg.data_dir};
  storage::prepare_data_dir(cfg.data_dir);
  const auto volume = reconcile_on_start(cfg);
  // Unjudged, the id may be one copied by hand to the wrong directory.
  const auto volume_id = volume.judged ? volume.id : std::string{};

  // Declared first, destroyed last: sessions still queued in the loop hold
  // references to the registry.
  connection_registry registry;
  net::io_context ioc{static_cast<int>(worker_threads())};
  int exit_code = 0;
  {
    caf::actor_system_config caf_cfg;
    tune_scheduler(caf_cfg);
    register_error_codes(caf_cfg);
    caf_cfg.add_thread_hook<openssl_thread_hook>();
    caf::actor_system sys{caf_cfg};
    auto tus = std::make_shared<tus_registry>();
    auto admission = std::make_shared<upload_admission>(
      admission_limits{cfg.uploads_per_user, cfg.uploads_total, cfg.upload_starts_per_minute});
    auto chunks = std::make_shared<chunk_pool>(cfg.chunk_bytes, cfg.buffer_budget_bytes);
    heap_trim_options trim;
    trim.idle_after = [admission] { return admission->idle_after(); };
    trim.release_caches = [chunks] { chunks->release_free(); };
    auto tree = start_actor_tree(
      sys, cfg, volume, [tus] { return tus->live_ids(); }, trim);
    if (!tree.started)
      log::error("the actor tree did not start within 10 s; serving anyway");
    auto stats = std::make_shared<metrics>(
      metrics_sources{tree.directory, tree.db_counts, admission, &registry, cfg.data_dir});
    auto logins = std::make_shared<token_buckets>(cfg.logins_per_minute, std::chrono::minutes(1));
    services svc{cfg,      sys, tree.directory, tree.db_counts, chunks, admission, stats, logins,
                 dispatch, tus, volume_id};
    services scrape_svc = svc;
    scrape_svc.route = dispatch_metrics_only;

    // Only the main listener speaks TLS; the metrics scraper stays on the
    // private network, in plain HTTP.
    auto lst = std::make_shared<listener>(ioc, resolve(ioc, cfg.listen), svc, registry, tls.get());
    std::vector<std::shared_ptr<listener>> listeners{lst};
    if (cfg.metrics_listen)
      listeners.push_back(
        std::make_shared<listener>(ioc, resolve(ioc, *cfg.metrics_listen), scrape_svc, registry));
    drain shutdown{ioc, cfg.drain, registry, listeners};
    net::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](beast::error_code ec, int sig) {
      if (!ec)
        shutdown.start(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    });
    // The root supervisor gives up only when restarts cannot help: then the
    // process exits non-zero and the platform restarts it.
    caf::actor_cast<caf::abstract_actor*>(tree.root)->attach_functor([&](const caf::error& reason) {
      if (!reason || reason == caf::exit_reason::user_shutdown)
        return; // our own shutdown
      net::post(ioc, [&, why = sys.render(reason)] {
        log::error("root supervisor stopped", {{"reason", why}});
        exit_code = 1;
        shutdown.start("root supervisor stopped");
      });
    });
    for (auto& l : listeners)
      l->run();
    if (cfg.metrics_listen)
      log::info("metrics listening",
                {{"address", cfg.metrics_listen->host}, {"port", listeners.back()->port()}});
    log::info("listening",
              {{"address", cfg.listen.host},
               {"port", lst->port()},
               {"tls", tls != nullptr},
               {"env", cfg.env == environment::production ? "production" : "development"}});

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < worker_threads(); ++i)
      threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : threads)
      t.join();

    // The loop is stopped: this thread alone touches the sessions now.
    registry.for_each([](const std::shared_ptr<connection>& c) { c->abort_upload_now(); });
    // tus sessions keep what they made durable (SPEC §9: partials stay resumable).
    tus->stop_all();
    log::info("connections closed, stopping actors");
    caf::anon_send_exit(tree.root, caf::exit_reason::user_shutdown);
  } // ~actor_system waits for every actor
  log::info("stopped", {{"exit_code", exit_code}});
  return exit_code;
}

int serve_command(const cli::config_loader& load, const cli::args& words) {
  return cli::guarded("serve", serve_usage, [&] {
    cli::expect_positional(cli::parse_args(words, 0), 0);
    try {
      return serve(load());
    } catch (const config_error& e) {
      log::error("refusing to start", {{"error", e.what()}});
      throw;
    }
  });
}

// ---- the command line -------------------------------------------------------------

struct command {
  std::string_view name;
  int (*run)(const cli::config_loader& load, const cli::args& words);
};

constexpr command commands[] = {
  {"serve", serve_command},
  {"migrate", cli::migrate_command},
  {"user", cli::user_command},
  {"token", cli::token_command},
  {"check-config", cli::check_config_command},
  {"version", cli::version_command},
  {"backup", cli::backup_command},
  {"restore", cli::restore_command},
  {"push", cli::push_command},
};

// `[--config FILE] COMMAND [ARGS]`: the options before the command are the
// program's, those after it the command's.
int run(const cli::args& words) {
  return cli::guarded("", usage, [&] {
    std::optional<std::filesystem::path> config_file;
    std::size_t at = 0;
    for (; at < words.size() && words[at].rfind('-', 0) == 0; ++at) {
      const std::string& word = words[at];
      if (word == "--help" || word == "-h") {
        std::cout << usage;
        return cli::exit_ok;
      }
      // What every other tool answers to; the command prints the same.
      if (word == "--version" || word == "-V")
        return cli::version_command([] { return config{}; }, {});
      if (word != "--config" && word.rfind("--config=", 0) != 0)
        throw cli::usage_error("unknown option " + word);
      if (config_file)
        throw cli::usage_error("--config given twice");
      if (word != "--config")
        config_file = word.substr(word.find('=') + 1);
      else if (++at < words.size())
        config_file = words[at];
      else
        throw cli::usage_error("--config needs a FILE");
    }
    if (at == words.size())
      throw cli::usage_error("missing command");
    std::string name = words[at];
    cli::args rest(words.begin() + static_cast<std::ptrdiff_t>(at) + 1, words.end());
    if (name == "help") {
      if (rest.empty() || rest.front() == "help") {
        std::cout << usage;
        return cli::exit_ok;
      }
      // `help COMMAND` is `COMMAND --help`.
      name = rest.front();
      rest = {"--help"};
    }
    auto load = [config_file] { return load_config(config_file, process_env()); };
    for (const auto& c : commands)
      if (c.name == name)
        return c.run(load, rest);
    throw cli::usage_error("unknown command " + name);
  });
}

} // namespace

} // namespace portal

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::cerr << "upload-portal: libsodium failed to initialise\n";
    return portal::cli::exit_failure;
  }
  return portal::run(portal::cli::args(argv + 1, argv + argc));
}

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
#include "storage/partial_file.hpp"
#include "storage/partial_reconcile.hpp"
#include "storage/reconcile.hpp"

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

// Every row without its file is what an empty or wrong data directory looks
// like (an unmounted volume, a mistyped PORTAL_DATA_DIR), not a loss to
// repair: deleting every row would make it permanent, so none is deleted and
// the operator decides. Only a first start there is caught: once a file is
// stored in the wrong directory, the next start deletes the other rows (a
// data-directory identity would catch that; docs/ARCHITECTURE.md).
bool wrong_data_dir(const config& cfg, std::string_view kind, std::size_t rows,
                    std::size_t missing) {
  if (rows == 0 || missing < rows)
    return false;
  log::error(std::string{"no "} + std::string{kind} +
               " row deleted: none has its file; is PORTAL_DATA_DIR the right volume?",
             {{"rows", rows}, {"data_dir", cfg.data_dir.string()}});
  return true;
}

// SPEC §9: before serving, stale temporary files go, files without a row go
// to orphans/, rows without a file are deleted (audited). Runs before the
// listener exists, so nothing else touches the data dir meanwhile.
// Without a database now, nothing is repaired; the next start does it.
// Assumes one machine per volume and per database (the default deploy).
void reconcile_on_start(const config& cfg) {
  try {
    pqxx::connection conn{cfg.database_url};
    pqxx::work tx{conn};
    auto rows = db::all_upload_ids(tx);
    auto report = storage::reconcile(storage::layout_of(cfg.data_dir), rows);
    if (!wrong_data_dir(cfg, "upload", rows.size(), report.missing_files.size()))
      db::delete_missing_uploads(tx, report.missing_files);
    // tus partials of this machine (SPEC §9: resume expiry of tus partials):
    // expired ones go, files without a row go, rows without a file go.
    auto layout = storage::layout_of(cfg.data_dir);
    for (auto& id : db::delete_expired_tus_uploads(tx, cfg.machine_id, 1000000, {})) {
      storage::remove_partial(layout, id);
      log::info("tus partial expired", {{"upload_id", id}});
    }
    auto ids = db::tus_ids_of_machine(tx, cfg.machine_id);
    auto partials =
      storage::reconcile_partials(layout, std::set<std::string>(ids.begin(), ids.end()));
    if (!wrong_data_dir(cfg, "tus", ids.size(), partials.missing.size()))
      db::delete_tus_rows(tx, partials.missing);
    tx.commit();
  } catch (const std::exception& e) {
    log::warn("start-up reconciliation skipped", {{"error", e.what()}});
  }
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
  storage::prepare_data_dir(cfg.data_dir);
  reconcile_on_start(cfg);

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
      sys, cfg, [tus] { return tus->live_ids(); }, trim);
    if (!tree.started)
      log::error("the actor tree did not start within 10 s; serving anyway");
    auto stats = std::make_shared<metrics>(
      metrics_sources{tree.directory, tree.db_counts, admission, &registry, cfg.data_dir});
    auto logins = std::make_shared<token_buckets>(cfg.logins_per_minute, std::chrono::minutes(1));
    services svc{cfg,       sys,   tree.directory, tree.db_counts, chunks,
                 admission, stats, logins,         dispatch,       tus};
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

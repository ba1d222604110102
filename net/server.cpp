#include "net/server.hpp"

#include "actors/actor_tree.hpp"
#include "actors/caf_error.hpp"
#include "config/log.hpp"
#include "db/uploads.hpp"
#include "net/connection_registry.hpp"
#include "net/http.hpp"
#include "net/listener.hpp"
#include "net/metrics.hpp"
#include "net/router.hpp"
#include "net/tls_context.hpp"
#include "storage/data_dir.hpp"
#include "storage/reconcile.hpp"

#include <caf/all.hpp>

#include <csignal>
#include <cstdlib>
#include <thread>
#include <vector>

namespace portal {

namespace {

using namespace std::chrono_literals;

tcp::endpoint resolve(net::io_context& ioc, const listen_address& where) {
  tcp::resolver resolver{ioc};
  auto results = resolver.resolve(where.host, std::to_string(where.port),
                                  tcp::resolver::numeric_service | tcp::resolver::passive);
  return results.begin()->endpoint();
}

unsigned worker_threads() {
  return std::max(2u, std::thread::hardware_concurrency());
}

// Stop accepting, close idle connections, wait for busy ones up to the drain
// deadline, then stop the event loop.
class drain {
public:
  drain(net::io_context& ioc, const config& cfg, connection_registry& registry,
        std::vector<std::shared_ptr<listener>> listeners)
    : timer_(ioc), ioc_(ioc), cfg_(cfg), registry_(registry), listeners_(std::move(listeners)) {}

  void start(const char* why) {
    if (started_)
      return;
    started_ = true;
    deadline_ = std::chrono::steady_clock::now() + cfg_.drain;
    log::info("shutting down", {{"reason", why},
                                {"open_connections", registry_.size()},
                                {"drain_seconds", cfg_.drain.count()}});
    for (auto& l : listeners_)
      l->stop();
    registry_.for_each([](const std::shared_ptr<connection>& c) { c->close_if_idle(); });
    poll();
  }

private:
  // The drain has no event to wait for, only a count that falls: checked
  // every 50 ms until zero or the deadline.
  void poll() {
    auto open = registry_.size();
    if (open == 0 || std::chrono::steady_clock::now() >= deadline_) {
      if (open > 0)
        log::warn("drain deadline passed, aborting connections", {{"open_connections", open}});
      ioc_.stop();
      return;
    }
    timer_.expires_after(50ms);
    timer_.async_wait([this](beast::error_code) { poll(); });
  }

  net::steady_timer timer_;
  net::io_context& ioc_;
  const config& cfg_;
  connection_registry& registry_;
  std::vector<std::shared_ptr<listener>> listeners_;
  bool started_ = false;
  std::chrono::steady_clock::time_point deadline_;
};

// SPEC §9: before serving, stale temporary files go, files without a row go
// to orphans/, rows without a file are deleted (audited). Runs before the
// listener exists, so nothing else touches the data dir meanwhile.
// Without a database now, nothing is repaired; the next start does it.
// Assumes one machine per volume and per database (the default deploy).
void reconcile_on_start(const config& cfg) {
  try {
    pqxx::connection conn{cfg.database_url};
    pqxx::work tx{conn};
    auto report = storage::reconcile(storage::layout_of(cfg.data_dir), db::all_upload_ids(tx));
    db::delete_missing_uploads(tx, report.missing_files);
    tx.commit();
  } catch (const std::exception& e) {
    log::warn("start-up reconciliation skipped", {{"error", e.what()}});
  }
}

} // namespace

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
    caf_cfg.set("scheduler.max-threads", worker_threads());
    // Unlimited by default: one busy actor would starve the others.
    caf_cfg.set("scheduler.max-throughput", 100);
    // The default work-stealing policy polls idle workers with 50 µs sleeps,
    // which costs more CPU than the uploads themselves on a small machine
    // (measured: see bench/RESULTS.md); sharing blocks idle workers instead.
    caf_cfg.set("scheduler.policy", caf::atom("sharing"));
    register_error_codes(caf_cfg);
    caf::actor_system sys{caf_cfg};
    auto tree = start_actor_tree(sys, cfg);
    auto chunks = std::make_shared<chunk_pool>(cfg.chunk_bytes, cfg.buffer_budget_bytes);
    auto admission = std::make_shared<upload_admission>(
      admission_limits{cfg.uploads_per_user, cfg.uploads_total, cfg.upload_starts_per_minute});
    auto stats = std::make_shared<metrics>(
      metrics_sources{tree.directory, tree.db_counts, admission, &registry, cfg.data_dir});
    auto logins = std::make_shared<token_buckets>(cfg.logins_per_minute, std::chrono::minutes(1));
    services svc{cfg,       sys,   tree.directory, tree.db_counts, chunks,
                 admission, stats, logins,         dispatch};
    services scrape_svc = svc;
    scrape_svc.route = dispatch_metrics_only;

    // Only the main listener speaks TLS; the metrics scraper stays on the
    // private network, in plain HTTP.
    auto lst = std::make_shared<listener>(ioc, resolve(ioc, cfg.listen), svc, registry, tls.get());
    std::vector<std::shared_ptr<listener>> listeners{lst};
    if (cfg.metrics_listen)
      listeners.push_back(
        std::make_shared<listener>(ioc, resolve(ioc, *cfg.metrics_listen), scrape_svc, registry));
    drain shutdown{ioc, cfg, registry, listeners};
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
    log::info("connections closed, stopping actors");
    caf::anon_send_exit(tree.root, caf::exit_reason::user_shutdown);
  } // ~actor_system waits for every actor
  log::info("stopped", {{"exit_code", exit_code}});
  return exit_code;
}

} // namespace portal

// SPEC §7 metrics in the Prometheus text format, built with prometheus-cpp.
//
// Two kinds of figures: event counters the connections bump as things
// happen (requests, upload outcomes, bytes: one relaxed atomic per event,
// the per-read byte counter resolved once), and gauges read when scraped
// from what already counts itself (actor probes in the directory, the
// database pool, upload admission, open connections, free space).
// docs/METRICS.md lists every name, and tusd's counterparts.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/db_pool.hpp"
#include "actors/upload_admission.hpp"
#include "net/connection_registry.hpp"
#include "net/http.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace portal {

struct metrics_sources {
  std::shared_ptr<actor_directory> directory;
  std::shared_ptr<db_pool_counts> db_counts;
  std::shared_ptr<upload_admission> admission;
  const connection_registry* connections = nullptr;
  std::filesystem::path data_dir;
};

class metrics {
public:
  explicit metrics(metrics_sources sources);

  void request_done(std::string_view method, unsigned status);
  void upload_started();
  void upload_bytes(uint64_t n);
  // The upload's final status: 201, a refusal, a failure, or 499/408 when
  // the client went away or fell silent.
  // `recorded`: the answer carries a recorded upload (a PUT's 201, a tus
  // PATCH's or POST's 204/201 with the last byte).
  void upload_ended(unsigned status, std::chrono::duration<double> took, bool recorded = false);
  void upload_deleted();

  std::string render() const; // the Prometheus text exposition format

private:
  metrics_sources sources_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Counter>& uploads_;
  prometheus::Counter& upload_bytes_;
  prometheus::Counter& created_;
  prometheus::Counter& finished_;
  prometheus::Counter& terminated_;
  prometheus::Histogram& duration_;
};

} // namespace portal

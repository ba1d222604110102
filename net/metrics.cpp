#include "net/metrics.hpp"

#include "storage/data_dir.hpp"

#include <prometheus/client_metric.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <map>

namespace portal {

namespace {

namespace prom = prometheus;

// Known methods keep their name; anything else is "other", so that a client
// cannot grow the label set.
std::string method_label(std::string_view method) {
  static const std::array<std::string_view, 9> known{
    "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"};
  for (auto m : known)
    if (m == method)
      return std::string{m};
  return "other";
}

const char* upload_result(unsigned status) {
  if (status >= 200 && status < 300)
    return "completed";
  if (status == 408 || status == 499)
    return "aborted"; // the client fell silent or went away
  if (status >= 500)
    return "failed";
  return "rejected"; // validation, limits, auth: 4xx
}

prom::MetricFamily family(std::string name, std::string help, prom::MetricType type) {
  prom::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

prom::ClientMetric gauge(double value, std::vector<prom::ClientMetric::Label> labels = {}) {
  prom::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

prom::ClientMetric counter(double value, std::vector<prom::ClientMetric::Label> labels = {}) {
  prom::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  return m;
}

// Upload durations from 50 ms to ~30 min.
prom::Histogram::BucketBoundaries duration_buckets() {
  return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
}

} // namespace

metrics::metrics(metrics_sources sources)
  : sources_(std::move(sources)), registry_(std::make_shared<prom::Registry>()),
    requests_(prom::BuildCounter()
                .Name("portal_http_requests_total")
                .Help("HTTP requests answered, by method and status code")
                .Register(*registry_)),
    errors_(prom::BuildCounter()
              .Name("portal_http_errors_total")
              .Help("HTTP requests answered with a 4xx or 5xx status, by code")
              .Register(*registry_)),
    uploads_(prom::BuildCounter()
               .Name("portal_uploads_total")
               .Help("Upload requests ended, by result: completed, rejected (validation, limits, "
                     "auth), failed (server-side), aborted (client gone or silent)")
               .Register(*registry_)),
    upload_bytes_(prom::BuildCounter()
                    .Name("portal_upload_bytes_total")
                    .Help("Upload body bytes received")
                    .Register(*registry_)
                    .Add({})),
    created_(prom::BuildCounter()
               .Name("portal_uploads_created_total")
               .Help("Uploads admitted and started")
               .Register(*registry_)
               .Add({})),
    finished_(prom::BuildCounter()
                .Name("portal_uploads_finished_total")
                .Help("Uploads stored and recorded (answered 201)")
                .Register(*registry_)
                .Add({})),
    terminated_(prom::BuildCounter()
                  .Name("portal_uploads_terminated_total")
                  .Help("Stored uploads deleted through the API")
                  .Register(*registry_)
                  .Add({})),
    duration_(prom::BuildHistogram()
                .Name("portal_upload_duration_seconds")
                .Help("Time from an upload's request head to its answer")
                .Register(*registry_)
                .Add({}, duration_buckets())) {
  for (auto result : {"completed", "rejected", "failed", "aborted"})
    uploads_.Add({{"result", result}});
}

void metrics::request_done(std::string_view method, unsigned status) {
  auto code = std::to_string(status);
  requests_.Add({{"method", method_label(method)}, {"code", code}}).Increment();
  if (status >= 400)
    errors_.Add({{"code", code}}).Increment();
}

void metrics::upload_started() {
  created_.Increment();
}

void metrics::upload_bytes(uint64_t n) {
  upload_bytes_.Increment(static_cast<double>(n));
}

void metrics::upload_ended(unsigned status, std::chrono::duration<double> took, bool recorded) {
  uploads_.Add({{"result", upload_result(status)}}).Increment();
  if (recorded)
    finished_.Increment();
  duration_.Observe(took.count());
}

void metrics::upload_deleted() {
  terminated_.Increment();
}

std::string metrics::render() const {
  auto families = registry_->Collect();

  auto active = family("portal_uploads_active", "Uploads in progress", prom::MetricType::Gauge);
  active.metric.push_back(gauge(sources_.admission->active()));
  families.push_back(std::move(active));

  auto open = family("portal_connections_open", "Open client connections", prom::MetricType::Gauge);
  open.metric.push_back(
    gauge(sources_.connections ? static_cast<double>(sources_.connections->size()) : 0.0));
  families.push_back(std::move(open));

  auto db = family("portal_db_connections", "Database worker connections by state",
                   prom::MetricType::Gauge);
  db.metric.push_back(gauge(sources_.db_counts->idle.load(), {{"state", "idle"}}));
  db.metric.push_back(gauge(sources_.db_counts->busy.load(), {{"state", "busy"}}));
  db.metric.push_back(gauge(sources_.db_counts->disconnected.load(), {{"state", "disconnected"}}));
  families.push_back(std::move(db));

  auto free = family("portal_storage_free_bytes", "Bytes available in PORTAL_DATA_DIR",
                     prom::MetricType::Gauge);
  double free_bytes = 0;
  try {
    free_bytes = static_cast<double>(storage::free_bytes(sources_.data_dir));
  } catch (const std::exception&) {
    // reported as 0: the data dir is unreadable, which /ready names
  }
  free.metric.push_back(gauge(free_bytes));
  families.push_back(std::move(free));

  // Long-lived actors by name; per-upload actors summed by kind, so that the
  // label set stays bounded however many uploads there are.
  auto mailbox =
    family("portal_actor_mailbox_size", "Messages queued for an actor (as it last saw its mailbox)",
           prom::MetricType::Gauge);
  auto handled =
    family("portal_actor_messages_total", "Messages an actor handled", prom::MetricType::Counter);
  auto restarts = family("portal_actor_restarts_total", "Restarts of an actor by its supervisor",
                         prom::MetricType::Counter);
  auto crashes = family("portal_actor_crashes_total",
                        "Abnormal exits of per-upload actors (never restarted), by kind",
                        prom::MetricType::Counter);
  // (A sum of live actors' message counts would fall when one ends: not a
  // counter, so per-upload actors only show their mailboxes.)
  // Every kind of per-upload actor has its series from the start, at 0.
  constexpr const char* per_upload_kinds[] = {"upload_session", "archive_validator", "tus_session"};
  std::map<std::string, double> queued_by_kind;
  for (auto kind : per_upload_kinds)
    queued_by_kind[kind] = 0;
  for (auto& e : sources_.directory->entries()) {
    double queued =
      e.probe ? static_cast<double>(e.probe->mailbox.load(std::memory_order_relaxed)) : 0.0;
    if (e.temporary) {
      queued_by_kind[e.kind] += queued;
      continue;
    }
    double messages =
      e.probe ? static_cast<double>(e.probe->messages.load(std::memory_order_relaxed)) : 0.0;
    mailbox.metric.push_back(gauge(queued, {{"actor", e.name}}));
    handled.metric.push_back(counter(messages, {{"actor", e.name}}));
    restarts.metric.push_back(counter(static_cast<double>(e.restarts), {{"actor", e.name}}));
  }
  for (auto& [kind, queued] : queued_by_kind)
    mailbox.metric.push_back(gauge(queued, {{"actor", kind}}));
  auto crashed = sources_.directory->crashes();
  for (auto kind : per_upload_kinds)
    crashes.metric.push_back(counter(static_cast<double>(crashed[kind]), {{"kind", kind}}));
  families.push_back(std::move(mailbox));
  families.push_back(std::move(handled));
  families.push_back(std::move(restarts));
  families.push_back(std::move(crashes));

  return prom::TextSerializer{}.Serialize(families);
}

} // namespace portal

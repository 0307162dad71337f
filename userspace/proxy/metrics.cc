#include "proxy/metrics.h"

#include <fmt/format.h>

#include <tuple>

#include "metrics/prometheus_text.h"

namespace sluice::proxy {

using metrics::Labels;
using metrics::MetricType;
using metrics::PrometheusText;

uint32_t WorkerMetrics::intern(std::string_view s) {
  auto it = ids_.find(s);
  if (it != ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(s);
  ids_.emplace(std::string(s), id);
  return id;
}

void WorkerMetrics::record_request(const RequestLabels& l, unsigned code, std::string_view flags, double ms) {
  std::lock_guard lock(mu_);
  RequestKey key{intern(l.service), intern(l.service_name), intern(l.namespace_), intern(l.version),
                 intern(l.workload), code, intern(flags), l.port, static_cast<uint32_t>(l.grpc_status + 1)};
  auto& s = requests_[key];
  ++s.count;
  s.sum_ms += ms;
  size_t i = 0;
  while (i < kDurationBucketsMs.size() && ms > kDurationBucketsMs[i]) ++i;
  ++s.buckets[i];
}

void WorkerMetrics::add(ProxyCounter counter, std::string_view service, std::string_view workload, int64_t delta,
                        std::string_view version) {
  std::lock_guard lock(mu_);
  counters_[{static_cast<uint32_t>(counter), intern(service), intern(workload), intern(version)}] += delta;
}

namespace {

struct LabelSet {
  std::string service, name, ns, version, workload, flags;
  unsigned code;
  uint32_t grpc_status;   // + 1; 0: not a gRPC request
  auto operator<=>(const LabelSet&) const = default;
};

// The sluice_* counters of ProxyCounter: name, type, help and an extra label
// per counter, declared once here and rendered below.
struct CounterFamily {
  std::string_view name;
  MetricType type;
  std::string_view help;
  std::string_view kind;   // the `kind` label's value, or empty
};
constexpr CounterFamily kCounterFamilies[] = {
    {"sluice_retries_total", MetricType::Counter, "Retries sent upstream", {}},
    {"sluice_faults_injected_total", MetricType::Counter, "Faults injected by kind", "abort"},
    {"sluice_faults_injected_total", MetricType::Counter, "Faults injected by kind", "delay"},
    {"sluice_outlier_ejections_total", MetricType::Counter, "Hosts ejected by outlier detection", {}},
    {"sluice_pool_overflows_total", MetricType::Counter, "Requests refused by a circuit breaker", {}},
    {"sluice_retry_overflows_total", MetricType::Counter, "Retries not sent: maxRetries reached", {}},
    {"sluice_mirror_requests_total", MetricType::Counter, "Mirrored requests sent", {}},
    {"sluice_request_body_over_limit_total", MetricType::Counter, "Request bodies larger than the buffer limit", {}},
    {"sluice_retries_body_not_kept_total", MetricType::Counter, "Retries not sent: the body was not kept", {}},
    {"sluice_mirror_body_not_kept_total", MetricType::Counter, "Mirrors not sent: the body was not kept", {}},
    {"sluice_upstream_connections_opened_total", MetricType::Counter, "Upstream connections opened", {}},
    {"sluice_upstream_connections_active", MetricType::Gauge, "Upstream connections open", {}},
    {"sluice_upstream_connections_max_duration_reached_total", MetricType::Counter,
     "Upstream connections that reached maxConnectionDuration", {}},
    {"sluice_request_timeouts_total", MetricType::Counter, "Requests whose body did not arrive within the request timeout", {}},
    {"sluice_stream_idle_timeouts_total", MetricType::Counter, "Requests ended by the stream idle timeout", {}},
    {"sluice_slot_limit_refusals_total", MetricType::Counter, "Refused at a worker's slot limit, by kind", "connection"},
    {"sluice_slot_limit_refusals_total", MetricType::Counter, "Refused at a worker's slot limit, by kind", "stream"},
    {"sluice_slot_limit_refusals_total", MetricType::Counter, "Refused at a worker's slot limit, by kind", "upstream"},
};
static_assert(std::size(kCounterFamilies) == static_cast<size_t>(ProxyCounter::kCount));

}  // namespace

std::string WorkerMetrics::render_prometheus(std::span<const WorkerMetrics* const> workers) {
  struct Summed {
    uint64_t count = 0;
    double sum_ms = 0;
    std::array<uint64_t, kDurationBucketsMs.size() + 1> buckets{};
  };
  std::map<LabelSet, Summed> requests;
  std::map<std::tuple<uint32_t, std::string, std::string, std::string>, int64_t> counters;
  for (const auto* w : workers) {
    std::lock_guard lock(w->mu_);
    for (const auto& [k, s] : w->requests_) {
      LabelSet l{w->names_[k[0]], w->names_[k[1]], w->names_[k[2]], w->names_[k[3]],
                 w->names_[k[4]], w->names_[k[6]], k[5], k[8]};
      auto& t = requests[l];
      t.count += s.count;
      t.sum_ms += s.sum_ms;
      for (size_t i = 0; i < s.buckets.size(); ++i) t.buckets[i] += s.buckets[i];
    }
    for (const auto& [k, v] : w->counters_) counters[{k[0], w->names_[k[1]], w->names_[k[2]], w->names_[k[3]]}] += v;
  }

  PrometheusText out;
  auto labels = [](const LabelSet& l) {
    Labels s;
    s.add("reporter", "waypoint")
        .add("request_protocol", l.grpc_status == 0 ? "http" : "grpc")
        .add("grpc_response_status", l.grpc_status == 0 ? std::string() : std::to_string(l.grpc_status - 1))
        .add("destination_service", l.service)
        .add("destination_service_name", l.name)
        .add("destination_service_namespace", l.ns)
        .add("destination_version", l.version)
        .add("destination_workload", l.workload)
        .add("response_code", l.code)
        .add("response_flags", l.flags);
    return s;
  };
  out.family("istio_requests_total", MetricType::Counter, "Requests proxied, by destination and response code.");
  for (const auto& [l, s] : requests) out.sample("istio_requests_total", labels(l), s.count);
  out.family("istio_request_duration_milliseconds", MetricType::Histogram,
             "Request duration, first request byte to last response byte.");
  for (const auto& [l, s] : requests)
    out.histogram("istio_request_duration_milliseconds", labels(l), kDurationBucketsMs, s.buckets, s.sum_ms, s.count);

  uint32_t last = UINT32_MAX;
  for (const auto& [k, v] : counters) {
    const auto& [counter, service, workload, version] = k;
    const CounterFamily& f = kCounterFamilies[counter];
    if (last == UINT32_MAX || kCounterFamilies[last].name != f.name) out.family(f.name, f.type, f.help);
    last = counter;
    Labels l;
    l.add("destination_service", service);
    if (!version.empty()) l.add("destination_version", version);
    l.add("destination_workload", workload);
    if (!f.kind.empty()) l.add("kind", f.kind);
    out.sample(f.name, l, v);
  }
  return out.take();
}

std::string render_cluster_gauges(std::span<const ClusterGauges> clusters) {
  struct Family {
    std::string_view name, help;
    int64_t ClusterGauges::*value;
  };
  static constexpr Family kFamilies[] = {
      {"sluice_cluster_active_requests", "Requests dispatched to the subset cluster and not ended (http2MaxRequests)",
       &ClusterGauges::requests},
      {"sluice_cluster_pending_requests", "Requests waiting for a connection (http1MaxPendingRequests)",
       &ClusterGauges::pending},
      {"sluice_cluster_connections", "Upstream connections open or opening (maxConnections)",
       &ClusterGauges::connections},
      {"sluice_cluster_retries_outstanding", "Retries backing off or in flight (maxRetries)", &ClusterGauges::retries},
  };
  PrometheusText out;
  if (clusters.empty()) return {};
  for (const Family& f : kFamilies) {
    out.family(f.name, MetricType::Gauge, f.help);
    for (const ClusterGauges& c : clusters) {
      out.sample(f.name,
                 Labels().add("destination_service", c.service).add("destination_version", c.version)
                     .add("destination_port", c.port),
                 c.*(f.value));
    }
  }
  return out.take();
}

WorkerMetrics::RequestTotals WorkerMetrics::totals(std::span<const WorkerMetrics* const> workers,
                                                   std::string_view service) {
  RequestTotals t;
  for (const auto* w : workers) {
    std::lock_guard lock(w->mu_);
    for (const auto& [k, s] : w->requests_) {
      if (!service.empty() && w->names_[k[0]] != service) continue;
      t.requests += s.count;
      t.by_code[k[5]] += s.count;
    }
  }
  return t;
}

std::vector<SubsetRequestTotals> WorkerMetrics::subset_totals(std::span<const WorkerMetrics* const> workers) {
  std::map<std::tuple<std::string, uint32_t, std::string>, SubsetRequestTotals> by_subset;
  for (const auto* w : workers) {
    std::lock_guard lock(w->mu_);
    for (const auto& [k, s] : w->requests_) {
      auto& t = by_subset[{w->names_[k[0]], k[7], w->names_[k[3]]}];
      t.requests += s.count;
      if (k[5] >= 500 && k[5] <= 599) t.errors += s.count;
      for (size_t i = 0; i < s.buckets.size(); ++i) t.buckets[i] += s.buckets[i];
    }
  }
  std::vector<SubsetRequestTotals> out;
  out.reserve(by_subset.size());
  for (auto& [key, t] : by_subset) {
    std::tie(t.service, t.port, t.version) = key;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace sluice::proxy

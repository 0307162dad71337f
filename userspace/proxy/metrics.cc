#include "proxy/metrics.h"

#include <fmt/format.h>

namespace sluice::proxy {

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
                 intern(l.workload), code, intern(flags)};
  auto& s = requests_[key];
  ++s.count;
  s.sum_ms += ms;
  for (size_t i = 0; i < kDurationBucketsMs.size(); ++i) {
    if (ms <= kDurationBucketsMs[i]) {
      ++s.buckets[i];
      break;
    }
  }
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
  auto operator<=>(const LabelSet&) const = default;
};

std::string escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string WorkerMetrics::render_prometheus(std::span<const WorkerMetrics* const> workers) {
  struct Summed {
    uint64_t count = 0;
    double sum_ms = 0;
    std::array<uint64_t, kDurationBucketsMs.size()> buckets{};
  };
  std::map<LabelSet, Summed> requests;
  std::map<std::tuple<uint32_t, std::string, std::string, std::string>, int64_t> counters;
  for (const auto* w : workers) {
    std::lock_guard lock(w->mu_);
    for (const auto& [k, s] : w->requests_) {
      LabelSet l{w->names_[k[0]], w->names_[k[1]], w->names_[k[2]], w->names_[k[3]],
                 w->names_[k[4]], w->names_[k[6]], k[5]};
      auto& t = requests[l];
      t.count += s.count;
      t.sum_ms += s.sum_ms;
      for (size_t i = 0; i < s.buckets.size(); ++i) t.buckets[i] += s.buckets[i];
    }
    for (const auto& [k, v] : w->counters_) counters[{k[0], w->names_[k[1]], w->names_[k[2]], w->names_[k[3]]}] += v;
  }

  std::string out;
  auto labels = [](const LabelSet& l, bool with_code) {
    std::string s = fmt::format(
        "reporter=\"waypoint\",request_protocol=\"http\",destination_service=\"{}\","
        "destination_service_name=\"{}\",destination_service_namespace=\"{}\",destination_version=\"{}\","
        "destination_workload=\"{}\"",
        escape(l.service), escape(l.name), escape(l.ns), escape(l.version), escape(l.workload));
    if (with_code) s += fmt::format(",response_code=\"{}\",response_flags=\"{}\"", l.code, escape(l.flags));
    return s;
  };
  out += "# HELP istio_requests_total Requests proxied, by destination and response code.\n";
  out += "# TYPE istio_requests_total counter\n";
  for (const auto& [l, s] : requests) out += fmt::format("istio_requests_total{{{}}} {}\n", labels(l, true), s.count);
  out += "# HELP istio_request_duration_milliseconds Request duration, first request byte to last response byte.\n";
  out += "# TYPE istio_request_duration_milliseconds histogram\n";
  for (const auto& [l, s] : requests) {
    std::string base = labels(l, true);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kDurationBucketsMs.size(); ++i) {
      cumulative += s.buckets[i];
      out += fmt::format("istio_request_duration_milliseconds_bucket{{{},le=\"{}\"}} {}\n", base,
                         kDurationBucketsMs[i], cumulative);
    }
    out += fmt::format("istio_request_duration_milliseconds_bucket{{{},le=\"+Inf\"}} {}\n", base, s.count);
    out += fmt::format("istio_request_duration_milliseconds_sum{{{}}} {}\n", base, s.sum_ms);
    out += fmt::format("istio_request_duration_milliseconds_count{{{}}} {}\n", base, s.count);
  }
  static constexpr std::string_view kCounterNames[] = {
      "sluice_retries_total", "sluice_faults_injected_total", "sluice_faults_injected_total",
      "sluice_outlier_ejections_total", "sluice_pool_overflows_total", "sluice_retry_overflows_total",
      "sluice_mirror_requests_total", "sluice_request_body_over_limit_total", "sluice_retries_body_not_kept_total",
      "sluice_mirror_body_not_kept_total", "sluice_upstream_connections_opened_total",
      "sluice_upstream_connections_active", "sluice_request_timeouts_total", "sluice_stream_idle_timeouts_total"};
  static_assert(std::size(kCounterNames) == static_cast<size_t>(ProxyCounter::kCount));
  uint32_t last = UINT32_MAX;
  for (const auto& [k, v] : counters) {
    auto [counter, service, workload, version] = k;
    std::string_view name = kCounterNames[counter];
    if (counter != last && !(counter == 2 && last == 1)) {
      bool gauge = counter == static_cast<uint32_t>(ProxyCounter::UpstreamConnectionsActive);
      out += fmt::format("# TYPE {} {}\n", name, gauge ? "gauge" : "counter");
    }
    last = counter;
    std::string extra;
    if (counter == static_cast<uint32_t>(ProxyCounter::FaultAborts)) extra = ",kind=\"abort\"";
    if (counter == static_cast<uint32_t>(ProxyCounter::FaultDelays)) extra = ",kind=\"delay\"";
    std::string version_label = version.empty() ? "" : fmt::format(",destination_version=\"{}\"", escape(version));
    out += fmt::format("{}{{destination_service=\"{}\"{},destination_workload=\"{}\"{}}} {}\n", name,
                       escape(service), version_label, escape(workload), extra, v);
  }
  return out;
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
  std::string out;
  if (clusters.empty()) return out;
  for (const Family& f : kFamilies) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", f.name, f.help, f.name);
    for (const ClusterGauges& c : clusters) {
      out += fmt::format("{}{{destination_service=\"{}\",destination_version=\"{}\",destination_port=\"{}\"}} {}\n",
                         f.name, escape(c.service), escape(c.version), c.port, c.*(f.value));
    }
  }
  return out;
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

}  // namespace sluice::proxy

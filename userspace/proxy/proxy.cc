#include "proxy/proxy.h"

#include <sys/resource.h>

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "metrics/prometheus_text.h"
#include "proxy/worker.h"

namespace sluice::proxy {

Proxy::Proxy(ProxyOptions options, model::SnapshotPtr snapshot)
    : options_(std::move(options)), snapshot_(std::move(snapshot)) {
  if (options_.workers == 0) options_.workers = std::max(1u, std::thread::hardware_concurrency());
  if (!options_.active_requests) options_.active_requests = std::make_shared<InMemoryActiveRequests>();
  if (options_.listeners.empty()) throw std::invalid_argument("proxy: no listener configured");
  if (snapshot_) resolve_active_counters(*snapshot_);
  outliers_ = std::make_shared<OutlierRegistry>(snapshot_ ? *snapshot_ : model::Snapshot{}, nullptr, clock_);
}

Proxy::~Proxy() {
  stop();
  wait();
}

// Each connection is a descriptor (two when proxied): 10,000 connections
// need more than the usual soft limit of 1,024. The soft limit is raised to
// the hard one at start, as Envoy and nginx deployments expect.
static void raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

bool Proxy::admit_downstream() {
  const int64_t open = downstream_active_.fetch_add(1, std::memory_order_relaxed);
  if (options_.max_connections == 0 || open < static_cast<int64_t>(options_.max_connections)) return true;
  downstream_active_.fetch_sub(1, std::memory_order_relaxed);
  downstream_overflow_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void Proxy::start() {
  raise_open_files_limit();
  for (unsigned i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, *this, options_));
    workers_.back()->bind_listeners();
  }
  for (auto& w : workers_) threads_.emplace_back([worker = w.get()] { worker->run(); });
}

void Proxy::update_snapshot(model::SnapshotPtr snapshot) {
  // Before publishing: a worker meeting a new backend must find its counter
  // ready instead of resolving it on its own thread mid-request.
  if (snapshot) resolve_active_counters(*snapshot);
  std::shared_ptr<OutlierRegistry> previous;
  {
    std::lock_guard lock(snapshot_mu_);
    previous = outliers_;
  }
  // Built outside the lock; update_snapshot is called from one thread.
  auto outliers = std::make_shared<OutlierRegistry>(snapshot ? *snapshot : model::Snapshot{}, previous.get(), clock_);
  {
    std::lock_guard lock(snapshot_mu_);
    snapshot_ = std::move(snapshot);
    outliers_ = std::move(outliers);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

model::SnapshotPtr Proxy::snapshot() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_;
}

Proxy::Published Proxy::published() const {
  std::lock_guard lock(snapshot_mu_);
  return {snapshot_, outliers_};
}

void Proxy::resolve_active_counters(const model::Snapshot& snapshot) {
  std::vector<std::pair<model::IpAddress, uint32_t>> missing;
  {
    std::lock_guard lock(counters_mu_);
    for (const auto& service : snapshot.services) {
      for (const auto& endpoint : service.endpoints) {
        for (const auto& port : service.ports) {
          std::pair key{endpoint.address, endpoint.port_for(port)};
          if (!active_counters_.contains(key)) missing.push_back(key);
        }
      }
    }
  }
  // Outside the lock: resolving may take long, and workers keep serving.
  std::vector<std::atomic<int64_t>*> resolved;
  resolved.reserve(missing.size());
  for (const auto& [address, port] : missing) resolved.push_back(options_.active_requests->counter_for(address, port));
  std::lock_guard lock(counters_mu_);
  for (size_t i = 0; i < missing.size(); ++i) active_counters_.emplace(missing[i], resolved[i]);
}

std::atomic<int64_t>* Proxy::active_counter(const model::IpAddress& address, uint32_t port) {
  {
    std::lock_guard lock(counters_mu_);
    if (auto it = active_counters_.find({address, port}); it != active_counters_.end()) return it->second;
  }
  return unlisted_counters_.counter_for(address, port);
}

std::shared_ptr<UpstreamPools::ClusterLoad> Proxy::cluster_load(const std::string& identity) {
  std::lock_guard lock(cluster_loads_mu_);
  if (auto it = cluster_loads_.find(identity); it != cluster_loads_.end()) {
    if (auto load = it->second.lock()) return load;
  }
  // A new cluster (rare: once per cluster and reload): forget the ones no worker holds.
  std::erase_if(cluster_loads_, [](const auto& entry) { return entry.second.expired(); });
  auto load = std::make_shared<UpstreamPools::ClusterLoad>();
  cluster_loads_[identity] = load;
  return load;
}

void Proxy::drain() {
  for (auto& w : workers_) w->request_drain();
}

void Proxy::stop() {
  for (auto& w : workers_) w->request_stop();
}

void Proxy::wait() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::vector<int> Proxy::listener_fds() const {
  if (workers_.empty()) return {};
  return workers_.front()->listener_fds();
}

std::vector<const WorkerMetrics*> Proxy::worker_metrics() const {
  std::vector<const WorkerMetrics*> metrics;
  for (const auto& w : workers_) metrics.push_back(&w->metrics());
  return metrics;
}

std::string Proxy::render_prometheus() const {
  std::string out = WorkerMetrics::render_prometheus(worker_metrics());
  // The circuit breakers' figures of every cluster a worker holds.
  std::vector<ClusterGauges> clusters;
  {
    std::lock_guard lock(cluster_loads_mu_);
    for (const auto& [identity, weak] : cluster_loads_) {
      auto load = weak.lock();
      if (!load) continue;
      const UpstreamPools::ClusterIdentity id = UpstreamPools::parse_identity(identity);
      clusters.push_back({id.service, id.subset.empty() ? "unknown" : id.subset, id.port,
                          load->requests.load(std::memory_order_relaxed), load->pending.load(std::memory_order_relaxed),
                          load->connections.load(std::memory_order_relaxed),
                          load->retries.load(std::memory_order_relaxed)});
    }
  }
  std::sort(clusters.begin(), clusters.end(), [](const ClusterGauges& a, const ClusterGauges& b) {
    return std::tie(a.service, a.version, a.port) < std::tie(b.service, b.version, b.port);
  });
  out += render_cluster_gauges(clusters);
  // Client connections against --max-connections (Envoy's downstream_cx_active, downstream_cx_overflow).
  metrics::PrometheusText downstream;
  downstream.family("sluice_downstream_connections_active", metrics::MetricType::Gauge,
                    "Client connections open, all workers");
  downstream.sample("sluice_downstream_connections_active", metrics::Labels(),
                    static_cast<int64_t>(downstream_active_.load(std::memory_order_relaxed)));
  downstream.family("sluice_downstream_connections_overflow_total", metrics::MetricType::Counter,
                    "Client connections closed at accept: --max-connections reached");
  downstream.sample("sluice_downstream_connections_overflow_total", metrics::Labels(),
                    static_cast<uint64_t>(downstream_overflow_.load(std::memory_order_relaxed)));
  out += downstream.take();
  return out;
}

WorkerMetrics::RequestTotals Proxy::request_totals(std::string_view service) const {
  return WorkerMetrics::totals(worker_metrics(), service);
}

std::vector<SubsetRequestTotals> Proxy::subset_request_totals() const {
  return WorkerMetrics::subset_totals(worker_metrics());
}

}  // namespace sluice::proxy

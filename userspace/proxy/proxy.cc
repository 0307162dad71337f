#include "proxy/proxy.h"

#include <stdexcept>

#include "proxy/worker.h"

namespace sluice::proxy {

Proxy::Proxy(ProxyOptions options, model::SnapshotPtr snapshot)
    : options_(std::move(options)), snapshot_(std::move(snapshot)) {
  if (options_.workers == 0) options_.workers = std::max(1u, std::thread::hardware_concurrency());
  if (!options_.active_requests) options_.active_requests = std::make_shared<InMemoryActiveRequests>();
  if (options_.listeners.empty()) throw std::invalid_argument("proxy: no listener configured");
}

Proxy::~Proxy() {
  stop();
  wait();
}

void Proxy::start() {
  for (unsigned i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, *this, options_, *options_.active_requests));
    workers_.back()->bind_listeners();
  }
  for (auto& w : workers_) threads_.emplace_back([worker = w.get()] { worker->run(); });
}

void Proxy::update_snapshot(model::SnapshotPtr snapshot) {
  {
    std::lock_guard lock(snapshot_mu_);
    snapshot_ = std::move(snapshot);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

model::SnapshotPtr Proxy::snapshot() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_;
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

std::string Proxy::render_prometheus() const {
  std::vector<const WorkerMetrics*> metrics;
  for (const auto& w : workers_) metrics.push_back(&w->metrics());
  return WorkerMetrics::render_prometheus(metrics);
}

WorkerMetrics::RequestTotals Proxy::request_totals(std::string_view service) const {
  std::vector<const WorkerMetrics*> metrics;
  for (const auto& w : workers_) metrics.push_back(&w->metrics());
  return WorkerMetrics::totals(metrics, service);
}

}  // namespace sluice::proxy

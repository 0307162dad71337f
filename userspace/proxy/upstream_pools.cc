#include "proxy/upstream_pools.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace sluice::proxy {

int set_upstream_socket_options(int fd, const model::ConnectionPool& settings) {
  auto set = [fd](int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : errno;
  };
  int rc = set(IPPROTO_TCP, TCP_NODELAY, 1);
  if (rc != 0 || !settings.tcp_keepalive) return rc;
  const model::TcpKeepalive& k = *settings.tcp_keepalive;
  auto seconds = [](model::Duration d) { return static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(d).count()); };
  if ((rc = set(SOL_SOCKET, SO_KEEPALIVE, 1)) != 0) return rc;
  if (k.time.count() > 0 && (rc = set(IPPROTO_TCP, TCP_KEEPIDLE, seconds(k.time))) != 0) return rc;
  if (k.interval.count() > 0 && (rc = set(IPPROTO_TCP, TCP_KEEPINTVL, seconds(k.interval))) != 0) return rc;
  if (k.probes > 0 && (rc = set(IPPROTO_TCP, TCP_KEEPCNT, static_cast<int>(k.probes))) != 0) return rc;
  return 0;
}

namespace {

// The port the endpoint listens on for service port `port`.
uint32_t backend_port(const model::Service& service, const model::Endpoint& endpoint, uint32_t port) {
  const model::ServicePort* sp = service.port(port);
  return sp != nullptr ? endpoint.port_for(*sp) : port;
}

// A free slot of `slots`, reused from `free_ids` or appended.
template <typename T>
uint32_t take_slot(std::vector<T>& slots, std::vector<uint32_t>& free_ids) {
  if (free_ids.empty()) {
    slots.emplace_back();
    return static_cast<uint32_t>(slots.size() - 1);
  }
  const uint32_t id = free_ids.back();
  free_ids.pop_back();
  return id;
}

}  // namespace

// Istio's choice of upstream protocol (upstream_pools.h): useClientProtocol
// first, then the port's declared protocol, then h2UpgradePolicy.
bool speaks_http2(const model::Service& service, uint32_t port, const model::ConnectionPool& settings,
                  bool client_http2) {
  if (settings.use_client_protocol) return client_http2;
  const model::ServicePort* sp = service.port(port);
  if (sp != nullptr && (sp->protocol == model::Protocol::HTTP2 || sp->protocol == model::Protocol::GRPC)) return true;
  return settings.h2_upgrade == model::ConnectionPool::H2Upgrade::Upgrade;
}

size_t UpstreamPools::BackendKeyHash::operator()(const BackendKey& k) const {
  return static_cast<size_t>((uint64_t{model::IpAddressHash{}(k.address)} ^ k.port) * 1099511628211ull);
}

UpstreamPools::UpstreamPools(CounterLookup counter_for, ClusterLoadLookup load_for)
    : counter_for_(std::move(counter_for)), load_for_(std::move(load_for)) {}

std::string UpstreamPools::identity(std::string_view service, std::string_view subset, uint32_t port) {
  std::string id;
  id.reserve(service.size() + subset.size() + 12);
  id.append(service).push_back('\0');
  id.append(subset).push_back('\0');
  id.append(std::to_string(port));
  return id;
}

// The key of cluster_by_identity_: the identity, and for an HTTP/2
// client's cluster of its own (useClientProtocol) a suffix no identity has.
std::string UpstreamPools::cluster_key(const std::string& identity, bool client_http2) {
  if (!client_http2) return identity;
  std::string key = identity;
  key.append("\0h2", 3);
  return key;
}

UpstreamPools::ClusterIdentity UpstreamPools::parse_identity(std::string_view identity) {
  ClusterIdentity id;
  const size_t first = identity.find('\0');
  const size_t second = first == std::string_view::npos ? first : identity.find('\0', first + 1);
  if (second == std::string_view::npos) return id;
  id.service = identity.substr(0, first);
  id.subset = identity.substr(first + 1, second - first - 1);
  for (char ch : identity.substr(second + 1)) id.port = id.port * 10 + static_cast<uint32_t>(ch - '0');
  return id;
}

uint32_t UpstreamPools::backend_for(const model::Endpoint& endpoint, uint32_t port) {
  BackendKey key{endpoint.address, port};
  auto it = backend_index_.find(key);
  if (it != backend_index_.end()) return it->second;
  auto index = static_cast<uint32_t>(backends_.size());
  Backend& b = backends_.emplace_back();
  b.key = key;
  b.workload = endpoint.name;
  b.shared_active = counter_for_(endpoint.address, port);
  backend_index_.emplace(key, index);
  return index;
}

uint32_t UpstreamPools::backend_of(const model::Snapshot& snapshot, const model::Destination& d, uint32_t endpoint) {
  const model::Service& service = snapshot.services[d.service];
  const model::Endpoint& e = service.endpoints[endpoint];
  return backend_for(e, backend_port(service, e, d.port));
}

std::pair<const model::Service*, const model::Subset*> UpstreamPools::listed_in_applied(const Cluster& c) const {
  if (applied_ == nullptr) return {};
  const model::Service* service = applied_->find_service(c.service);
  if (service == nullptr || service->port(c.port) == nullptr) return {};
  auto subset = service->subset_index(c.subset);
  if (!subset) return {};
  const model::Subset& listed = service->subsets[*subset];
  // A cluster's HTTP/2 twin (useClientProtocol) is listed while the setting
  // is on: a reload that turns it off retires the twin's pools, which go
  // once their connections and requests are done, and the twin with them.
  if (c.client_http2 && !listed.policy_for(c.port).connection_pool.use_client_protocol) return {};
  return {service, &listed};
}

// The worker's cluster for a destination of `snapshot`, found by name. A
// new one takes the applied snapshot's settings if it lists the cluster,
// else (a cluster only an older snapshot has) that snapshot's, unlisted.
uint32_t UpstreamPools::cluster_for(const model::Snapshot& snapshot, const model::Destination& d,
                                    bool client_http2) {
  const model::Service& service = snapshot.services[d.service];
  const model::Subset& subset = service.subsets[d.subset];
  // An HTTP/2 client's request has a cluster of its own only where the
  // upstream protocol follows the client's (useClientProtocol).
  const bool variant = client_http2 && subset.policy_for(d.port).connection_pool.use_client_protocol;
  std::string id = identity(service.host, subset.name, d.port);
  std::string key = cluster_key(id, variant);
  if (auto it = cluster_by_identity_.find(key); it != cluster_by_identity_.end()) return it->second;
  const uint32_t index = take_slot(clusters_, free_clusters_);
  Cluster& c = clusters_[index];
  c.service = service.host;
  c.subset = subset.name;
  c.port = d.port;
  c.client_http2 = variant;
  c.pools.clear();
  auto [listed_service, listed_subset] = listed_in_applied(c);
  c.listed = listed_subset != nullptr;
  c.settings = (c.listed ? *listed_subset : subset).policy_for(d.port).connection_pool;
  c.http2 = speaks_http2(c.listed ? *listed_service : service, d.port, c.settings, c.client_http2);
  if (load_for_) {
    c.load = load_for_(id);
  } else if (auto other = cluster_by_identity_.find(cluster_key(id, !variant)); other != cluster_by_identity_.end()) {
    c.load = clusters_[other->second].load;   // the other protocol's cluster of the same identity
  } else {
    c.load = std::make_shared<ClusterLoad>();
  }
  cluster_by_identity_.emplace(std::move(key), index);
  return index;
}

uint32_t UpstreamPools::pool_of(uint32_t cluster, uint32_t backend) {
  const uint64_t key = (uint64_t{cluster} << 32) | backend;
  if (auto it = pool_by_key_.find(key); it != pool_by_key_.end()) return it->second;
  const uint32_t id = take_slot(pools_, free_pools_);
  Pool& p = pools_[id];
  p = Pool{};
  p.cluster = cluster;
  p.backend = backend;
  p.in_use = true;
  // Listed in the applied snapshot with this backend, or retired from the start.
  const Cluster& c = clusters_[cluster];
  auto [service, subset] = listed_in_applied(c);
  p.retired = true;
  if (subset != nullptr) {
    for (uint32_t e : subset->endpoints) {
      const model::Endpoint& ep = service->endpoints[e];
      if (BackendKey{ep.address, backend_port(*service, ep, c.port)} == backends_[backend].key) p.retired = false;
    }
  }
  clusters_[cluster].pools.push_back(id);
  pool_by_key_.emplace(key, id);
  return id;
}

uint32_t UpstreamPools::pool_for(const model::Snapshot& snapshot, const model::Destination& d, uint32_t endpoint,
                                 bool client_http2) {
  if (&snapshot != applied_) {
    // A request resolved against an older snapshot (it straddled a reload):
    // found by name, not cached.
    return pool_of(cluster_for(snapshot, d, client_http2), backend_of(snapshot, d, endpoint));
  }
  const uint64_t key = destination_key(d, client_http2);
  uint32_t slot;
  if (auto it = resolved_.find(key); it != resolved_.end()) {
    slot = it->second;
  } else {
    slot = static_cast<uint32_t>(resolved_clusters_.size());
    ResolvedCluster& r = resolved_clusters_.emplace_back();
    r.cluster = cluster_for(snapshot, d, client_http2);
    r.pool_of_endpoint.assign(snapshot.services[d.service].endpoints.size(), kNone);
    resolved_.emplace(key, slot);
  }
  ResolvedCluster& r = resolved_clusters_[slot];
  uint32_t& id = r.pool_of_endpoint[endpoint];
  if (id == kNone) id = pool_of(r.cluster, backend_of(snapshot, d, endpoint));
  return id;
}

const std::vector<uint32_t>& UpstreamPools::apply_snapshot(const model::Snapshot& snapshot) {
  applied_ = &snapshot;
  resolved_.clear();
  resolved_clusters_.clear();
  revisit_.clear();
  for (Cluster& c : clusters_) {
    if (c.service.empty()) continue;   // a free slot
    auto [service, subset] = listed_in_applied(c);
    c.listed = subset != nullptr;
    bool changed = false;
    const uint64_t stamp = ++epoch_;   // marks the backends this cluster lists now
    if (c.listed) {
      const model::ConnectionPool& settings = subset->policy_for(c.port).connection_pool;
      changed = c.settings != settings;
      c.settings = settings;
      c.http2 = speaks_http2(*service, c.port, settings, c.client_http2);
      for (uint32_t e : subset->endpoints) {
        const model::Endpoint& ep = service->endpoints[e];
        auto it = backend_index_.find(BackendKey{ep.address, backend_port(*service, ep, c.port)});
        if (it != backend_index_.end()) backends_[it->second].listed_epoch = stamp;
      }
    }
    for (uint32_t id : c.pools) {
      Pool& p = pools_[id];
      bool retired = !c.listed || backends_[p.backend].listed_epoch != stamp;
      if (changed || retired != p.retired) revisit_.push_back(id);
      p.retired = retired;
    }
  }
  // Free what no connection or request holds any more; the worker calls
  // release_if_unused for the others as they empty.
  for (uint32_t id = 0; id < pools_.size(); ++id) release_if_unused(id);
  std::erase_if(revisit_, [&](uint32_t id) { return !pools_[id].in_use; });
  for (uint32_t ci = 0; ci < clusters_.size(); ++ci) free_cluster_if_unused(ci);
  return revisit_;
}

void UpstreamPools::release_if_unused(uint32_t id) {
  Pool& p = pools_[id];
  if (!p.in_use || !p.retired || p.active != 0 || p.connections != 0 || p.pending != 0) return;
  const uint32_t cluster = p.cluster;
  std::erase(clusters_[cluster].pools, id);
  pool_by_key_.erase((uint64_t{cluster} << 32) | p.backend);
  p = Pool{};
  free_pools_.push_back(id);
  free_cluster_if_unused(cluster);
}

bool UpstreamPools::retry_budget_allows(uint32_t pool, uint32_t holding) const {
  const uint32_t cluster = pools_[pool].cluster;
  const Cluster& c = clusters_[cluster];
  const int64_t outstanding = c.load->retries.load(std::memory_order_relaxed) - (holding == cluster ? 1 : 0);
  return static_cast<uint64_t>(std::max<int64_t>(outstanding, 0)) < c.settings.max_retries;
}

uint32_t UpstreamPools::hold_retry(uint32_t pool) {
  const uint32_t cluster = pools_[pool].cluster;
  ++clusters_[cluster].retries_outstanding;
  clusters_[cluster].load->retries.fetch_add(1, std::memory_order_relaxed);
  return cluster;
}

void UpstreamPools::release_retry(uint32_t cluster) {
  if (cluster == kNone || clusters_[cluster].retries_outstanding == 0) return;
  --clusters_[cluster].retries_outstanding;
  clusters_[cluster].load->retries.fetch_sub(1, std::memory_order_relaxed);
  free_cluster_if_unused(cluster);
}

void UpstreamPools::add_active(uint32_t id, int64_t delta) {
  pools_[id].active += delta;
  cluster_of(id).load->requests.fetch_add(delta, std::memory_order_relaxed);
}

void UpstreamPools::add_connections(uint32_t id, int64_t delta) {
  pools_[id].connections = static_cast<uint32_t>(static_cast<int64_t>(pools_[id].connections) + delta);
  cluster_of(id).load->connections.fetch_add(delta, std::memory_order_relaxed);
}

void UpstreamPools::add_pending(uint32_t id, int64_t delta) {
  pools_[id].pending = static_cast<uint32_t>(static_cast<int64_t>(pools_[id].pending) + delta);
  cluster_of(id).load->pending.fetch_add(delta, std::memory_order_relaxed);
}

void UpstreamPools::free_cluster_if_unused(uint32_t id) {
  Cluster& c = clusters_[id];
  if (c.listed || !c.pools.empty() || c.service.empty() || c.retries_outstanding != 0) return;
  cluster_by_identity_.erase(cluster_key(identity(c.service, c.subset, c.port), c.client_http2));
  c.service.clear();
  c.load.reset();
  free_clusters_.push_back(id);
}

UpstreamPools::Admission UpstreamPools::admit(uint32_t id, bool fresh_connection, bool stream_room) const {
  const Pool& p = pools_[id];
  const model::ConnectionPool& s = settings(id);
  const ClusterLoad& load = *cluster_of(id).load;
  auto at_limit = [](const std::atomic<int64_t>& count, uint32_t limit) {
    return static_cast<uint64_t>(std::max<int64_t>(count.load(std::memory_order_relaxed), 0)) >= limit;
  };
  if (at_limit(load.requests, s.http2_max_requests)) return Admission::Overflow;
  if (!fresh_connection && (cluster_of(id).http2 ? stream_room : p.idle_head != kNone)) return Admission::Reuse;
  if (may_open(id)) return Admission::Open;
  if (!at_limit(load.pending, s.http1_max_pending_requests)) return Admission::Queue;
  return Admission::Overflow;
}

bool UpstreamPools::may_open(uint32_t id) const {
  const int64_t connections = cluster_of(id).load->connections.load(std::memory_order_relaxed);
  return pools_[id].connections == 0 || static_cast<uint64_t>(std::max<int64_t>(connections, 0)) <
                                            settings(id).max_connections;
}

bool UpstreamPools::exhausted(uint32_t id, uint32_t requests) const {
  const uint32_t limit = settings(id).max_requests_per_connection;
  return limit != 0 && requests >= limit;
}

}  // namespace sluice::proxy

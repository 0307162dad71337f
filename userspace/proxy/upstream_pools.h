// A worker's upstream connection pools, one per (subset cluster, backend),
// as Envoy keeps them: in Istio every DestinationRule subset is its own
// Envoy cluster (outbound|port|subset|host) with its own connectionPool
// settings, so two subsets — or two services — that share a backend address
// get separate pools, separate limits and separate connections. A cluster
// is named by the identity the outlier registry uses: service host, subset
// name, service port.
//
//   UpstreamPools pools(counter_for);          // per worker, not thread-safe
//   pools.apply_snapshot(*snapshot);           // once per published snapshot
//   uint32_t p = pools.pool_for(*snapshot, destination, endpoint);   // per attempt, no allocation once warm
//   switch (pools.admit(p, fresh)) { ... }     // reuse / open / queue / overflow (503 UO)
//
// Backends (address:port) stay one per worker across clusters: the
// least-request figures are per backend by design (the XDP plane reads the
// same counter by backend id), only the pools are per cluster.
//
// The circuit breakers count over the whole cluster, as Envoy's do: active
// requests (http2MaxRequests), connections (maxConnections), queued requests
// (http1MaxPendingRequests) and outstanding retries (maxRetries) of every
// backend of the cluster, from every worker, in one ClusterLoad shared
// through the proxy. As in Envoy, a pool with no connection at all may still
// open one over maxConnections, so no worker's queue waits on connections
// only other workers hold.
//
// The idle and pending lists are intrusive: their links are connection
// slot ids kept by the worker (Pool only holds the heads); the worker owns
// the sockets and moves connections between the lists.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/snapshot.h"

namespace sluice::proxy {

inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr uint64_t kNoGeneration = UINT64_MAX;   // a snapshot generation never published

// Istio's choice of upstream protocol: with useClientProtocol the client's
// (`client_http2`: the request came on an HTTP/2 stream); else a port
// declared http2 or grpc (name prefix or appProtocol) speaks HTTP/2 to its
// backends, and an HTTP port does when its DestinationRule says
// h2UpgradePolicy: UPGRADE.
bool speaks_http2(const model::Service& service, uint32_t port, const model::ConnectionPool& settings,
                  bool client_http2);

class UpstreamPools {
 public:
  struct BackendKey {
    model::IpAddress address;
    uint32_t port = 0;
    bool operator==(const BackendKey&) const = default;
  };
  struct BackendKeyHash {
    size_t operator()(const BackendKey& k) const;
  };
  // One backend address:port as this worker knows it, whatever cluster reaches it.
  struct Backend {
    BackendKey key;
    std::string workload;                        // endpoint name, for metrics and the access log
    std::atomic<int64_t>* shared_active = nullptr;   // least-request count, all workers and planes
    uint64_t listed_epoch = 0;                   // apply_snapshot's bookkeeping
  };
  // A subset cluster's circuit-breaker figures, shared by every worker.
  struct ClusterLoad {
    std::atomic<int64_t> requests{0}, connections{0}, pending{0}, retries{0};
  };
  // The ClusterLoad of a cluster identity (the same object for every worker).
  using ClusterLoadLookup = std::function<std::shared_ptr<ClusterLoad>(const std::string& identity)>;
  // A cluster identity's parts (service host, subset name, service port).
  struct ClusterIdentity {
    std::string service, subset;
    uint32_t port = 0;
  };
  static ClusterIdentity parse_identity(std::string_view identity);

  // A subset cluster: service host + subset name + service port.
  struct Cluster {
    std::string service, subset;
    uint32_t port = 0;
    model::ConnectionPool settings;   // from the newest snapshot that lists the cluster
    bool http2 = false;               // new connections speak HTTP/2 (speaks_http2)
    // With useClientProtocol, requests that came on HTTP/2 streams get a
    // cluster of their own (the same identity and circuit-breaker figures,
    // its own pools of HTTP/2 connections): this is that cluster.
    bool client_http2 = false;
    bool listed = false;              // in the newest snapshot
    std::vector<uint32_t> pools;      // ids of this cluster's pools
    uint32_t retries_outstanding = 0; // this worker's retries backing off or in flight
    std::shared_ptr<ClusterLoad> load;   // all workers' figures, for the circuit breakers
  };
  struct Pool {
    uint32_t cluster = kNone, backend = kNone;
    int64_t active = 0;                 // requests dispatched here and not ended (queued ones included)
    uint32_t connections = 0;           // open or opening
    uint32_t pending = 0;               // requests waiting for a connection
    uint32_t idle_head = kNone, pending_head = kNone, pending_tail = kNone;
    // HTTP/2: the pool's connections (open or opening), each shared by
    // many streams; they are never on the idle list.
    std::vector<uint32_t> http2_connections;
    // The cluster left the snapshot, or the backend left the cluster: no
    // connection is pooled again; in-flight and queued requests finish.
    bool retired = false;
    bool in_use = false;                // false: a free slot
  };

  // How a request gets a connection from its pool, in Envoy's order:
  // active-request limit (http2MaxRequests), an idle connection, a new one
  // under maxConnections, a place in the queue under
  // http1MaxPendingRequests; else an overflow (503, flag UO).
  enum class Admission : uint8_t { Reuse, Open, Queue, Overflow };

  using CounterLookup = std::function<std::atomic<int64_t>*(const model::IpAddress&, uint32_t)>;
  // Without `load_for` (tests) each worker's clusters count alone.
  explicit UpstreamPools(CounterLookup counter_for, ClusterLoadLookup load_for = {});

  // The backend an endpoint serves `backend_port` on; created at first use.
  uint32_t backend_for(const model::Endpoint& endpoint, uint32_t backend_port);

  // The pool of `destination`'s cluster (destination.port is the service
  // port) and `endpoint`'s backend in `snapshot`. For the snapshot last
  // applied this is two integer lookups once warm; for an older snapshot
  // (a request that straddled a reload) the cluster is found by name.
  // `client_http2`: the request came on an HTTP/2 stream (it matters with
  // useClientProtocol only).
  uint32_t pool_for(const model::Snapshot& snapshot, const model::Destination& destination, uint32_t endpoint,
                    bool client_http2 = false);

  // Takes a new snapshot: listed clusters get its settings (they apply to
  // the next admission and to every connection released after), pools whose
  // cluster or backend it no longer lists are retired, empty retired pools
  // freed. Returns the pools whose settings changed or that were retired, so
  // the worker can revisit their idle connections and queues.
  const std::vector<uint32_t>& apply_snapshot(const model::Snapshot& snapshot);

  // For an HTTP/2 cluster, `stream_room` says whether one of the pool's
  // connections can take one more stream (the worker knows its sessions);
  // reusing it takes the place of an idle connection.
  Admission admit(uint32_t pool, bool fresh_connection, bool stream_room = false) const;
  // A queued request may take a new connection now.
  bool may_open(uint32_t pool) const;
  // maxRequestsPerConnection reached by a connection that served `requests`.
  bool exhausted(uint32_t pool, uint32_t requests) const;
  // Frees a retired pool that holds no connection and no request.
  void release_if_unused(uint32_t pool);

  // The pool's own figures and its cluster's shared ones move together.
  void add_active(uint32_t pool, int64_t delta);
  void add_connections(uint32_t pool, int64_t delta);
  void add_pending(uint32_t pool, int64_t delta);

  // Envoy's max_retries circuit breaker (connectionPool.http.maxRetries):
  // a retry may start while the retries outstanding to the pool's cluster
  // (backing off or in flight) are fewer than the limit. `holding` is the
  // cluster a retry of the same request already holds (kNone: none), which
  // the new one replaces.
  bool retry_budget_allows(uint32_t pool, uint32_t holding) const;
  // Counts one outstanding retry against the pool's cluster; returns the
  // cluster, to give to release_retry when the retry ends.
  uint32_t hold_retry(uint32_t pool);
  void release_retry(uint32_t cluster);

  Pool& pool(uint32_t id) { return pools_[id]; }
  const Pool& pool(uint32_t id) const { return pools_[id]; }
  const Backend& backend(uint32_t id) const { return backends_[id]; }
  const Cluster& cluster_of(uint32_t pool) const { return clusters_[pools_[pool].cluster]; }
  const model::ConnectionPool& settings(uint32_t pool) const { return cluster_of(pool).settings; }
  // Pools in use (for tests and introspection).
  size_t pool_count() const { return pools_.size() - free_pools_.size(); }

 private:
  uint32_t cluster_for(const model::Snapshot& snapshot, const model::Destination& destination, bool client_http2);
  uint32_t pool_of(uint32_t cluster, uint32_t backend);
  uint32_t backend_of(const model::Snapshot& snapshot, const model::Destination& destination, uint32_t endpoint);
  void free_cluster_if_unused(uint32_t id);
  std::pair<const model::Service*, const model::Subset*> listed_in_applied(const Cluster& c) const;
  static std::string identity(std::string_view service, std::string_view subset, uint32_t port);
  static std::string cluster_key(const std::string& identity, bool client_http2);
  static uint64_t destination_key(const model::Destination& d, bool client_http2) {
    return (uint64_t{d.service} << 40) | (uint64_t{d.subset & 0xfffffu} << 20) | (d.port & 0xffffu) |
           (client_http2 ? 1u << 19 : 0u);
  }

  CounterLookup counter_for_;
  ClusterLoadLookup load_for_;
  std::vector<Backend> backends_;
  std::unordered_map<BackendKey, uint32_t, BackendKeyHash> backend_index_;
  std::vector<Cluster> clusters_;
  std::vector<uint32_t> free_clusters_;
  std::unordered_map<std::string, uint32_t> cluster_by_identity_;
  std::vector<Pool> pools_;
  std::vector<uint32_t> free_pools_;
  std::unordered_map<uint64_t, uint32_t> pool_by_key_;   // cluster << 32 | backend

  // The applied snapshot's resolutions: destination key -> slot in
  // endpoint_pools_, which maps the service's endpoint index to a pool id
  // (kNone until first use). Rebuilt lazily after each apply_snapshot.
  const model::Snapshot* applied_ = nullptr;
  std::unordered_map<uint64_t, uint32_t> resolved_;
  struct ResolvedCluster {
    uint32_t cluster = kNone;
    std::vector<uint32_t> pool_of_endpoint;
  };
  std::vector<ResolvedCluster> resolved_clusters_;
  uint64_t epoch_ = 0;
  std::vector<uint32_t> revisit_;
};

// What every upstream connection of a pool is set to before it connects:
// TCP_NODELAY, and with the pool's connectionPool.tcp.tcpKeepalive,
// SO_KEEPALIVE with each of its fields given (TCP_KEEPIDLE, TCP_KEEPINTVL,
// TCP_KEEPCNT; the node's sysctl defaults for the others). 0, or the errno
// of the first setsockopt that failed.
int set_upstream_socket_options(int fd, const model::ConnectionPool& settings);

}  // namespace sluice::proxy

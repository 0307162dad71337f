// The L7 proxy as the agent embeds it: N io_uring workers (one ring and one
// SO_REUSEPORT listener socket per listener each), reading the current
// snapshot per request. sluiced owns one Proxy; tests run it standalone
// through tools' sluice-l7-proxy.
//
//   Proxy proxy(options, snapshot);
//   proxy.start();                      // binds, spawns workers; throws on bind errors
//   proxy.update_snapshot(next);        // next request on any connection uses it
//   proxy.drain(); proxy.wait();        // SIGTERM: finish in-flight, close keep-alive
//   proxy.render_prometheus();          // admin /stats/prometheus (its part)
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/message_head.h"
#include "http/path_normalisation.h"
#include "lb/monotonic_clock.h"
#include "model/snapshot.h"
#include "proxy/access_log.h"
#include "proxy/active_requests.h"
#include "proxy/http2_session.h"
#include "proxy/metrics.h"
#include "proxy/outlier_registry.h"
#include "proxy/request_routing.h"
#include "proxy/upstream_pools.h"
#include "lb/subset_balancer.h"

namespace sluice::proxy {

struct ListenerSpec {
  std::string address;          // "127.0.0.2:8080", "[::1]:8080", "0.0.0.0:15001"
  // The service this listener serves ("productpage", port 9080). Empty host:
  // transparent mode — the service is found from the connection's original
  // destination (VIP:port), as delivered by the sk_lookup program.
  std::string service_host;
  uint32_t service_port = 0;
  // A socket already listening on `address`, inherited from a keeper that
  // outlives this process (listen_sockets.h): the first worker accepts on it
  // (it is the one the sk_lookup map holds); the others add their own
  // sockets to its SO_REUSEPORT group, or accept on it too when it is not in
  // one. -1: the first worker opens the socket.
  int inherited_fd = -1;
};

struct ProxyOptions {
  unsigned workers = 0;                                   // 0: one per online CPU
  std::vector<ListenerSpec> listeners;
  http::Limits limits;
  Http2Limits http2;   // HTTP/2 client connections (h2c by prior knowledge)
  std::chrono::milliseconds request_header_timeout{10'000};   // first byte to full head: 408
  std::chrono::milliseconds idle_timeout{60'000};             // keep-alive with no request: close
  // Envoy's stream_idle_timeout (5 min by default): a request, or a
  // WebSocket tunnel, with no byte moving either way for this long ends —
  // 408 if its response head has not gone out, else its connection closes.
  // Its upstream connection is released. 0: never.
  std::chrono::milliseconds stream_idle_timeout{300'000};
  // Envoy's request_timeout: the whole request must have arrived this long
  // after its head did; else 408 and its upstream connection is released.
  // 0 (Envoy's default): no limit.
  std::chrono::milliseconds request_timeout{0};
  // Slots per worker: client connections, HTTP/2 streams (one per client
  // stream, one per upstream stream) and upstream connections, pooled ones
  // included. Past it a worker refuses (counted in
  // sluice_slot_limit_refusals_total by kind). Bounds a worker's memory
  // (a slot is about 3.5 KiB before buffers).
  uint32_t max_connections_per_worker = 16384;
  // Client connections open at once, all workers (Envoy's overload
  // manager global_downstream_max_connections). A connection over it is
  // closed at accept and counted. 0: no limit.
  uint64_t max_connections = 0;
  uint64_t random_seed = 0;                                   // 0: from std::random_device
  // Bytes of a request body kept so that a retry or a mirror can send it
  // again (Envoy's per_request_buffer_limit_bytes). A larger body streams
  // upstream as before, but once bytes of it were sent it is neither
  // retried nor mirrored (counted). Memory: up to this much per client
  // connection with a request body in flight. 0 keeps no body.
  uint32_t request_body_buffer_limit = 64 * 1024;
  // Envoy's generate_request_id (on in Istio): a request without
  // x-request-id gets a random UUID, sent upstream and to mirrors, and logged.
  bool generate_request_id = true;
  // Envoy's use_remote_address, as at an Istio gateway: the client's address
  // is appended to x-forwarded-for. Off by default, as in a sidecar.
  bool append_forwarded_for = false;
  // Istio's MeshConfig pathNormalization: the path routed on and forwarded.
  http::PathNormalisation path_normalisation = http::PathNormalisation::Base;
  std::shared_ptr<ActiveRequestCounters> active_requests;     // null: in-memory
  std::shared_ptr<AccessLogFile> access_log;                  // null: no access log
  AccessLogFormat access_log_format = AccessLogFormat::Text;
  // Routing/LB plug-ins, one instance per worker (they are not thread-safe).
  std::function<std::unique_ptr<RequestRouter>()> make_router;      // null: MeshRouter (userspace/routing)
  // Given the worker's random source and each backend's active-request counter.
  std::function<std::unique_ptr<EndpointPicker>(lb::RandomSource&, lb::ActiveCounterLookup)>
      make_picker;                                                  // null: MeshPicker (userspace/lb)
};

class Worker;

class Proxy {
 public:
  Proxy(ProxyOptions options, model::SnapshotPtr snapshot);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  void start();
  void update_snapshot(model::SnapshotPtr snapshot);
  // Stop accepting, finish in-flight requests, answer with Connection: close,
  // close idle keep-alive connections; workers exit when they hold no
  // connection. Returns at once; wait() joins.
  void drain();
  void stop();   // close everything now
  void wait();

  // One listening socket per ListenerSpec (the first worker's of the
  // SO_REUSEPORT group), for the sk_lookup program's socket map: the kernel
  // runs reuseport selection across the group after bpf_sk_assign().
  std::vector<int> listener_fds() const;
  std::string render_prometheus() const;
  WorkerMetrics::RequestTotals request_totals(std::string_view service = {}) const;
  // Request counts, 5xx and latency buckets per destination subset and port (all workers).
  std::vector<SubsetRequestTotals> subset_request_totals() const;

  // For workers: the current snapshot, cheap to poll per request, and the
  // outlier detectors for it (shared by every worker).
  uint64_t snapshot_generation() const { return generation_.load(std::memory_order_acquire); }
  model::SnapshotPtr snapshot() const;
  struct Published {
    model::SnapshotPtr snapshot;
    std::shared_ptr<OutlierRegistry> outliers;   // never null
  };
  Published published() const;
  // For workers, when they first meet a backend: its active-request counter,
  // resolved before any snapshot naming it was published. Never calls into
  // ActiveRequestCounters (the BPF adapter scans a kernel map, one syscall
  // per backend id: seconds during which every connection of the worker
  // would stall); a backend no snapshot lists gets a process-local counter.
  std::atomic<int64_t>* active_counter(const model::IpAddress& address, uint32_t port);
  // For workers, when they first meet a subset cluster: its circuit-breaker
  // figures, one object per cluster identity for all workers while any
  // holds it (a cluster no worker holds starts again from zero).
  std::shared_ptr<UpstreamPools::ClusterLoad> cluster_load(const std::string& identity);
  // For workers, at accept: false (and counted) over --max-connections;
  // else the connection counts until downstream_closed().
  bool admit_downstream();
  void downstream_closed() { downstream_active_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  ProxyOptions options_;
  mutable std::mutex snapshot_mu_;
  model::SnapshotPtr snapshot_;
  lb::SteadyClock clock_;
  std::shared_ptr<OutlierRegistry> outliers_;   // for snapshot_, under snapshot_mu_
  std::atomic<uint64_t> generation_{1};
  // Resolves the counters of every endpoint:port of `snapshot` not resolved
  // yet, on the caller's thread (the agent's, not a worker's).
  void resolve_active_counters(const model::Snapshot& snapshot);
  std::vector<const WorkerMetrics*> worker_metrics() const;
  std::mutex counters_mu_;
  std::map<std::pair<model::IpAddress, uint32_t>, std::atomic<int64_t>*> active_counters_;
  InMemoryActiveRequests unlisted_counters_;
  mutable std::mutex cluster_loads_mu_;
  std::unordered_map<std::string, std::weak_ptr<UpstreamPools::ClusterLoad>> cluster_loads_;
  std::atomic<int64_t> downstream_active_{0};
  std::atomic<uint64_t> downstream_overflow_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::proxy

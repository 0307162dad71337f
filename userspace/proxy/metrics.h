// Request metrics of the L7 proxy, kept per worker and summed on read, in
// Istio's standard names and labels. Each worker interns label strings once
// per distinct value, so recording a request allocates only the first time a
// (service, version, workload, code, flags) combination is seen. The mutex is
// per worker and only contended by a reader (the admin API).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::proxy {

// Istio's default duration buckets (milliseconds).
inline constexpr std::array<double, 19> kDurationBucketsMs = {
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000};

enum class ProxyCounter : uint8_t {
  Retries,           // sluice_retries_total
  FaultAborts,       // sluice_faults_injected_total{kind="abort"}
  FaultDelays,       // sluice_faults_injected_total{kind="delay"}
  Ejections,         // sluice_outlier_ejections_total
  PoolOverflows,     // sluice_pool_overflows_total
  RetryOverflows,    // sluice_retry_overflows_total: maxRetries reached (Envoy's upstream_rq_retry_overflow)
  MirrorRequests,    // sluice_mirror_requests_total
  // A request body larger than ProxyOptions::request_body_buffer_limit is
  // streamed without being kept: counted once per request, and again for
  // each retry or mirror it then could not get.
  BodyOverLimit,         // sluice_request_body_over_limit_total
  RetriesBodyNotKept,    // sluice_retries_body_not_kept_total
  MirrorsBodyNotKept,    // sluice_mirror_body_not_kept_total
  // Upstream connections per subset cluster and backend (Envoy's
  // upstream_cx_total and upstream_cx_active), with destination_version.
  UpstreamConnectionsOpened,   // sluice_upstream_connections_opened_total
  UpstreamConnectionsActive,   // sluice_upstream_connections_active (gauge)
  // Upstream connections that reached the cluster's maxConnectionDuration
  // (Envoy's upstream_cx_max_duration_reached).
  UpstreamMaxDurationReached,   // sluice_upstream_connections_max_duration_reached_total
  // Requests ended by ProxyOptions::request_timeout / stream_idle_timeout.
  RequestTimeouts,      // sluice_request_timeouts_total
  StreamIdleTimeouts,   // sluice_stream_idle_timeouts_total
  // A worker at ProxyOptions::max_connections_per_worker slots refused
  // something: a client connection (closed at accept), an HTTP/2 stream
  // (RST_STREAM REFUSED_STREAM), an upstream connection (the attempt fails
  // as a connect failure: retried, else 503 UF).
  SlotLimitConnections,   // sluice_slot_limit_refusals_total{kind="connection"}
  SlotLimitStreams,       // sluice_slot_limit_refusals_total{kind="stream"}
  SlotLimitUpstreams,     // sluice_slot_limit_refusals_total{kind="upstream"}
  kCount,
};

// A subset cluster's circuit-breaker figures right now, all workers
// together (Envoy's upstream_rq_active, upstream_rq_pending_active,
// upstream_cx_active, upstream_rq_retry outstanding per cluster).
struct ClusterGauges {
  std::string service, version;   // destination_service, destination_version ("unknown": the whole service)
  uint32_t port = 0;               // destination_port
  int64_t requests = 0, pending = 0, connections = 0, retries = 0;
};
// sluice_cluster_{active_requests,pending_requests,connections,retries_outstanding}.
std::string render_cluster_gauges(std::span<const ClusterGauges> clusters);

struct RequestLabels {
  std::string_view service;        // destination_service (host)
  std::string_view service_name;   // destination_service_name
  std::string_view namespace_;     // destination_service_namespace
  std::string_view version;        // destination_version (subset), "unknown" if none
  std::string_view workload;       // destination_workload (endpoint name), "unknown" if none
  // The service port the request was routed to. Not an Istio label (istio_requests_total
  // has none); kept so per-port figures (sluicectl top, /ui) can tell a service's ports apart.
  uint32_t port = 0;
  // Istio's grpc_response_status: the gRPC status of a gRPC request's
  // response; -1 (an empty label) for other requests.
  int32_t grpc_status = -1;
};

// One destination subset's request figures, all workers and response codes
// together: what the agent's per-second window samples (agent/stats_window.h).
struct SubsetRequestTotals {
  std::string service, version;   // destination_service, destination_version
  uint32_t port = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;            // 5xx answers (Istio's error rate), the proxy's own included
  std::array<uint64_t, kDurationBucketsMs.size() + 1> buckets{};   // per bucket, not cumulative; last: +Inf
};

class WorkerMetrics {
 public:
  void record_request(const RequestLabels& labels, unsigned response_code, std::string_view response_flags,
                      double duration_ms);
  // `version` (destination_version, the subset) is given for the counters
  // that belong to a subset cluster: pool overflows, outlier ejections,
  // upstream connections.
  void add(ProxyCounter counter, std::string_view service, std::string_view workload, int64_t delta = 1,
           std::string_view version = {});

  // Sums several workers' metrics into Prometheus text exposition format.
  static std::string render_prometheus(std::span<const WorkerMetrics* const> workers);

  struct RequestTotals {
    uint64_t requests = 0;
    std::map<unsigned, uint64_t> by_code;
  };
  // Totals for one service (or every service with an empty name), for tests and sluicectl.
  static RequestTotals totals(std::span<const WorkerMetrics* const> workers, std::string_view service);
  // Per destination subset and port, sorted by (service, port, version).
  static std::vector<SubsetRequestTotals> subset_totals(std::span<const WorkerMetrics* const> workers);

 private:
  struct RequestStats {
    uint64_t count = 0;
    double sum_ms = 0;
    std::array<uint64_t, kDurationBucketsMs.size() + 1> buckets{};   // last: above every bound
  };
  // service, name, ns, version, workload, code, flags, port, grpc status + 1 (0: none)
  using RequestKey = std::array<uint32_t, 9>;
  using CounterKey = std::array<uint32_t, 4>;   // counter, service, workload, version ("" = none)

  uint32_t intern(std::string_view s);

  mutable std::mutex mu_;
  // Label strings by value, looked up by string_view without a copy: six
  // lookups per request, one hash and one comparison each.
  struct LabelHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint32_t, LabelHash, std::equal_to<>> ids_;
  std::vector<std::string> names_;
  std::map<RequestKey, RequestStats> requests_;
  std::map<CounterKey, int64_t> counters_;
};

}  // namespace sluice::proxy

// The compiled configuration: one immutable, versioned value that both data
// planes read. The config compiler (userspace/config) is its only producer;
// the BPF table writer, the L7 proxy, the admin API and `sluicectl explain`
// only read it. Everything a data plane needs is precomputed here: normalised
// weights, the endpoints each subset selected, the effective policy of every
// subset and port, and the routes that apply to each service port.
//
// Shared between threads as std::shared_ptr<const Snapshot>; nothing in it is
// mutated after the compiler returns it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace re2 {
class RE2;
}

namespace sluice::model {

using Duration = std::chrono::nanoseconds;
using Labels = std::map<std::string, std::string>;

// 1-based line and column, as an editor shows them; line 0 means "unknown".
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

enum class Severity { Error, Warning, Info };

struct Diagnostic {
  Severity severity = Severity::Error;
  SourceLocation where;
  std::string message;
};

// "file:line:col: error: message" — the one format every tool prints.
std::string format_diagnostic(const Diagnostic& d);

struct IpAddress {
  static constexpr uint8_t kV4 = 4;
  static constexpr uint8_t kV6 = 6;
  uint8_t family = 0;                 // kV4 or kV6; 0 = unset
  std::array<uint8_t, 16> bytes{};    // network order; IPv4 uses bytes[0..3]

  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  // The same text written into `out` (no allocation, for per-request paths);
  // empty for an unset address.
  static constexpr size_t kMaxText = 46;   // INET6_ADDRSTRLEN
  std::string_view format(std::array<char, kMaxText>& out) const;
  bool is_v4() const { return family == kV4; }
  auto operator<=>(const IpAddress&) const = default;
};

enum class Protocol { Unspecified, HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, UDP, Mongo, Redis, MySQL };
std::string_view to_string(Protocol p);
bool is_http(Protocol p);   // HTTP, HTTP2, GRPC: routable per request by the L7 plane

// Which data plane enforces a service port.
//   L7: the port speaks HTTP and has HTTP routes or needs request data
//       (header/cookie/query hashing): the XDP program passes it to the
//       local stack and sk_lookup hands it to the agent's proxy.
//   L4: everything else: steered per connection by XDP (or the DPDK forwarder).
enum class Plane { L4, L7 };

struct ServicePort {
  uint32_t number = 0;
  Protocol protocol = Protocol::Unspecified;
  std::string name;
  uint32_t target_port = 0;   // 0: endpoints listen on `number` unless they map the name
};

struct Endpoint {
  std::string name;                           // WorkloadEntry name, or "<serviceentry>/endpoints[i]"
  IpAddress address;
  Labels labels;
  std::map<std::string, uint32_t> ports;      // port name -> port the workload listens on
  uint32_t weight = 1;                        // relative weight inside any subset (>= 1)
  std::string locality;
  SourceLocation where;

  // The port this endpoint serves `port` on (named mapping, else target_port, else number).
  uint32_t port_for(const ServicePort& port) const;
};

enum class LbAlgorithm { RoundRobin, LeastRequest, Random, Passthrough, RingHash, Maglev };
std::string_view to_string(LbAlgorithm a);

struct HashKey {
  enum class Source { FiveTuple, Header, Cookie, SourceIp, QueryParameter };
  Source source = Source::FiveTuple;
  std::string name;                     // header (lowercased), cookie or query parameter name
  Duration cookie_ttl{0};
  std::string cookie_path;
};
std::string_view to_string(HashKey::Source s);

struct LoadBalancer {
  LbAlgorithm algorithm = LbAlgorithm::LeastRequest;   // Istio's default when unspecified
  HashKey hash;                                        // RingHash / Maglev only
  uint64_t ring_minimum_size = 1024;
  uint64_t maglev_table_size = 65537;                  // prime
  double least_request_bias = 1.0;                     // Envoy's active_request_bias
};

// connectionPool.tcp.tcpKeepalive: TCP keepalive on the L7 proxy's upstream
// connections (SO_KEEPALIVE; TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT). A
// field left out (0) keeps the node's default (net.ipv4.tcp_keepalive_*).
struct TcpKeepalive {
  uint32_t probes = 0;
  Duration time{0};       // idle time before the first probe
  Duration interval{0};   // between probes
  bool operator==(const TcpKeepalive&) const = default;
};

struct ConnectionPool {
  static constexpr uint32_t kUnlimited = std::numeric_limits<uint32_t>::max();
  uint32_t max_connections = kUnlimited;
  Duration connect_timeout = std::chrono::seconds(10);
  uint32_t http1_max_pending_requests = kUnlimited;
  uint32_t http2_max_requests = kUnlimited;           // max active requests
  uint32_t max_requests_per_connection = 0;           // 0 = unlimited
  uint32_t max_retries = kUnlimited;
  Duration idle_timeout = std::chrono::hours(1);
  // connectionPool.http.h2UpgradePolicy: UPGRADE speaks HTTP/2 to an HTTP
  // port's backends; ports declared http2/grpc speak it whatever this says.
  enum class H2Upgrade : uint8_t { Default, DoNotUpgrade, Upgrade };
  H2Upgrade h2_upgrade = H2Upgrade::Default;
  // connectionPool.http.useClientProtocol: the upstream speaks what the
  // client spoke (HTTP/2 for an HTTP/2 stream, HTTP/1.1 for an HTTP/1.1
  // request), whatever the port's protocol and h2UpgradePolicy say.
  bool use_client_protocol = false;
  // connectionPool.http.maxConcurrentStreams: streams per upstream HTTP/2
  // connection (the peer's SETTINGS_MAX_CONCURRENT_STREAMS, if lower, wins).
  uint32_t max_concurrent_streams = kUnlimited;
  std::optional<TcpKeepalive> tcp_keepalive;   // absent: no keepalive (the kernel's default for a socket)
  // connectionPool.tcp.maxConnectionDuration: an L7 upstream connection
  // that has been established this long takes no new request and closes
  // once its requests are done (Envoy's max_connection_duration). 0: none.
  Duration max_connection_duration{0};
  bool operator==(const ConnectionPool&) const = default;
};

struct OutlierDetection {
  bool enabled = false;
  uint32_t consecutive_5xx_errors = 5;        // 0 disables this detector
  uint32_t consecutive_gateway_errors = 0;    // 0 disables this detector
  Duration interval = std::chrono::seconds(10);
  Duration base_ejection_time = std::chrono::seconds(30);
  uint32_t max_ejection_percent = 10;
  int32_t min_health_percent = 0;
  // splitExternalLocalOriginErrors: local-origin failures (connect failure,
  // reset, timeout) count apart from the upstream's 5xx responses, toward
  // consecutiveLocalOriginFailures (0 disables); off, they count as 503s.
  bool split_external_local_origin_errors = false;
  uint32_t consecutive_local_origin_failures = 5;
  bool operator==(const OutlierDetection&) const = default;
};

struct TrafficPolicy {
  LoadBalancer load_balancer;
  ConnectionPool connection_pool;
  OutlierDetection outlier_detection;
};

struct Subset {
  std::string name;                        // "" is the implicit whole-service subset
  Labels labels;
  std::vector<uint32_t> endpoints;         // indices into Service::endpoints
  // Effective policy per service port number (rule < subset, port-level replaces).
  std::map<uint32_t, TrafficPolicy> policy_by_port;
  SourceLocation where;

  const TrafficPolicy& policy_for(uint32_t port) const;
};

struct StringMatch {
  enum class Kind { Exact, Prefix, Regex };
  Kind kind = Kind::Exact;
  std::string value;
  std::shared_ptr<const re2::RE2> regex;   // compiled once (Kind::Regex; also case-folded variants)

  bool matches(std::string_view s, bool ignore_case = false) const;
};

struct KeyMatch {
  std::string name;                        // header names lowercased
  std::optional<StringMatch> match;        // nullopt: present with any value
};

struct HttpMatch {
  std::string name;
  std::optional<StringMatch> uri, scheme, method, authority;
  std::vector<KeyMatch> headers;           // all must match
  std::vector<KeyMatch> without_headers;   // none may match
  std::vector<KeyMatch> query_params;
  bool ignore_uri_case = false;
  uint32_t port = 0;                       // 0: any
  SourceLocation where;
};

struct HeaderOperations {
  std::vector<std::pair<std::string, std::string>> set, add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

struct Headers {
  HeaderOperations request, response;
};

struct Destination {
  uint32_t service = 0;      // index into Snapshot::services
  uint32_t subset = 0;       // index into Service::subsets (0 = whole service)
  uint32_t port = 0;         // service port number
};

struct WeightedDestination {
  Destination destination;
  uint32_t weight = 0;       // as written (or as overridden at run time)
  double share = 0;          // normalised: weight / sum(weights), 0..1
  Headers headers;
};

struct Redirect {
  std::string uri, authority, scheme;
  uint32_t port = 0;
  uint32_t status = 301;
};

struct Rewrite {
  std::string uri;           // replaces the matched prefix (or the whole path on exact/regex)
  std::string authority;
  std::optional<StringMatch> uri_regex;   // uriRegexRewrite.match
  std::string uri_regex_rewrite;
};

struct DirectResponse {
  uint32_t status = 200;
  std::string body;
};

struct Retries {
  uint32_t attempts = 2;
  Duration per_try_timeout{0};              // 0: the route timeout
  std::vector<std::string> retry_on;        // Envoy tokens: 5xx, gateway-error, connect-failure, unavailable, ...
  std::vector<uint32_t> retriable_status_codes;
  // retryIgnorePreviousHosts (Istio's default: true): a retry re-picks,
  // a bounded number of times, when the pick is the host that just failed
  // (Envoy's previous_hosts predicate, host_selection_retry_max_attempts 5).
  bool ignore_previous_hosts = true;
  // backoff: the base interval of the exponential back-off between
  // attempts (Envoy's retry_back_off.base_interval, its max 10x that).
  Duration backoff = std::chrono::milliseconds(25);
};

struct Fault {
  struct Delay {
    Duration fixed{0};
    double percent = 100;
  };
  struct Abort {
    uint32_t status = 0;                    // httpStatus; 0 with grpc_status
    double percent = 100;
    // grpcStatus, as its code: a trailers-only gRPC answer. Last, so that
    // Abort{status, percent} keeps its meaning.
    std::optional<uint32_t> grpc_status;
  };
  std::optional<Delay> delay;
  std::optional<Abort> abort;
};

struct Mirror {
  Destination destination;
  double percent = 100;
};

struct HttpRoute {
  std::string name;
  std::string virtual_service;              // metadata.name of the source VirtualService
  std::vector<HttpMatch> matches;           // OR; empty matches everything
  std::vector<WeightedDestination> route;
  std::optional<Redirect> redirect;
  std::optional<Rewrite> rewrite;
  std::optional<DirectResponse> direct_response;
  Duration timeout{0};                      // 0: none
  std::optional<Retries> retries;
  std::optional<Fault> fault;
  std::vector<Mirror> mirrors;
  Headers headers;
  SourceLocation where;
};

// The routing that applies to one service port, already filtered by match.port.
struct PortRoutes {
  uint32_t port = 0;
  Plane plane = Plane::L4;
  std::vector<HttpRoute> http;              // L7 only, in order: first match wins
  // Connection-level destinations for the L4 plane: from a tcp route, else from
  // an unconditional http route (applied per connection), else the whole service.
  std::vector<WeightedDestination> l4;
  std::string l4_source;                    // "tcp[0]", "http[1] per connection", "default"
};

// How clients of some namespaces see a service, where that differs from how
// the service's own namespace sees it (docs/config-reference.md, "Namespaces
// and exportTo"): Istio gives each client namespace the VirtualService and
// DestinationRule exported to it.
struct ServiceView {
  std::vector<std::string> namespaces;      // client namespaces with this view, sorted
  std::string destination_rule;             // "namespace/name", if one applies
  std::vector<std::string> virtual_services;
  // Its routes come from the default view's VirtualService (or, like the
  // default view, from none): it differs only in DestinationRules. A
  // runtime weight override applies to it as to the default view.
  bool default_virtual_service = false;
  uint32_t first_subset = 0;                // its DestinationRule's subsets: Service::subsets[first_subset, +subset_count)
  uint32_t subset_count = 0;                // [first_subset] is the whole service under that rule's policy
  std::vector<PortRoutes> routes;           // parallel to Service::ports
};

struct Service {
  std::string host;                         // first host of the ServiceEntry (FQDN or short)
  std::vector<std::string> hosts;
  std::string kind = "ServiceEntry";        // the defining object: "ServiceEntry" or "Service" (Kubernetes)
  std::string name;                         // its metadata.name
  std::string namespace_;                   // metadata.namespace, "default" if absent
  std::vector<IpAddress> vips;
  std::vector<ServicePort> ports;
  std::vector<Endpoint> endpoints;
  std::vector<Subset> subsets;              // [0] = implicit whole-service subset
  std::vector<PortRoutes> routes;           // parallel to ports
  std::string destination_rule;             // name, if one applies
  std::vector<std::string> virtual_services;
  SourceLocation where;
  // The default view above (routes, destination_rule, virtual_services, the
  // first default_subsets subsets) is the service's own namespace's, which
  // every client whose namespace is unknown gets. `views` are the others;
  // view_of_namespace[client namespace id] is 0 for the default view, else
  // 1 + an index into `views` (ids beyond its size: default view).
  uint32_t default_subsets = 0;
  std::vector<ServiceView> views;
  std::vector<uint16_t> view_of_namespace;

  const ServicePort* port(uint32_t number) const;
  const PortRoutes* routes_for(uint32_t port) const;
  // The routes a client of namespace id `client_namespace` gets (0: unknown).
  const PortRoutes* routes_for(uint32_t port, uint32_t client_namespace) const;
  // 0 (default view) or 1 + index into `views`.
  uint32_t view_index(uint32_t client_namespace) const {
    return client_namespace < view_of_namespace.size() ? view_of_namespace[client_namespace] : 0;
  }
  // A subset of the default view by name.
  std::optional<uint32_t> subset_index(std::string_view name) const;
  // "" for a subset of the default view; for one of another view's
  // DestinationRule, that rule ("namespace/name", or "no DestinationRule"):
  // subset names repeat across views, so counters, detectors and status
  // name a view's subsets with their rule.
  std::string_view subset_rule(uint32_t subset) const;
};

struct IpAddressHash {
  size_t operator()(const IpAddress& a) const noexcept;
};

struct Snapshot {
  uint64_t version = 0;                     // strictly increasing within one process
  std::string origin;                       // "files", "kubernetes", "files+kubernetes"; "+override" after sluicectl weights
  std::vector<std::string> source_files;
  std::vector<Service> services;
  std::unordered_map<std::string, uint32_t> service_by_host;   // every host and short name
  std::vector<Diagnostic> warnings;
  // Client namespaces: id -> name; id 0 is "unknown" (""). A client's
  // namespace comes from its source address: the Pods and WorkloadEntries
  // the configuration has (docs/config-reference.md, "Namespaces and exportTo").
  std::vector<std::string> client_namespaces{std::string()};
  std::unordered_map<IpAddress, uint16_t, IpAddressHash> client_namespace_by_address;

  const Service* find_service(std::string_view host) const;
  // The client namespace id of a source address; 0 when unknown.
  uint16_t client_namespace(const IpAddress& source) const;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace sluice::model

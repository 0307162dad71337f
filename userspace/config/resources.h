// The four Istio kinds as written, after YAML decoding and field checks but
// before cross-resource resolution. Every value that a later check may point
// at keeps its SourceLocation, so the compiler can report file:line:col.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/snapshot.h"

namespace sluice::config {

using model::Diagnostic;
using model::SourceLocation;

struct ResourceMeta {
  std::string kind;
  std::string api_version;
  std::string name;
  std::string namespace_ = "default";
  SourceLocation where;      // the document's first key
};

struct HostRef {
  std::string host;
  SourceLocation where;
};

struct DestinationRef {
  std::string host;
  std::string subset;
  uint32_t port = 0;         // 0: not written
  SourceLocation where;      // the `destination` mapping
  SourceLocation host_where, subset_where, port_where;
};

struct WeightedDestinationRef {
  DestinationRef destination;
  std::optional<int64_t> weight;   // as written; negative values are rejected here
  model::Headers headers;
  SourceLocation where;
};

struct MirrorRef {
  DestinationRef destination;
  double percent = 100;
};

struct HttpRouteSpec {
  model::HttpRoute route;                      // everything but the destinations
  std::vector<WeightedDestinationRef> destinations;
  std::vector<MirrorRef> mirrors;
  std::vector<SourceLocation> match_port_where;   // parallel to route.matches
};

struct TcpMatchSpec {
  uint32_t port = 0;
  SourceLocation port_where;
};

struct TcpRouteSpec {
  std::vector<TcpMatchSpec> matches;
  std::vector<WeightedDestinationRef> destinations;
  SourceLocation where;
};

struct VirtualServiceSpec {
  ResourceMeta meta;
  std::vector<HostRef> hosts;
  std::vector<HttpRouteSpec> http;
  std::vector<TcpRouteSpec> tcp;
};

// The components of a traffic policy as written. An absent component inherits
// from the enclosing level (Istio merges per component, not per field).
struct PolicyComponents {
  std::optional<model::LoadBalancer> load_balancer;
  std::optional<model::ConnectionPool> connection_pool;
  std::optional<model::OutlierDetection> outlier_detection;
};

struct PortPolicySpec {
  uint32_t port = 0;
  PolicyComponents components;
  SourceLocation where;
};

struct TrafficPolicySpec {
  PolicyComponents components;
  std::vector<PortPolicySpec> port_level;
};

struct SubsetSpec {
  std::string name;
  model::Labels labels;
  std::optional<TrafficPolicySpec> policy;
  SourceLocation where;
};

struct DestinationRuleSpec {
  ResourceMeta meta;
  HostRef host;
  std::optional<TrafficPolicySpec> policy;
  std::vector<SubsetSpec> subsets;
};

struct ServiceEntrySpec {
  ResourceMeta meta;
  std::vector<HostRef> hosts;
  std::vector<model::IpAddress> vips;
  std::vector<model::ServicePort> ports;
  std::vector<SourceLocation> port_where;      // parallel to ports
  std::vector<model::Endpoint> endpoints;
  std::optional<model::Labels> workload_selector;
  SourceLocation selector_where;
};

struct WorkloadEntrySpec {
  ResourceMeta meta;
  model::Endpoint endpoint;
};

// Everything read from one set of files: the decoded resources in file order,
// and every diagnostic found so far.
struct ParsedConfig {
  std::vector<std::string> files;
  std::vector<ServiceEntrySpec> service_entries;
  std::vector<WorkloadEntrySpec> workload_entries;
  std::vector<VirtualServiceSpec> virtual_services;
  std::vector<DestinationRuleSpec> destination_rules;
  std::vector<Diagnostic> diagnostics;

  bool has_errors() const;
};

}  // namespace sluice::config

// The four Istio kinds as written, after YAML decoding and field checks but
// before cross-resource resolution. Every value that a later check may point
// at keeps its SourceLocation, so the compiler can report file:line:col.
#pragma once

#include <cstdint>
#include <map>
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
  model::Labels labels;      // metadata.labels (read for Kubernetes kinds only)
  // metadata.creationTimestamp as written (RFC 3339 in UTC, so the text
  // sorts as the time); empty when absent, which sorts first as Istio's zero
  // time does. Istio's order between conflicting objects: oldest, then name,
  // then namespace.
  std::string creation_timestamp;
  SourceLocation where;      // the document's first key
  // spec.exportTo (a Service's networking.istio.io/exportTo annotation) with
  // '.' replaced by the object's namespace. Empty: every namespace, Istio's
  // default; ["~"]: none (docs/config-reference.md, "exportTo").
  std::vector<std::string> export_to;
  SourceLocation export_to_where;

  // Whether the object is visible from namespace `ns`.
  bool exported_to(const std::string& ns) const {
    if (export_to.empty()) return true;
    for (const auto& e : export_to) {
      if (e == "*" || e == ns) return true;
    }
    return false;
  }
  // Exported to every namespace (no exportTo, or '*').
  bool exported_everywhere() const {
    return export_to.empty() || (export_to.size() == 1 && export_to.front() == "*");
  }
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
  // False when every match is bound to gateways other than `mesh`: the
  // route exists for an ingress gateway and never applies to mesh traffic.
  // Matches bound elsewhere are already dropped from route.matches.
  bool mesh = true;
};

struct TcpMatchSpec {
  uint32_t port = 0;
  SourceLocation port_where;
};

struct TcpRouteSpec {
  std::vector<TcpMatchSpec> matches;
  std::vector<WeightedDestinationRef> destinations;
  SourceLocation where;
  bool mesh = true;   // as HttpRouteSpec::mesh
};

struct VirtualServiceSpec {
  ResourceMeta meta;
  // `gateways` as written; empty means `mesh` only. A VirtualService whose
  // list does not name `mesh` is skipped by the decoder (with a note).
  std::vector<std::string> gateways;
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

// Kubernetes objects (core v1 Service and Pod, discovery.k8s.io/v1
// EndpointSlice), as `kubectl get -o yaml` writes them or the API returns
// them. Only what steering needs is kept; the compiler turns each Service
// into a model::Service (docs/config-reference.md, "Kubernetes objects").
struct KubeServicePort {
  std::string name;
  uint32_t port = 0;
  std::string protocol = "TCP";     // TCP, UDP, SCTP
  std::string app_protocol;         // appProtocol, as written
  uint32_t target_port = 0;         // targetPort as a number (0: a name, or absent)
  std::string target_port_name;     // targetPort as a name (a Pod containerPort name)
  SourceLocation where;
};

struct KubeServiceSpec {
  ResourceMeta meta;
  std::string type = "ClusterIP";   // ClusterIP, NodePort, LoadBalancer, ExternalName
  std::vector<model::IpAddress> cluster_ips;
  bool headless = false;            // clusterIP: None
  std::string external_name;
  std::vector<KubeServicePort> ports;
  std::optional<model::Labels> selector;
};

struct KubeEndpoint {
  std::vector<model::IpAddress> addresses;
  // EndpointConditions: an absent ready means ready, an absent serving
  // means the same as ready, an absent terminating means false (the API's
  // own rules for unset conditions).
  std::optional<bool> ready, serving, terminating;
  std::string target_kind, target_name, target_namespace;
  SourceLocation where;
};

struct EndpointSliceSpec {
  ResourceMeta meta;
  std::string service;              // label kubernetes.io/service-name
  std::string address_type;         // IPv4, IPv6, FQDN
  std::vector<KubeEndpoint> endpoints;
  std::vector<std::pair<std::string, uint32_t>> ports;   // name -> port the endpoints listen on
};

struct PodSpec {
  ResourceMeta meta;
  std::vector<model::IpAddress> ips;                // status.podIPs (or podIP)
  std::map<std::string, uint32_t> container_ports;  // containerPort name -> number
  std::string phase;                                // status.phase
  std::optional<bool> ready;                        // status.conditions[type=Ready]
  bool host_network = false;                        // spec.hostNetwork: its IP is the node's
};

// Everything read from one set of files: the decoded resources in file order,
// and every diagnostic found so far.
struct ParsedConfig {
  // What the snapshot's origin says: "files", or "kubernetes" /
  // "files+kubernetes" when objects came from the API server.
  std::string origin = "files";
  std::vector<std::string> files;
  std::vector<ServiceEntrySpec> service_entries;
  std::vector<WorkloadEntrySpec> workload_entries;
  std::vector<VirtualServiceSpec> virtual_services;
  std::vector<DestinationRuleSpec> destination_rules;
  std::vector<KubeServiceSpec> kube_services;
  std::vector<EndpointSliceSpec> endpoint_slices;
  std::vector<PodSpec> pods;
  std::vector<Diagnostic> diagnostics;

  bool has_errors() const;
};

}  // namespace sluice::config

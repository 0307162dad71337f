#include "config/compiler.h"

#include "config/decoders.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace sluice::config {

using model::Severity;

size_t CompileResult::error_count() const {
  return static_cast<size_t>(std::count_if(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& d) {
    return d.severity == Severity::Error;
  }));
}

namespace {

std::string port_list(const model::Service& s) {
  std::string out;
  for (const auto& p : s.ports) {
    if (!out.empty()) out += ", ";
    out += std::to_string(p.number);
  }
  return out;
}

std::string label_list(const model::Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ",";
    out += k + "=" + v;
  }
  return out.empty() ? "{}" : out;
}

bool labels_match(const model::Labels& selector, const model::Labels& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

// Candidates for a label selector: the shortest posting list among the
// selector's labels, so selection costs O(matches), not O(all endpoints).
class LabelIndex {
 public:
  void add(const std::string& scope, const model::Labels& labels, uint32_t id) {
    all_[scope].push_back(id);
    for (const auto& [k, v] : labels) postings_[key(scope, k, v)].push_back(id);
  }
  // Ids whose labels may match `selector` (a superset; callers check labels).
  const std::vector<uint32_t>& candidates(const std::string& scope,
                                          const model::Labels& selector) const {
    static const std::vector<uint32_t> kNone;
    if (selector.empty()) {
      auto it = all_.find(scope);
      return it == all_.end() ? kNone : it->second;
    }
    const std::vector<uint32_t>* best = nullptr;
    for (const auto& [k, v] : selector) {
      auto it = postings_.find(key(scope, k, v));
      if (it == postings_.end()) return kNone;
      if (best == nullptr || it->second.size() < best->size()) best = &it->second;
    }
    return *best;
  }

 private:
  static std::string key(const std::string& scope, const std::string& k, const std::string& v) {
    std::string out;
    out.reserve(scope.size() + k.size() + v.size() + 2);
    out += scope;
    out += '\0';
    out += k;
    out += '\0';
    out += v;
    return out;
  }
  std::unordered_map<std::string, std::vector<uint32_t>> all_;
  std::unordered_map<std::string, std::vector<uint32_t>> postings_;
};

model::TrafficPolicy apply_components(const PolicyComponents& c) {
  model::TrafficPolicy p;
  if (c.load_balancer) p.load_balancer = *c.load_balancer;
  if (c.connection_pool) p.connection_pool = *c.connection_pool;
  if (c.outlier_detection) p.outlier_detection = *c.outlier_detection;
  return p;
}

bool needs_request_data(const model::LoadBalancer& lb) {
  using Src = model::HashKey::Source;
  const bool hashing = lb.algorithm == model::LbAlgorithm::RingHash ||
                       lb.algorithm == model::LbAlgorithm::Maglev;
  return hashing && (lb.hash.source == Src::Header || lb.hash.source == Src::Cookie ||
                     lb.hash.source == Src::QueryParameter);
}

// Connection-pool limits and outlier detection are enforced by the L7 proxy
// only (docs/l7-proxy.md), so an HTTP port whose policy sets them is served there.
bool needs_l7_enforcement(const model::TrafficPolicy& p) {
  const auto& cp = p.connection_pool;
  constexpr auto kUnlimited = model::ConnectionPool::kUnlimited;
  return p.outlier_detection.enabled || cp.max_connections != kUnlimited ||
         cp.http1_max_pending_requests != kUnlimited || cp.http2_max_requests != kUnlimited ||
         cp.max_requests_per_connection != 0 || cp.max_retries != kUnlimited;
}

// Istio's retry policy for an HTTP route that has no `retries` field: two
// retries on connect-failure, refused-stream, unavailable, cancelled and the
// retriable status code 503 (Envoy tokens; unavailable and cancelled are
// gRPC statuses, which an HTTP/1.1 upstream does not send).
model::Retries istio_default_retries() {
  model::Retries r;
  r.attempts = 2;
  r.retry_on = {"connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"};
  r.retriable_status_codes = {503};
  return r;
}

// A destination after name resolution; port 0 means "the port being routed".
// The subset is found per client view (place()), since which
// DestinationRule defines it depends on the client's namespace.
struct ResolvedDestination {
  uint32_t service = 0;
  const DestinationRef* ref = nullptr;   // subset name and its location
  uint32_t port = 0;
  bool ok = false;
};

struct ResolvedVirtualService {
  const VirtualServiceSpec* spec = nullptr;
  std::vector<std::vector<ResolvedDestination>> http_route, http_mirrors, tcp_route;
  std::vector<uint32_t> targets;                  // services its hosts resolve to
  std::vector<const SourceLocation*> target_where;   // the host naming each target
  std::vector<uint32_t> destinations;             // services its routes and mirrors name, sorted
};

// A service's subsets under one DestinationRule: Service::subsets[first, first + count).
struct SubsetBlock {
  uint32_t first = 0;
  uint32_t count = 0;
};

class SnapshotCompiler {
 public:
  SnapshotCompiler(const ParsedConfig& in, uint64_t version) : in_(in) {
    diagnostics_ = in.diagnostics;
    snapshot_ = std::make_shared<model::Snapshot>();
    snapshot_->version = version;
    snapshot_->origin = in.origin;
    snapshot_->source_files = in.files;
  }

  CompileResult run() {
    build_services();
    select_workload_entries();
    select_kubernetes_endpoints();
    collect_client_namespaces();
    apply_destination_rules();
    resolve_virtual_services();
    choose_views();
    build_port_routes();
    return finish();
  }

 private:
  // A finding repeated by several client views is reported once.
  void report(Severity s, SourceLocation where, std::string message) {
    std::string key = where_text(where) + '\0' + message;
    if (!reported_.insert(std::move(key)).second) return;
    diagnostics_.push_back({s, std::move(where), std::move(message)});
  }
  void error(SourceLocation where, std::string message) {
    report(Severity::Error, std::move(where), std::move(message));
  }
  void warning(SourceLocation where, std::string message) {
    report(Severity::Warning, std::move(where), std::move(message));
  }

  model::Service& service(uint32_t i) { return snapshot_->services[i]; }

  static bool short_name(const std::string& host) { return host.find('.') == std::string::npos; }

  // A short name is read in the referring rule's namespace only, as Istio
  // does: `reviews` in namespace A is reviews.A.svc.cluster.local, never
  // another namespace's reviews.
  std::optional<uint32_t> resolve_host(const std::string& host, const std::string& ns) const {
    auto& index = snapshot_->service_by_host;
    const std::string key = short_name(host) ? host + "." + ns + ".svc.cluster.local" : host;
    if (auto it = index.find(key); it != index.end()) return it->second;
    return std::nullopt;
  }

  std::string no_service_message(std::string_view what, const std::string& host, const std::string& ns) const {
    std::string msg = std::string(what) + " '" + host + "' matches no ServiceEntry host";
    std::string short_note;
    if (short_name(host)) {
      short_note = "; a short name is read in the rule's namespace: '" + host + "." + ns + ".svc.cluster.local'";
      std::string elsewhere;
      for (const auto& s : snapshot_->services) {
        if (s.name == host || std::find(s.hosts.begin(), s.hosts.end(), host) != s.hosts.end()) {
          const std::string full = short_name(s.host) ? s.host + "." + s.namespace_ + ".svc.cluster.local" : s.host;
          elsewhere += (elsewhere.empty() ? "" : ", ") + full;
        }
      }
      if (!elsewhere.empty()) short_note += " (write the full name of " + elsewhere + ")";
    }
    if (snapshot_->services.empty()) return msg + " (no ServiceEntry is defined)" + short_note;
    msg += " (known: ";
    size_t n = 0;
    for (const auto& s : snapshot_->services) {
      if (n++ == 5) {
        msg += ", ...";
        break;
      }
      if (n > 1) msg += ", ";
      msg += s.host;
    }
    return msg + ")" + short_note;
  }

  // --- services ---------------------------------------------------------------
  void build_services() {
    std::unordered_map<std::string, const HostRef*> primary;
    auto& services = snapshot_->services;
    services.reserve(in_.service_entries.size() + in_.kube_services.size());
    // Istio prefers a Kubernetes Service over a ServiceEntry for the same
    // host (so a ServiceEntry cannot squat on a Service's name): the
    // Services' hosts are known before any ServiceEntry is read.
    std::unordered_map<std::string, const KubeServiceSpec*> kube_host;
    for (const auto& ks : in_.kube_services) {
      if (ks.type != "ExternalName") kube_host.emplace(ks.meta.name + "." + ks.meta.namespace_ + ".svc.cluster.local", &ks);
    }
    // A host that ServiceEntries in two namespaces define: Istio keeps both,
    // and each client namespace sees its own, else the first in Istio's
    // conflict order (oldest, then name, then namespace). sluice has one
    // view of a service for every client, so it keeps that first one and
    // warns at the others. Two in one namespace are merged, as Istio merges
    // them: the later one's ports, addresses and endpoints join the service
    // of the first (merge_service_entry).
    auto key_of = [](const std::string& host, const ResourceMeta& meta) {
      return short_name(host) ? host + "." + meta.namespace_ + ".svc.cluster.local" : host;
    };
    auto istio_first = [](const ResourceMeta& a, const ResourceMeta& b) {
      return std::tie(a.creation_timestamp, a.name, a.namespace_) < std::tie(b.creation_timestamp, b.name, b.namespace_);
    };
    std::unordered_map<std::string, size_t> first_definer;   // host key -> index in in_.service_entries
    for (size_t i = 0; i < in_.service_entries.size(); ++i) {
      const auto& se = in_.service_entries[i];
      for (const auto& h : se.hosts) {
        const std::string key = key_of(h.host, se.meta);
        if (kube_host.contains(key)) continue;
        auto [it, inserted] = first_definer.emplace(key, i);
        const auto& held = in_.service_entries[it->second].meta;
        if (!inserted && held.namespace_ != se.meta.namespace_ && istio_first(se.meta, held)) it->second = i;
      }
    }
    std::unordered_map<std::string, uint32_t> se_host_service;   // host key -> index of the service holding it
    for (size_t se_index = 0; se_index < in_.service_entries.size(); ++se_index) {
      const auto& se = in_.service_entries[se_index];
      se_service_index_.push_back(std::nullopt);
      se_merged_into_.emplace_back();
      const auto index = static_cast<uint32_t>(services.size());
      model::Service s;
      for (const auto& h : se.hosts) {
        // A short host is NAME.NAMESPACE.svc.cluster.local, as Istio reads
        // it: the same short name in two namespaces is two services.
        const bool short_host = short_name(h.host);
        const std::string key = key_of(h.host, se.meta);
        if (auto k = kube_host.find(key); k != kube_host.end()) {
          const auto& km = k->second->meta;
          warning(h.where, "host '" + h.host + "' of ServiceEntry '" + se.meta.namespace_ + "/" + se.meta.name +
                               "' is Kubernetes Service '" + km.namespace_ + "/" + km.name + "' (" + km.where.file +
                               ":" + std::to_string(km.where.line) +
                               "): the Service is used and this host of the ServiceEntry is ignored, as Istio "
                               "prefers a Kubernetes Service to a ServiceEntry for the same host");
          continue;
        }
        if (const size_t first = first_definer.at(key); first != se_index) {
          const auto& other = in_.service_entries[first].meta;
          if (other.namespace_ != se.meta.namespace_) {
            warning(h.where, "host '" + h.host + "' of ServiceEntry '" + se.meta.namespace_ + "/" + se.meta.name +
                                 "' is also defined by ServiceEntry '" + other.namespace_ + "/" + other.name + "' (" +
                                 other.where.file + ":" + std::to_string(other.where.line) +
                                 "), which comes first in Istio's order (oldest creationTimestamp, then name, then "
                                 "namespace): sluice has one view of a host for every client namespace, so this "
                                 "definition is ignored");
            continue;
          }
        }
        auto [it, inserted] = primary.emplace(key, &h);
        if (!inserted) {
          if (auto holder = se_host_service.find(key); holder != se_host_service.end()) {
            merge_service_entry(se, h, holder->second);
            se_merged_into_.back().push_back(holder->second);
            continue;
          }
          error(h.where, "host '" + h.host + "' is already defined at " + it->second->where.file + ":" +
                             std::to_string(it->second->where.line));
          continue;
        }
        se_host_service.emplace(key, index);
        s.hosts.push_back(h.host);
        // The bare short name stays a lookup key (first definition wins) for
        // callers without a namespace (sluicectl weights HOST, find_service);
        // rules never resolve through it (resolve_host).
        snapshot_->service_by_host.emplace(h.host, index);
        if (short_host) snapshot_->service_by_host.emplace(key, index);
      }
      if (s.hosts.empty()) continue;
      s.host = s.hosts.front();
      s.name = se.meta.name;
      s.namespace_ = se.meta.namespace_;
      s.vips = se.vips;
      s.ports = se.ports;
      s.endpoints = se.endpoints;
      s.where = se.meta.where;
      if (se.vips.empty()) {
        warning(se.meta.where, "ServiceEntry '" + se.meta.name +
                                   "' has no addresses: sluice has no VIP to steer for '" + s.host +
                                   "' (its routes are still compiled for destinations)");
      }
      se_service_index_.back() = index;
      service_meta_.push_back(&se.meta);
      services.push_back(std::move(s));
    }
    for (const auto& ks : in_.kube_services) build_kube_service(ks, primary);
    // Short and long forms of every host, after all primaries so an explicit
    // host always wins over another service's alias.
    for (uint32_t i = 0; i < services.size(); ++i) {
      for (const auto& h : services[i].hosts) {
        const std::string& ns = services[i].namespace_;
        std::vector<std::string> aliases;
        if (h.find('.') == std::string::npos) {
          aliases = {h + "." + ns, h + "." + ns + ".svc", h + "." + ns + ".svc.cluster.local"};
        } else if (const std::string suffix = ".svc.cluster.local";
                   h.size() > suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0) {
          const std::string stem = h.substr(0, h.size() - suffix.size());   // name.namespace
          const auto dot = stem.find('.');
          if (dot != std::string::npos) {
            aliases = {stem.substr(0, dot), stem, stem + ".svc"};
          }
        }
        for (auto& a : aliases) snapshot_->service_by_host.emplace(std::move(a), i);
      }
    }
  }

  // A second ServiceEntry of one namespace for a host the first defines:
  // Istio merges them into one service, so its ports (a number the service
  // has keeps the first's protocol; a different one is a warning, Istio's
  // IST0177), addresses and endpoints join the service of the first (its
  // workloadSelector too: select_workload_entries). The first's exportTo,
  // name and location stay the service's.
  void merge_service_entry(const ServiceEntrySpec& se, const HostRef& h, uint32_t into) {
    model::Service& s = service(into);
    const ResourceMeta& first = *service_meta_[into];
    std::vector<std::string> added;
    for (size_t i = 0; i < se.ports.size(); ++i) {
      const model::ServicePort& p = se.ports[i];
      if (const model::ServicePort* have = s.port(p.number)) {
        if (have->protocol != p.protocol)
          warning(i < se.port_where.size() ? se.port_where[i] : se.meta.where,
                  "port " + std::to_string(p.number) + " of ServiceEntry '" + se.meta.namespace_ + "/" + se.meta.name +
                      "' is " + std::string(model::to_string(p.protocol)) + ", but ServiceEntry '" +
                      first.namespace_ + "/" + first.name + "' defines host '" + h.host + "' port " +
                      std::to_string(p.number) + " as " + std::string(model::to_string(have->protocol)) +
                      ": the first definition is used (Istio can use one protocol for a host and port)");
        continue;
      }
      s.ports.push_back(p);
      added.push_back("port " + std::to_string(p.number));
    }
    for (const auto& vip : se.vips) {
      if (std::find(s.vips.begin(), s.vips.end(), vip) != s.vips.end()) continue;
      s.vips.push_back(vip);
      added.push_back("address " + vip.to_string());
    }
    size_t endpoints = 0;
    for (const auto& e : se.endpoints) {
      const bool same = std::any_of(s.endpoints.begin(), s.endpoints.end(), [&](const model::Endpoint& x) {
        return x.address == e.address && x.ports == e.ports && x.labels == e.labels;
      });
      if (same) continue;
      s.endpoints.push_back(e);
      ++endpoints;
    }
    if (endpoints) added.push_back(std::to_string(endpoints) + " endpoint(s)");
    if (se.workload_selector) added.push_back("the WorkloadEntries its workloadSelector selects");
    std::string list;
    for (const auto& a : added) list += (list.empty() ? "" : ", ") + a;
    report(Severity::Info, h.where,
           "host '" + h.host + "' of ServiceEntry '" + se.meta.namespace_ + "/" + se.meta.name +
               "' is also defined by ServiceEntry '" + first.namespace_ + "/" + first.name + "' (" +
               where_text(first.where) + ") in the same namespace: merged into it, as Istio does (" +
               (list.empty() ? std::string("nothing new") : "adds " + list) + "; exportTo and location are '" +
               first.name + "''s)");
  }

  // A Kubernetes Service as Istio sees it: host name.namespace.svc.cluster.local,
  // its cluster IPs as VIPs, each port's protocol from appProtocol or the
  // port name's prefix. ExternalName services are DNS aliases: nothing to steer.
  void build_kube_service(const KubeServiceSpec& ks, std::unordered_map<std::string, const HostRef*>& primary) {
    const std::string what = "Service '" + ks.meta.namespace_ + "/" + ks.meta.name + "'";
    kube_service_index_.push_back(std::nullopt);
    if (ks.type == "ExternalName") {
      report(Severity::Info, ks.meta.where, what + " is an ExternalName alias of '" + ks.external_name +
                                                "': it has no cluster IP or endpoints, so sluice steers nothing for it "
                                                "and it is not a route destination");
      return;
    }
    model::Service s;
    s.host = ks.meta.name + "." + ks.meta.namespace_ + ".svc.cluster.local";
    kube_hosts_.push_back({s.host, ks.meta.where});
    auto [it, inserted] = primary.emplace(s.host, &kube_hosts_.back());
    if (!inserted) {
      error(ks.meta.where, "host '" + s.host + "' of " + what + " is already defined at " + it->second->where.file +
                               ":" + std::to_string(it->second->where.line));
      return;
    }
    const auto index = static_cast<uint32_t>(snapshot_->services.size());
    snapshot_->service_by_host.emplace(s.host, index);
    s.hosts = {s.host};
    s.kind = "Service";
    s.name = ks.meta.name;
    s.namespace_ = ks.meta.namespace_;
    s.vips = ks.cluster_ips;
    s.where = ks.meta.where;
    for (const auto& kp : ks.ports) {
      if (kp.protocol == "SCTP") {
        warning(kp.where, what + " port " + std::to_string(kp.port) + " is SCTP, which sluice does not steer");
        continue;
      }
      model::ServicePort port;
      port.number = kp.port;
      port.name = kp.name;
      port.protocol = kube_port_protocol(kp);
      port.target_port = kp.target_port;
      if (s.port(port.number)) continue;   // the same number for TCP and UDP: one port to sluice
      s.ports.push_back(port);
    }
    if (ks.headless) {
      report(Severity::Info, ks.meta.where, what + " is headless (clusterIP: None): sluice has no VIP to steer for it; "
                                                "it is still a route destination");
    }
    kube_service_index_.back() = index;
    service_meta_.push_back(&ks.meta);
    snapshot_->services.push_back(std::move(s));
  }

  // Istio's order: appProtocol, then the port name's prefix ("http-web",
  // "grpc"), then UDP from the Service's protocol; anything else is
  // unspecified, which sluice steers per connection.
  static model::Protocol kube_port_protocol(const KubeServicePort& kp) {
    using P = model::Protocol;
    if (!kp.app_protocol.empty()) {
      if (kp.app_protocol == "kubernetes.io/h2c") return P::HTTP2;
      if (kp.app_protocol == "kubernetes.io/ws") return P::HTTP;
      if (kp.app_protocol == "kubernetes.io/wss") return P::TLS;
      if (auto p = protocol_from_name(kp.app_protocol)) return *p;
    }
    if (auto p = protocol_from_name(kp.name.substr(0, kp.name.find('-')))) return *p;
    if (kp.protocol == "UDP") return P::UDP;
    return P::Unspecified;
  }

  // Endpoints as kube-proxy picks them: the ready endpoints of every
  // EndpointSlice labelled with the Service's name; only when none is ready,
  // the terminating ones that are still serving. Each endpoint's labels are
  // its Pod's (targetRef, else the Pod with that IP), so DestinationRule
  // subsets select Pods by label as in Istio.
  void select_kubernetes_endpoints() {
    std::unordered_map<std::string, const PodSpec*> pod_by_name, pod_by_ip;
    for (const auto& pod : in_.pods) {
      pod_by_name.emplace(pod.meta.namespace_ + "/" + pod.meta.name, &pod);
      for (const auto& ip : pod.ips) pod_by_ip.emplace(pod.meta.namespace_ + "/" + ip.to_string(), &pod);
    }
    std::unordered_map<std::string, std::vector<const EndpointSliceSpec*>> slices_of;
    for (const auto& slice : in_.endpoint_slices) slices_of[slice.meta.namespace_ + "/" + slice.service].push_back(&slice);

    for (size_t k = 0; k < in_.kube_services.size(); ++k) {
      if (!kube_service_index_[k]) continue;
      const KubeServiceSpec& ks = in_.kube_services[k];
      model::Service& s = service(*kube_service_index_[k]);
      const std::string what = "Service '" + ks.meta.namespace_ + "/" + ks.meta.name + "'";
      auto slices = slices_of.find(ks.meta.namespace_ + "/" + ks.meta.name);
      if (slices != slices_of.end()) {
        endpoints_from_slices(s, slices->second, pod_by_name, pod_by_ip);
      } else if (ks.selector && !ks.selector->empty()) {
        endpoints_from_pods(s, ks, what);
      }
      if (ks.selector && !ks.selector->empty()) endpoints_from_workload_entries(s, ks, what);
      if (s.endpoints.empty()) {
        warning(ks.meta.where, what + " has no ready endpoint" +
                                   (slices == slices_of.end() ? std::string(" (no EndpointSlice names it") +
                                                                    (ks.selector ? " and no Pod matches its selector)" : ")")
                                                              : std::string()) +
                                   ": '" + s.host + "' has no backends");
      }
    }
  }

  void endpoints_from_slices(model::Service& s, const std::vector<const EndpointSliceSpec*>& slices,
                             const std::unordered_map<std::string, const PodSpec*>& pod_by_name,
                             const std::unordered_map<std::string, const PodSpec*>& pod_by_ip) {
    struct Candidate {
      const EndpointSliceSpec* slice;
      const KubeEndpoint* endpoint;
    };
    std::vector<Candidate> ready, terminating;
    for (const auto* slice : slices) {
      for (const auto& e : slice->endpoints) {
        const bool is_ready = e.ready.value_or(true);
        const bool serving = e.serving.value_or(is_ready);
        if (is_ready) ready.push_back({slice, &e});
        else if (serving && e.terminating.value_or(false)) terminating.push_back({slice, &e});
      }
    }
    std::set<model::IpAddress> seen;
    for (const auto& c : ready.empty() ? terminating : ready) {
      // The first address is the endpoint's; the others are the same Pod.
      const model::IpAddress& address = c.endpoint->addresses.front();
      if (!seen.insert(address).second) continue;
      model::Endpoint e;
      e.address = address;
      e.where = c.endpoint->where;
      for (const auto& [name, port] : c.slice->ports) e.ports[name] = port;
      const PodSpec* pod = nullptr;
      if (c.endpoint->target_kind == "Pod") {
        if (auto it = pod_by_name.find(c.endpoint->target_namespace + "/" + c.endpoint->target_name); it != pod_by_name.end())
          pod = it->second;
      }
      if (!pod) {
        if (auto it = pod_by_ip.find(c.slice->meta.namespace_ + "/" + address.to_string()); it != pod_by_ip.end())
          pod = it->second;
      }
      if (pod) {
        e.name = pod->meta.name;
        e.labels = pod->meta.labels;
      } else {
        e.name = c.endpoint->target_name.empty() ? c.slice->meta.name + "/" + address.to_string() : c.endpoint->target_name;
        report(Severity::Info, c.endpoint->where,
               "endpoint " + address.to_string() + " of EndpointSlice '" + c.slice->meta.name +
                   "' has no Pod in the configuration" +
                   (c.endpoint->target_name.empty() ? std::string() : " ('" + c.endpoint->target_name + "')") +
                   ": it has no labels, so only subsets without labels select it");
      }
      s.endpoints.push_back(std::move(e));
    }
  }

  // As in Istio, a Service's selector also picks the WorkloadEntries of its
  // namespace whose labels match (VMs behind a Kubernetes Service), beside
  // its Pods; an address that is already an endpoint is not added twice.
  void endpoints_from_workload_entries(model::Service& s, const KubeServiceSpec& ks, const std::string& what) {
    std::set<model::IpAddress> seen;
    for (const auto& e : s.endpoints) seen.insert(e.address);
    size_t added = 0;
    for (const auto& we : in_.workload_entries) {
      if (we.meta.namespace_ != ks.meta.namespace_ || !labels_match(*ks.selector, we.endpoint.labels)) continue;
      if (!seen.insert(we.endpoint.address).second) continue;
      s.endpoints.push_back(we.endpoint);
      ++added;
    }
    if (added > 0) {
      report(Severity::Info, ks.meta.where, what + ": its selector " + label_list(*ks.selector) + " also picks " +
                                                std::to_string(added) + " WorkloadEntr" + (added == 1 ? "y" : "ies") +
                                                " of its namespace, as in Istio");
    }
  }

  // No EndpointSlice names the Service (a hand-written fixture, or objects
  // listed without them): its selector picks the namespace's running,
  // ready Pods, and a named targetPort is looked up among their containerPorts.
  void endpoints_from_pods(model::Service& s, const KubeServiceSpec& ks, const std::string& what) {
    for (const auto& pod : in_.pods) {
      if (pod.meta.namespace_ != ks.meta.namespace_ || pod.ips.empty()) continue;
      if (!labels_match(*ks.selector, pod.meta.labels)) continue;
      if ((!pod.phase.empty() && pod.phase != "Running") || !pod.ready.value_or(true)) continue;
      model::Endpoint e;
      e.name = pod.meta.name;
      e.address = pod.ips.front();
      e.labels = pod.meta.labels;
      e.where = pod.meta.where;
      for (const auto& kp : ks.ports) {
        if (kp.target_port_name.empty()) continue;
        if (auto it = pod.container_ports.find(kp.target_port_name); it != pod.container_ports.end()) {
          e.ports[kp.name] = it->second;
        } else {
          warning(kp.where, what + " targetPort '" + kp.target_port_name + "' names no containerPort of Pod '" +
                                pod.meta.name + "'; using port " + std::to_string(kp.port));
        }
      }
      s.endpoints.push_back(std::move(e));
    }
    if (!s.endpoints.empty()) {
      report(Severity::Info, ks.meta.where, what + " has no EndpointSlice: its " + std::to_string(s.endpoints.size()) +
                                                " endpoint(s) are the ready Pods its selector " + label_list(*ks.selector) +
                                                " matches");
    }
  }

  void select_workload_entries() {
    LabelIndex index;
    for (uint32_t i = 0; i < in_.workload_entries.size(); ++i) {
      const auto& we = in_.workload_entries[i];
      index.add(we.meta.namespace_, we.endpoint.labels, i);
    }
    for (size_t k = 0; k < in_.service_entries.size(); ++k) {
      const auto& se = in_.service_entries[k];
      // A ServiceEntry merged into another's service selects for it too.
      if (se.workload_selector) {
        for (uint32_t into : se_merged_into_[k]) {
          model::Service& merged = service(into);
          for (uint32_t id : index.candidates(se.meta.namespace_, *se.workload_selector)) {
            const auto& we = in_.workload_entries[id];
            if (!labels_match(*se.workload_selector, we.endpoint.labels)) continue;
            const bool have = std::any_of(merged.endpoints.begin(), merged.endpoints.end(),
                                          [&](const model::Endpoint& e) { return e.name == we.endpoint.name &&
                                                                                 e.address == we.endpoint.address; });
            if (!have) merged.endpoints.push_back(we.endpoint);
          }
        }
      }
      if (!se_service_index_[k]) continue;
      model::Service& s = service(*se_service_index_[k]);
      if (se.workload_selector) {
        for (uint32_t id : index.candidates(se.meta.namespace_, *se.workload_selector)) {
          const auto& we = in_.workload_entries[id];
          if (labels_match(*se.workload_selector, we.endpoint.labels)) s.endpoints.push_back(we.endpoint);
        }
        if (s.endpoints.empty()) {
          warning(se.selector_where, "workloadSelector " + label_list(*se.workload_selector) +
                                         " of ServiceEntry '" + se.meta.name +
                                         "' selects no WorkloadEntry in namespace '" +
                                         se.meta.namespace_ + "'");
        }
      } else if (s.endpoints.empty()) {
        warning(se.meta.where, "ServiceEntry '" + se.meta.name +
                                   "' has neither endpoints nor a workloadSelector: '" + s.host +
                                   "' has no backends");
      }
    }
  }

  // --- client namespaces ------------------------------------------------------
  // Every namespace the configuration names (objects' namespaces) may have
  // clients; a client's namespace is known from its source address: a
  // Pod's IPs or a WorkloadEntry's address. A host-network Pod has the
  // node's address, shared with every host process, so it tells nothing.
  void collect_client_namespaces() {
    std::set<std::string> names;
    for (const auto& p : in_.pods) names.insert(p.meta.namespace_);
    for (const auto& we : in_.workload_entries) names.insert(we.meta.namespace_);
    for (const auto& se : in_.service_entries) names.insert(se.meta.namespace_);
    for (const auto& ks : in_.kube_services) names.insert(ks.meta.namespace_);
    for (const auto& vs : in_.virtual_services) names.insert(vs.meta.namespace_);
    for (const auto& dr : in_.destination_rules) names.insert(dr.meta.namespace_);
    for (const auto& svc : snapshot_->services) names.insert(svc.namespace_);
    auto& ids = snapshot_->client_namespaces;
    for (const auto& n : names) {
      if (ids.size() > std::numeric_limits<uint16_t>::max()) break;
      namespace_id_.emplace(n, static_cast<uint16_t>(ids.size()));
      ids.push_back(n);
    }
    struct Claim {
      uint16_t ns;
      const SourceLocation* where;
    };
    std::map<model::IpAddress, std::vector<Claim>> claims;
    for (const auto& p : in_.pods) {
      if (p.host_network) continue;
      for (const auto& ip : p.ips) claims[ip].push_back({namespace_id_.at(p.meta.namespace_), &p.meta.where});
    }
    for (const auto& we : in_.workload_entries) {
      claims[we.endpoint.address].push_back({namespace_id_.at(we.meta.namespace_), &we.meta.where});
    }
    for (const auto& [address, list] : claims) {
      const auto other = std::find_if(list.begin(), list.end(), [&](const Claim& c) { return c.ns != list.front().ns; });
      if (other == list.end()) {
        snapshot_->client_namespace_by_address.emplace(address, list.front().ns);
        continue;
      }
      report(Severity::Info, *other->where,
             "address " + address.to_string() + " belongs to namespaces '" + ids[list.front().ns] + "' (" +
                 where_text(*list.front().where) + ") and '" + ids[other->ns] +
                 "': its clients get each service's own namespace's view (docs/config-reference.md, "
                 "\"Namespaces and exportTo\")");
    }
  }

  uint16_t namespace_id(const std::string& ns) const { return namespace_id_.at(ns); }

  // --- destination rules ------------------------------------------------------
  static constexpr const char* kRootNamespace = "istio-system";   // Istio's default configuration root

  static std::string where_text(const SourceLocation& w) {
    return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.column);
  }

  // Istio's lookup of a service's DestinationRule for the clients of
  // namespace `client`: a rule in the client's namespace, else one in the
  // service's namespace, else one in the root namespace (istio-system),
  // each exported to the client's namespace. Two rules at the first level
  // that has any are a conflict for those clients.
  const DestinationRuleSpec* choose_destination_rule(uint32_t si, const std::string& client) {
    const std::string& own = service(si).namespace_;
    for (const std::string* level : {&client, &own}) {
      if (const auto* dr = first_rule_in(si, *level, client)) return dr;
    }
    return first_rule_in(si, kRootNamespace, client);
  }

  const DestinationRuleSpec* first_rule_in(uint32_t si, const std::string& ns, const std::string& client) {
    const DestinationRuleSpec* chosen = nullptr;
    for (const auto* dr : dr_candidates_[si]) {
      if (dr->meta.namespace_ != ns || !dr->meta.exported_to(client)) continue;
      if (chosen == nullptr) {
        chosen = dr;
        continue;
      }
      error(dr->host.where, "host '" + dr->host.host + "' already has DestinationRule '" + chosen->meta.name + "' (" +
                                chosen->meta.where.file + ":" + std::to_string(chosen->meta.where.line) +
                                ") for clients of namespace '" + client + "'; sluice does not merge rules");
    }
    return chosen;
  }

  void apply_destination_rules() {
    const auto n = snapshot_->services.size();
    dr_candidates_.assign(n, {});
    for (const auto& dr : in_.destination_rules) {
      if (dr.host.host.empty()) continue;
      auto idx = resolve_host(dr.host.host, dr.meta.namespace_);
      if (!idx) {
        error(dr.host.where, no_service_message("DestinationRule '" + dr.meta.name + "' host", dr.host.host, dr.meta.namespace_));
        continue;
      }
      dr_candidates_[*idx].push_back(&dr);
    }
    const auto& names = snapshot_->client_namespaces;
    dr_choice_.assign(n, std::vector<const DestinationRuleSpec*>(names.size(), nullptr));
    blocks_.assign(n, {});
    for (uint32_t i = 0; i < n; ++i) {
      std::set<const DestinationRuleSpec*> used;
      for (uint16_t c = 1; c < names.size(); ++c) {
        dr_choice_[i][c] = choose_destination_rule(i, names[c]);
        used.insert(dr_choice_[i][c]);
      }
      // The default view's rule first, so its subsets keep indices 0..n.
      const auto* own = dr_choice_[i][namespace_id(service(i).namespace_)];
      dr_choice_[i][0] = own;
      blocks_[i][own] = build_subsets(service(i), own, true);
      service(i).default_subsets = static_cast<uint32_t>(service(i).subsets.size());
      for (uint16_t c = 1; c < names.size(); ++c) {
        const auto* dr = dr_choice_[i][c];
        if (!blocks_[i].contains(dr)) blocks_[i][dr] = build_subsets(service(i), dr, false);
      }
      for (const auto* dr : dr_candidates_[i]) {
        if (used.contains(dr)) continue;
        report(Severity::Info, dr->host.where,
               "DestinationRule '" + dr->meta.namespace_ + "/" + dr->meta.name + "' is not applied to '" +
                   service(i).host + "' for the clients of any namespace: Istio's lookup (the client's namespace, "
                   "then the service's, then " + kRootNamespace + ", each exported to the client) finds another "
                   "rule first or it is not exported (docs/config-reference.md, \"Namespaces and exportTo\")");
      }
    }
  }

  SubsetBlock build_subsets(model::Service& s, const DestinationRuleSpec* dr, bool default_view) {
    SubsetBlock block{static_cast<uint32_t>(s.subsets.size()), 0};
    static const TrafficPolicySpec kNoPolicy;
    const TrafficPolicySpec& rule = dr && dr->policy ? *dr->policy : kNoPolicy;
    if (dr) {
      if (default_view) s.destination_rule = dr->meta.name;
      for (const auto& pp : rule.port_level) {
        if (!s.port(pp.port)) {
          warning(pp.where, "DestinationRule '" + dr->meta.name + "' portLevelSettings port " +
                                std::to_string(pp.port) + " is not a port of '" + s.host +
                                "' (ports: " + port_list(s) + ")");
        }
      }
    }
    model::Subset all;
    all.where = s.where;
    all.endpoints.resize(s.endpoints.size());
    for (uint32_t i = 0; i < s.endpoints.size(); ++i) all.endpoints[i] = i;
    all.policy_by_port = policies(s, rule.components, rule.port_level);
    s.subsets.push_back(std::move(all));
    if (dr && !dr->subsets.empty()) {
      LabelIndex index;
      for (uint32_t i = 0; i < s.endpoints.size(); ++i) index.add("", s.endpoints[i].labels, i);
      for (const auto& spec : dr->subsets) {
        if (subset_in(s, block.first, spec.name)) continue;   // duplicate, reported while decoding
        add_subset(s, *dr, rule, spec, index);
      }
    }
    block.count = static_cast<uint32_t>(s.subsets.size()) - block.first;
    return block;
  }

  // A subset of the block starting at `first`, by name ("" is the block's first).
  static std::optional<uint32_t> subset_in(const model::Service& s, uint32_t first, const std::string& name) {
    for (uint32_t i = first; i < s.subsets.size(); ++i) {
      if (i > first && s.subsets[i].name.empty()) break;   // the next block
      if (s.subsets[i].name == name) return i;
    }
    return std::nullopt;
  }

  void add_subset(model::Service& s, const DestinationRuleSpec& dr_spec, const TrafficPolicySpec& rule,
                  const SubsetSpec& spec, const LabelIndex& index) {
    const DestinationRuleSpec* dr = &dr_spec;
    model::Subset subset;
    subset.name = spec.name;
    subset.labels = spec.labels;
    subset.where = spec.where;
    for (uint32_t id : index.candidates("", spec.labels)) {
      if (labels_match(spec.labels, s.endpoints[id].labels)) subset.endpoints.push_back(id);
    }
    std::sort(subset.endpoints.begin(), subset.endpoints.end());
    if (subset.endpoints.empty()) {
      warning(spec.where, "subset '" + spec.name + "' of DestinationRule '" + dr->meta.name +
                              "' (labels " + label_list(spec.labels) + ") selects no endpoint of '" +
                              s.host + "'");
    }
    // Istio's merge: each component the subset sets replaces the rule's;
    // the subset's portLevelSettings, if any, replace the rule's list.
    PolicyComponents merged = rule.components;
    const std::vector<PortPolicySpec>* port_level = &rule.port_level;
    if (spec.policy) {
      const auto& sc = spec.policy->components;
      if (sc.load_balancer) merged.load_balancer = sc.load_balancer;
      if (sc.connection_pool) merged.connection_pool = sc.connection_pool;
      if (sc.outlier_detection) merged.outlier_detection = sc.outlier_detection;
      if (!spec.policy->port_level.empty()) port_level = &spec.policy->port_level;
      for (const auto& pp : spec.policy->port_level) {
        if (!s.port(pp.port)) {
          warning(pp.where, "subset '" + spec.name + "' portLevelSettings port " +
                                std::to_string(pp.port) + " is not a port of '" + s.host + "'");
        }
      }
    }
    subset.policy_by_port = policies(s, merged, *port_level);
    s.subsets.push_back(std::move(subset));
  }

  // Port-level settings replace the merged policy for their port entirely;
  // components they leave out fall back to the defaults, not to the rule.
  static std::map<uint32_t, model::TrafficPolicy> policies(const model::Service& s,
                                                           const PolicyComponents& merged,
                                                           const std::vector<PortPolicySpec>& port_level) {
    std::map<uint32_t, model::TrafficPolicy> out;
    const model::TrafficPolicy base = apply_components(merged);
    for (const auto& port : s.ports) {
      auto it = std::find_if(port_level.begin(), port_level.end(),
                             [&](const PortPolicySpec& pp) { return pp.port == port.number; });
      out.emplace(port.number, it == port_level.end() ? base : apply_components(it->components));
    }
    return out;
  }

  // --- virtual services -------------------------------------------------------
  std::vector<ResolvedDestination> resolve_destinations(const VirtualServiceSpec& vs,
                                                        const std::vector<WeightedDestinationRef>& refs,
                                                        const SourceLocation& route_where,
                                                        const std::string& route_name,
                                                        bool check_weights) {
    std::vector<ResolvedDestination> out;
    int64_t sum = 0;
    for (const auto& w : refs) {
      out.push_back(resolve_destination(vs, w.destination));
      sum += w.weight.value_or(0);
    }
    // A single destination takes everything whatever its weight says.
    if (check_weights && refs.size() > 1 && sum == 0) {
      error(route_where, "VirtualService '" + vs.meta.name + "' " + route_name +
                             ": route weights sum to 0, so no destination can receive traffic "
                             "(give at least one destination a positive weight)");
    }
    return out;
  }

  ResolvedDestination resolve_destination(const VirtualServiceSpec& vs, const DestinationRef& ref) {
    ResolvedDestination r;
    auto idx = resolve_host(ref.host, vs.meta.namespace_);
    if (!idx) {
      error(ref.host_where, no_service_message("destination host", ref.host, vs.meta.namespace_));
      return r;
    }
    r.service = *idx;
    r.ref = &ref;
    const model::Service& dest = service(*idx);
    if (ref.port != 0) {
      if (!dest.port(ref.port)) {
        error(ref.port_where, "destination port " + std::to_string(ref.port) + " is not a port of '" +
                                  dest.host + "' (ports: " + port_list(dest) + ")");
        return r;
      }
      r.port = ref.port;
    }
    r.ok = true;
    return r;
  }

  // The subset a destination names, as the clients of namespace id `client`
  // see the destination service (its DestinationRule for them).
  std::optional<uint32_t> view_subset(const ResolvedDestination& r, uint16_t client) {
    const model::Service& dest = service(r.service);
    const DestinationRuleSpec* dr = dr_choice_[r.service][client];
    const SubsetBlock block = blocks_[r.service].at(dr);
    const std::string& name = r.ref->subset;
    if (name.empty()) return block.first;
    if (auto i = subset_in(dest, block.first, name)) return i;
    std::string msg = "unknown subset '" + name + "' for host '" + r.ref->host + "'";
    if (block.count <= 1) {
      msg += dr == nullptr ? " (no DestinationRule applies to '" + dest.host + "')"
                           : " (DestinationRule '" + dr->meta.name + "' defines no subsets)";
    } else {
      msg += " (DestinationRule '" + dr->meta.name + "' defines ";
      for (uint32_t i = 1; i < block.count; ++i) msg += (i > 1 ? ", " : "") + dest.subsets[block.first + i].name;
      msg += ")";
    }
    if (dr_choice_[r.service][0] != dr) {
      msg += " for clients of namespace '" + snapshot_->client_namespaces[client] + "'";
    }
    error(r.ref->subset_where, msg);
    return std::nullopt;
  }

  void check_match_port(const VirtualServiceSpec& vs, const std::vector<uint32_t>& services,
                        uint32_t port, const SourceLocation& where) {
    if (port == 0 || services.empty()) return;
    for (uint32_t s : services) {
      if (service(s).port(port)) return;
    }
    std::string ports;
    for (uint32_t s : services) ports += (ports.empty() ? "" : "; ") + service(s).host + ": " + port_list(service(s));
    error(where, "VirtualService '" + vs.meta.name + "' match port " + std::to_string(port) +
                     " is not a port of its hosts (" + ports + ")");
  }

  // Every destination must be visible (exportTo of its ServiceEntry or
  // Service) from the client namespace `ns` the VirtualService routes
  // `target` for; Istio would send those clients to a service they do not
  // know (503).
  void check_destinations_visible(const ResolvedVirtualService& r, uint32_t target, const std::string& ns) {
    const VirtualServiceSpec& vs = *r.spec;
    const bool own = ns == service(target).namespace_;
    auto check = [&](const ResolvedDestination& d) {
      if (!d.ok) return;
      const ResourceMeta& owner = *service_meta_[d.service];
      if (owner.exported_to(ns)) return;
      // The service's own namespace's view is every unknown client's: an
      // error there; a warning (once per destination) for other namespaces.
      if (!own && !invisible_reported_.insert(d.ref).second) return;
      report(own ? Severity::Error : Severity::Warning, d.ref->host_where, "destination host '" + d.ref->host + "' (" + owner.kind + " '" + owner.namespace_ +
                                   "/" + owner.name + "') is not exported to namespace '" + ns + "' (exportTo at " +
                                   where_text(owner.export_to_where) + "): VirtualService '" + vs.meta.name +
                                   "' routes '" + service(target).host + "' for the clients of namespace '" + ns +
                                   "' (docs/config-reference.md, \"exportTo\")");
    };
    for (const auto* lists : {&r.http_route, &r.http_mirrors, &r.tcp_route}) {
      for (const auto& list : *lists) {
        for (const auto& d : list) check(d);
      }
    }
  }

  void resolve_virtual_services() {
    resolved_.reserve(in_.virtual_services.size());
    vs_slots_of_.assign(snapshot_->services.size(), {});
    for (const auto& vs : in_.virtual_services) {
      ResolvedVirtualService r;
      r.spec = &vs;
      for (const auto& h : vs.hosts) {
        auto idx = resolve_host(h.host, vs.meta.namespace_);
        if (!idx) {
          error(h.where, no_service_message("VirtualService '" + vs.meta.name + "' host", h.host, vs.meta.namespace_));
          continue;
        }
        if (std::find(r.targets.begin(), r.targets.end(), *idx) != r.targets.end()) continue;
        r.targets.push_back(*idx);
        r.target_where.push_back(&h.where);
      }
      for (size_t i = 0; i < vs.http.size(); ++i) {
        const auto& route = vs.http[i];
        const std::string name = "http[" + std::to_string(i) + "]";
        if (!route.mesh) {   // a gateway's route: never applied, so never resolved
          r.http_route.emplace_back();
          r.http_mirrors.emplace_back();
          continue;
        }
        r.http_route.push_back(resolve_destinations(vs, route.destinations, route.route.where, name, true));
        std::vector<ResolvedDestination> mirrors;
        for (const auto& m : route.mirrors) mirrors.push_back(resolve_destination(vs, m.destination));
        r.http_mirrors.push_back(std::move(mirrors));
        for (size_t m = 0; m < route.route.matches.size(); ++m) {
          check_match_port(vs, r.targets, route.route.matches[m].port, route.match_port_where[m]);
        }
      }
      for (size_t i = 0; i < vs.tcp.size(); ++i) {
        const auto& route = vs.tcp[i];
        const std::string name = "tcp[" + std::to_string(i) + "]";
        if (!route.mesh) {
          r.tcp_route.emplace_back();
          continue;
        }
        r.tcp_route.push_back(resolve_destinations(vs, route.destinations, route.where, name, true));
        for (const auto& m : route.matches) check_match_port(vs, r.targets, m.port, m.port_where);
      }
      std::set<uint32_t> destinations;
      for (const auto* lists : {&r.http_route, &r.http_mirrors, &r.tcp_route}) {
        for (const auto& list : *lists) {
          for (const auto& d : list) {
            if (d.ok) destinations.insert(d.service);
          }
        }
      }
      r.destinations.assign(destinations.begin(), destinations.end());
      for (uint32_t t : r.targets) vs_slots_of_[t].push_back(resolved_.size());
      resolved_.push_back(std::move(r));
    }
  }

  // --- client views ---------------------------------------------------------------
  // The VirtualService that routes service `si` for the clients of namespace
  // `client`: the one exported to it. Two are a conflict for those clients
  // (Istio would merge them; sluice does not).
  std::optional<size_t> choose_virtual_service(uint32_t si, const std::string& client) {
    std::optional<size_t> chosen;
    for (size_t slot : vs_slots_of_[si]) {
      const auto& r = resolved_[slot];
      if (!r.spec->meta.exported_to(client)) continue;
      if (!chosen) {
        chosen = slot;
        continue;
      }
      const auto& other = resolved_[*chosen].spec->meta;
      const auto t = std::find(r.targets.begin(), r.targets.end(), si) - r.targets.begin();
      error(*r.target_where[t], "host '" + service(si).host + "' is already routed by VirtualService '" +
                                    other.name + "' (" + other.where.file + ":" + std::to_string(other.where.line) +
                                    ") for clients of namespace '" + client +
                                    "'; sluice does not merge VirtualServices");
    }
    return chosen;
  }

  // Each client namespace gets the VirtualService and DestinationRule
  // exported to it; the service's own namespace's choice is the default
  // view, and namespaces whose choice differs (including the rules of the
  // services its routes lead to) get a view of their own.
  void choose_views() {
    const auto& names = snapshot_->client_namespaces;
    const auto n = snapshot_->services.size();
    view_vs_.assign(n, {});
    view_client_.assign(n, {});
    std::vector<std::set<size_t>> applied(resolved_.size());   // per VirtualService: services it routes for someone
    for (uint32_t si = 0; si < n; ++si) {
      model::Service& s = service(si);
      using Key = std::pair<std::optional<size_t>, std::vector<const DestinationRuleSpec*>>;
      auto key_of = [&](uint16_t c, std::optional<size_t> vs) {
        Key key{vs, {dr_choice_[si][c]}};
        if (vs) {
          for (uint32_t d : resolved_[*vs].destinations) key.second.push_back(dr_choice_[d][c]);
        }
        return key;
      };
      const uint16_t own = namespace_id(s.namespace_);
      std::vector<std::optional<size_t>> vs_for(names.size());
      for (uint16_t c = 1; c < names.size(); ++c) vs_for[c] = choose_virtual_service(si, names[c]);
      std::map<Key, uint16_t> view_by_key{{key_of(own, vs_for[own]), 0}};
      view_vs_[si].push_back(vs_for[own]);
      view_client_[si].push_back(own);
      s.view_of_namespace.assign(names.size(), 0);
      for (uint16_t c = 1; c < names.size(); ++c) {
        if (vs_for[c]) {
          applied[*vs_for[c]].insert(si);
          check_destinations_visible(resolved_[*vs_for[c]], si, names[c]);
        }
        auto [it, inserted] = view_by_key.emplace(key_of(c, vs_for[c]), static_cast<uint16_t>(s.views.size() + 1));
        s.view_of_namespace[c] = it->second;
        if (!inserted) {
          if (it->second > 0) s.views[it->second - 1].namespaces.push_back(names[c]);
          continue;
        }
        model::ServiceView v;
        v.namespaces = {names[c]};
        if (const auto* dr = dr_choice_[si][c]) v.destination_rule = dr->meta.namespace_ + "/" + dr->meta.name;
        if (vs_for[c]) v.virtual_services = {resolved_[*vs_for[c]].spec->meta.namespace_ + "/" + resolved_[*vs_for[c]].spec->meta.name};
        v.default_virtual_service = vs_for[c] == vs_for[own];
        const SubsetBlock block = blocks_[si].at(dr_choice_[si][c]);
        v.first_subset = block.first;
        v.subset_count = block.count;
        s.views.push_back(std::move(v));
        view_vs_[si].push_back(vs_for[c]);
        view_client_[si].push_back(c);
      }
      if (s.views.empty()) s.view_of_namespace.clear();
      if (vs_for[own]) s.virtual_services.push_back(resolved_[*vs_for[own]].spec->meta.name);
    }
    for (size_t slot = 0; slot < resolved_.size(); ++slot) {
      const auto& r = resolved_[slot];
      const ResourceMeta& meta = r.spec->meta;
      for (size_t t = 0; t < r.targets.size(); ++t) {
        const model::Service& target = service(r.targets[t]);
        const std::string what = "VirtualService '" + meta.namespace_ + "/" + meta.name + "'";
        if (!applied[slot].contains(r.targets[t])) {
          warning(meta.export_to.empty() ? *r.target_where[t] : meta.export_to_where,
                  what + " routes '" + target.host + "' for the clients of no namespace: it is not exported to a "
                  "namespace the configuration has, or another VirtualService for that host is (docs/config-reference.md, "
                  "\"Namespaces and exportTo\")");
        } else if (!meta.exported_everywhere()) {
          std::string list;
          for (uint16_t c = 1; c < snapshot_->client_namespaces.size(); ++c) {
            if (meta.exported_to(snapshot_->client_namespaces[c])) list += (list.empty() ? "" : ", ") + snapshot_->client_namespaces[c];
          }
          report(Severity::Info, meta.export_to_where,
                 what + " routes '" + target.host + "' for the clients of namespaces " + list +
                     " only; other clients get the view of their own namespace (docs/config-reference.md, "
                     "\"Namespaces and exportTo\")");
        }
      }
    }
  }

  // --- per-port routing ---------------------------------------------------------
  std::optional<model::Destination> place(const ResolvedDestination& r, uint32_t routed_port,
                                          const SourceLocation& where, uint16_t client) {
    if (!r.ok) return std::nullopt;
    const auto subset = view_subset(r, client);
    if (!subset) return std::nullopt;
    const model::Service& dest = service(r.service);
    model::Destination d{r.service, *subset, r.port};
    if (d.port == 0) {
      if (dest.port(routed_port)) {
        d.port = routed_port;
      } else if (dest.ports.size() == 1) {
        d.port = dest.ports.front().number;
      } else {
        const std::string key = where.file + ":" + std::to_string(where.line) + ":" +
                                std::to_string(where.column) + ":" + std::to_string(routed_port);
        if (reported_ports_.insert(key).second) {
          error(where, "destination '" + dest.host + "' has several ports (" + port_list(dest) +
                           ") and none is the routed port " + std::to_string(routed_port) +
                           "; set destination.port.number");
        }
        return std::nullopt;
      }
    }
    return d;
  }

  std::vector<model::WeightedDestination> weighted(const std::vector<WeightedDestinationRef>& refs,
                                                   const std::vector<ResolvedDestination>& resolved,
                                                   uint32_t routed_port, uint16_t client) {
    std::vector<model::WeightedDestination> out;
    uint64_t sum = 0;
    for (size_t i = 0; i < refs.size(); ++i) {
      auto d = place(resolved[i], routed_port, refs[i].destination.where, client);
      if (!d) continue;
      model::WeightedDestination w;
      w.destination = *d;
      w.weight = static_cast<uint32_t>(refs[i].weight.value_or(0));
      if (refs.size() == 1 && w.weight == 0) w.weight = 100;
      w.headers = refs[i].headers;
      sum += w.weight;
      out.push_back(std::move(w));
    }
    for (auto& w : out) w.share = sum == 0 ? 0.0 : static_cast<double>(w.weight) / static_cast<double>(sum);
    return out;
  }

  static std::vector<model::WeightedDestination> whole_service(uint32_t service_index, uint32_t subset, uint32_t port) {
    model::WeightedDestination w;
    w.destination = {service_index, subset, port};
    w.weight = 100;
    w.share = 1.0;
    return {w};
  }

  static bool applies_to_port(const model::HttpMatch& m, uint32_t port) { return m.port == 0 || m.port == port; }

  // A match that only names a port (or nothing) accepts every request there.
  static bool unconditional(const model::HttpMatch& m) {
    return !m.uri && !m.scheme && !m.method && !m.authority && m.headers.empty() &&
           m.without_headers.empty() && m.query_params.empty();
  }

  // One routing table per client view of each service. A port is served
  // by one plane for every client (the XDP program decides by VIP and port
  // before it knows any client), so a port that any view serves on the L7
  // plane is L7 in all; a view without HTTP routes there routes each request
  // by its connection-level destinations.
  void build_port_routes() {
    for (uint32_t si = 0; si < snapshot_->services.size(); ++si) {
      const auto view_count = view_vs_[si].size();
      // Build into locals: place() reads snapshot_->services.
      std::vector<std::vector<model::PortRoutes>> tables(view_count);
      for (size_t v = 0; v < view_count; ++v) {
        const uint16_t client = view_client_[si][v];
        const ResolvedVirtualService* vs = view_vs_[si][v] ? &resolved_[*view_vs_[si][v]] : nullptr;
        const SubsetBlock block = blocks_[si].at(dr_choice_[si][client]);
        for (const auto& port : service(si).ports) tables[v].push_back(port_routes(si, port, vs, client, block));
      }
      for (size_t p = 0; p < service(si).ports.size(); ++p) {
        const bool l7 = std::any_of(tables.begin(), tables.end(),
                                    [&](const auto& t) { return t[p].plane == model::Plane::L7; });
        for (auto& t : tables) {
          if (l7) t[p].plane = model::Plane::L7;
        }
      }
      service(si).routes = std::move(tables.front());
      for (size_t v = 1; v < view_count; ++v) service(si).views[v - 1].routes = std::move(tables[v]);
    }
  }

  model::PortRoutes port_routes(uint32_t si, const model::ServicePort& port, const ResolvedVirtualService* vs,
                                uint16_t client, SubsetBlock block) {
    model::PortRoutes pr;
    pr.port = port.number;
    const model::Service& s = service(si);

    // The http routes that apply to this port, with only the matches that do.
    std::vector<std::pair<size_t, model::HttpRoute>> http;
    if (vs) {
      for (size_t i = 0; i < vs->spec->http.size(); ++i) {
        const auto& spec = vs->spec->http[i];
        if (!spec.mesh) continue;
        model::HttpRoute r;
        r.name = spec.route.name;
        r.virtual_service = spec.route.virtual_service;
        for (const auto& m : spec.route.matches) {
          if (applies_to_port(m, port.number)) r.matches.push_back(m);
        }
        if (!spec.route.matches.empty() && r.matches.empty()) continue;
        r.route = weighted(spec.destinations, vs->http_route[i], port.number, client);
        r.redirect = spec.route.redirect;
        r.rewrite = spec.route.rewrite;
        r.direct_response = spec.route.direct_response;
        r.timeout = spec.route.timeout;
        r.retries = spec.route.retries;
        r.fault = spec.route.fault;
        r.headers = spec.route.headers;
        r.where = spec.route.where;
        for (size_t m = 0; m < spec.mirrors.size(); ++m) {
          if (auto d = place(vs->http_mirrors[i][m], port.number, spec.mirrors[m].destination.where, client)) {
            r.mirrors.push_back({*d, spec.mirrors[m].percent});
          }
        }
        http.emplace_back(i, std::move(r));
      }
    }

    const std::span<const model::Subset> subsets(s.subsets.data() + block.first, block.count);
    bool request_data = false, enforced = false;
    for (const auto& subset : subsets) {
      request_data = request_data || needs_request_data(subset.policy_for(port.number).load_balancer);
      enforced = enforced || needs_l7_enforcement(subset.policy_for(port.number));
    }
    pr.plane = model::is_http(port.protocol) && (!http.empty() || request_data || enforced) ? model::Plane::L7
                                                                                            : model::Plane::L4;

    if (pr.plane == model::Plane::L7) {
      for (auto& [i, r] : http) pr.http.push_back(std::move(r));
      if (pr.http.empty()) {
        // Hashing on request data, connection limits and outlier detection
        // need the proxy even without routes.
        model::HttpRoute r;
        r.name = "default";
        r.route = whole_service(si, block.first, port.number);
        pr.http.push_back(std::move(r));
      }
      for (auto& r : pr.http) {
        if (!r.retries && !r.redirect && !r.direct_response) r.retries = istio_default_retries();
      }
      return pr;
    }

    for (const auto& subset : subsets) {
      const auto& lb = subset.policy_for(port.number).load_balancer;
      if (!needs_request_data(lb)) continue;
      warning(subset.where, "subset '" + (subset.name.empty() ? std::string("(all)") : subset.name) + "' of '" +
                                s.host + "' hashes on " + std::string(model::to_string(lb.hash.source)) + " '" +
                                lb.hash.name + "', but port " + std::to_string(port.number) + " (" +
                                std::string(model::to_string(port.protocol)) +
                                ") is steered per connection on the L4 plane, where request data is not "
                                "available; give this port its own policy with portLevelSettings");
    }
    // Connection limits and outlier detection are the L7 proxy's: XDP steers
    // every connection and sees no responses. One warning per port, naming
    // what is ignored and for which subsets.
    std::vector<std::string> limited, detected;
    const model::SourceLocation* first_where = nullptr;
    for (const auto& subset : subsets) {
      const model::TrafficPolicy& policy = subset.policy_for(port.number);
      const std::string name = subset.name.empty() ? std::string("(all)") : subset.name;
      const bool limits = policy.connection_pool.max_connections != model::ConnectionPool::kUnlimited;
      if (limits) limited.push_back(name);
      if (policy.outlier_detection.enabled) detected.push_back(name);
      // Point at a DestinationRule subset when one has it (the implicit
      // whole-service subset is located at the ServiceEntry).
      if ((limits || policy.outlier_detection.enabled) && (first_where == nullptr || first_where == &subsets[0].where))
        first_where = &subset.where;
    }
    if (first_where != nullptr) {
      auto join = [](const std::vector<std::string>& names) {
        std::string out;
        for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
        return out;
      };
      std::string ignored;
      if (!limited.empty()) ignored = "connectionPool.tcp.maxConnections (subsets " + join(limited) + ")";
      if (!detected.empty())
        ignored += (ignored.empty() ? "" : " and ") + std::string("outlierDetection (subsets ") + join(detected) + ")";
      warning(*first_where, "port " + std::to_string(port.number) + " (" +
                                std::string(model::to_string(port.protocol)) + ") of '" + s.host +
                                "' is steered per connection on the L4 plane, which does not apply " + ignored +
                                ": they are enforced by the L7 proxy only; scope them to the HTTP ports with "
                                "portLevelSettings");
    }
    if (vs) {
      for (size_t i = 0; i < vs->spec->tcp.size(); ++i) {
        const auto& t = vs->spec->tcp[i];
        const bool applies = t.mesh && (t.matches.empty() ||
                             std::any_of(t.matches.begin(), t.matches.end(), [&](const TcpMatchSpec& m) {
                               return m.port == 0 || m.port == port.number;
                             }));
        if (!applies) continue;
        pr.l4 = weighted(t.destinations, vs->tcp_route[i], port.number, client);
        pr.l4_source = "tcp[" + std::to_string(i) + "]";
        return pr;
      }
      for (const auto& [i, r] : http) {
        const bool catch_all = r.matches.empty() || std::any_of(r.matches.begin(), r.matches.end(), unconditional);
        if (!catch_all || r.route.empty()) continue;
        pr.l4 = r.route;
        for (auto& w : pr.l4) w.headers = {};
        pr.l4_source = "http[" + std::to_string(i) + "] per connection";
        note_per_connection(s, port, *vs->spec, i, r);
        return pr;
      }
    }
    pr.l4 = whole_service(si, block.first, port.number);
    pr.l4_source = "default";
    return pr;
  }

  void note_per_connection(const model::Service& s, const model::ServicePort& port,
                           const VirtualServiceSpec& vs, size_t index, const model::HttpRoute& r) {
    std::vector<std::string> lost;
    if (r.timeout.count() != 0) lost.push_back("timeout");
    if (r.retries) lost.push_back("retries");
    if (r.fault) lost.push_back("fault");
    if (!r.mirrors.empty()) lost.push_back("mirror");
    if (r.rewrite) lost.push_back("rewrite");
    if (!r.headers.request.empty() || !r.headers.response.empty()) lost.push_back("headers");
    std::string msg = "VirtualService '" + vs.meta.name + "' http[" + std::to_string(index) +
                      "] applies per connection on port " + std::to_string(port.number) + " of '" +
                      s.host + "' (protocol " + std::string(model::to_string(port.protocol)) +
                      ", L4 plane): its destinations and weights steer each connection";
    if (lost.empty()) {
      report(Severity::Info, r.where, msg);
      return;
    }
    msg += "; its per-request fields (";
    for (size_t i = 0; i < lost.size(); ++i) msg += (i ? ", " : "") + lost[i];
    msg += ") do not apply there";
    warning(r.where, msg);
  }

  CompileResult finish() {
    std::unordered_map<std::string, size_t> file_order;
    for (size_t i = 0; i < in_.files.size(); ++i) file_order.emplace(in_.files[i], i);
    auto order = [&](const Diagnostic& d) {
      auto it = file_order.find(d.where.file);
      return std::tuple(it == file_order.end() ? size_t{0} : it->second + 1, d.where.line, d.where.column);
    };
    std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                     [&](const Diagnostic& a, const Diagnostic& b) { return order(a) < order(b); });
    CompileResult result;
    result.diagnostics = std::move(diagnostics_);
    if (result.error_count() == 0) {
      for (const auto& d : result.diagnostics) snapshot_->warnings.push_back(d);
      result.snapshot = std::move(snapshot_);
    }
    return result;
  }

  const ParsedConfig& in_;
  std::vector<Diagnostic> diagnostics_;
  std::vector<std::optional<uint32_t>> kube_service_index_;   // per in_.kube_services
  std::vector<std::optional<uint32_t>> se_service_index_;     // per in_.service_entries
  std::vector<std::vector<uint32_t>> se_merged_into_;         // per in_.service_entries: services it joined
  std::vector<const ResourceMeta*> service_meta_;             // per service: its object (exportTo)
  std::deque<HostRef> kube_hosts_;                             // stable addresses for `primary`
  std::shared_ptr<model::Snapshot> snapshot_;
  std::vector<ResolvedVirtualService> resolved_;
  std::vector<std::vector<size_t>> vs_slots_of_;                       // per service: VirtualServices naming it
  std::unordered_map<std::string, uint16_t> namespace_id_;             // client namespace -> id
  std::vector<std::vector<const DestinationRuleSpec*>> dr_candidates_;   // per service
  std::vector<std::vector<const DestinationRuleSpec*>> dr_choice_;   // per service, per client namespace id ([0]: own)
  std::vector<std::map<const DestinationRuleSpec*, SubsetBlock>> blocks_;   // per service: subsets per rule
  std::vector<std::vector<std::optional<size_t>>> view_vs_;   // per service, per view ([0] default): its VirtualService
  std::vector<std::vector<uint16_t>> view_client_;            // per service, per view: a client namespace id with it
  std::unordered_set<std::string> reported_;
  std::set<const DestinationRef*> invisible_reported_;
  std::unordered_set<std::string> reported_ports_;
};

}  // namespace

CompileResult compile(const ParsedConfig& parsed, uint64_t version) {
  return SnapshotCompiler(parsed, version).run();
}

CompileResult compile_paths(const std::vector<std::string>& paths, uint64_t version) {
  return compile(load_paths(paths), version);
}

CompileResult compile_paths(IncrementalLoader& loader, const std::vector<std::string>& paths, uint64_t version) {
  return compile(loader.load(paths), version);
}

}  // namespace sluice::config

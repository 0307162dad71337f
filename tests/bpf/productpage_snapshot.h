// The team's productpage scenario as a compiled Snapshot, built in code so
// the datapath tests do not depend on the YAML compiler: VIP 10.96.0.10 and
// fd00:96::10, port 9080 http (L7), 9081 tcp and 9082 udp (L4), subsets v1
// (10.200.11.2, 10.200.12.2 and their IPv6 twins) and v2 (10.200.13.2,
// 10.200.14.2), routed by weight.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "model/snapshot.h"

namespace sluice::testing {

// A client namespace ("team-a") whose view of productpage has its own
// DestinationRule ("team-a/productpage": subsets v1 = productpage-v1-a only,
// v2 as the default's) and its own weights on every port.
struct ClientViewOptions {
  std::vector<std::string> addresses;   // team-a's client (source) addresses
  uint32_t v1_weight = 100;
  uint32_t v2_weight = 0;
};

struct ProductpageOptions {
  model::LbAlgorithm algorithm = model::LbAlgorithm::RoundRobin;
  model::HashKey::Source hash_source = model::HashKey::Source::FiveTuple;
  uint32_t v1_weight = 70;
  uint32_t v2_weight = 30;
  bool include_v1b = true;        // false: productpage-v1-b left the service
  uint64_t maglev_table_size = 65537;
  uint64_t version = 1;
  std::optional<ClientViewOptions> client_view;
  bool tcp_port_l7 = false;       // port 9081 on the L7 plane (an HTTP route took it)
};

inline model::IpAddress ip(const std::string& text) { return *model::IpAddress::parse(text); }

inline model::Snapshot productpage_snapshot(const ProductpageOptions& o = {}) {
  using namespace model;
  Snapshot snap;
  snap.version = o.version;
  Service s;
  s.host = "productpage";
  s.hosts = {"productpage"};
  s.name = "productpage";
  s.vips = {ip("10.96.0.10"), ip("fd00:96::10")};
  s.ports = {ServicePort{9080, Protocol::HTTP, "http", 0}, ServicePort{9081, Protocol::TCP, "tcp", 0},
             ServicePort{9082, Protocol::UDP, "udp", 0}};
  struct Workload {
    const char* name;
    const char* v4;
    const char* v6;
    const char* version;
  };
  const Workload workloads[] = {
      {"productpage-v1-a", "10.200.11.2", "fd00:200:11::2", "v1"},
      {"productpage-v1-b", "10.200.12.2", "fd00:200:12::2", "v1"},
      {"productpage-v2-a", "10.200.13.2", "fd00:200:13::2", "v2"},
      {"productpage-v2-b", "10.200.14.2", "fd00:200:14::2", "v2"},
  };
  Subset whole, v1, v2;
  v1.name = "v1";
  v1.labels = {{"version", "v1"}};
  v2.name = "v2";
  v2.labels = {{"version", "v2"}};
  for (const auto& w : workloads) {
    if (!o.include_v1b && std::string(w.name) == "productpage-v1-b") continue;
    for (const char* addr : {w.v4, w.v6}) {
      Endpoint e;
      e.name = w.name;
      e.address = ip(addr);
      e.labels = {{"app", "productpage"}, {"version", w.version}};
      const auto index = static_cast<uint32_t>(s.endpoints.size());
      s.endpoints.push_back(e);
      whole.endpoints.push_back(index);
      (std::string(w.version) == "v1" ? v1 : v2).endpoints.push_back(index);
    }
  }
  for (Subset* sub : {&whole, &v1, &v2}) {
    for (uint32_t port : {9080u, 9081u, 9082u}) {
      TrafficPolicy policy;
      policy.load_balancer.algorithm = o.algorithm;
      policy.load_balancer.hash.source = o.hash_source;
      policy.load_balancer.maglev_table_size = o.maglev_table_size;
      sub->policy_by_port[port] = policy;
    }
  }
  s.subsets = {whole, v1, v2};
  s.default_subsets = 3;
  auto routes_to = [&](uint32_t first_subset, uint32_t w1, uint32_t w2) {
    std::vector<PortRoutes> table;
    const double total = w1 + w2;
    for (const ServicePort& port : s.ports) {
      PortRoutes routes;
      routes.port = port.number;
      routes.plane = port.protocol == Protocol::HTTP || (o.tcp_port_l7 && port.number == 9081) ? Plane::L7 : Plane::L4;
      WeightedDestination d1, d2;
      d1.destination = Destination{0, first_subset + 1, port.number};
      d1.weight = w1;
      d1.share = total > 0 ? w1 / total : 0;
      d2.destination = Destination{0, first_subset + 2, port.number};
      d2.weight = w2;
      d2.share = total > 0 ? w2 / total : 0;
      routes.l4 = {d1, d2};
      routes.l4_source = "http[0] per connection";
      table.push_back(routes);
    }
    return table;
  };
  s.routes = routes_to(0, o.v1_weight, o.v2_weight);
  if (o.client_view) {
    Subset view_whole = whole, view_v1 = v1, view_v2 = v2;
    view_v1.endpoints.clear();
    for (uint32_t e : v1.endpoints)
      if (s.endpoints[e].name == "productpage-v1-a") view_v1.endpoints.push_back(e);
    s.subsets.insert(s.subsets.end(), {view_whole, view_v1, view_v2});
    ServiceView view;
    view.namespaces = {"team-a"};
    view.destination_rule = "team-a/productpage";
    view.first_subset = 3;
    view.subset_count = 3;
    view.routes = routes_to(3, o.client_view->v1_weight, o.client_view->v2_weight);
    s.views.push_back(view);
    s.view_of_namespace = {0, 1};
    snap.client_namespaces = {"", "team-a"};
    for (const std::string& address : o.client_view->addresses) snap.client_namespace_by_address[ip(address)] = 1;
  }
  snap.services.push_back(s);
  snap.service_by_host["productpage"] = 0;
  return snap;
}

// `count` copies of the productpage service under hosts svc-0, svc-1, ...
// with VIPs 10.97.(i/256).(i%256) and fd00:97::(i+1, in hex), each with
// endpoints of its own (workload w of copy i at 10.(100+w).(i/256).(i%256)
// and fd00:(100+w)::(i+1)), the same subsets and routes: every table,
// backend ids included, grows by one productpage per copy.
inline model::Snapshot productpage_copies(uint32_t count, uint64_t version = 1) {
  const model::Service proto = productpage_snapshot().services[0];
  auto v6_of = [](uint32_t group, uint32_t n) {
    char text[40];
    std::snprintf(text, sizeof(text), "fd00:%u::%x", group, n);
    return std::string(text);
  };
  model::Snapshot snap;
  snap.version = version;
  for (uint32_t i = 0; i < count; ++i) {
    model::Service s = proto;
    s.host = s.name = "svc-" + std::to_string(i);
    s.hosts = {s.host};
    s.vips = {ip("10.97." + std::to_string(i / 256) + "." + std::to_string(i % 256)), ip(v6_of(97, i + 1))};
    for (size_t e = 0; e < s.endpoints.size(); ++e) {
      const auto workload = static_cast<uint32_t>(100 + e / 2);   // endpoints alternate v4, v6 per workload
      s.endpoints[e].address = s.endpoints[e].address.is_v4()
                                   ? ip("10." + std::to_string(workload) + "." + std::to_string(i / 256) + "." +
                                        std::to_string(i % 256))
                                   : ip(v6_of(workload, i + 1));
    }
    for (auto& routes : s.routes)
      for (auto& d : routes.l4) d.destination.service = i;
    snap.service_by_host[s.host] = i;
    snap.services.push_back(std::move(s));
  }
  return snap;
}

}  // namespace sluice::testing

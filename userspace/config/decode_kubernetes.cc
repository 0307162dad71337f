// Kubernetes objects as `kubectl get -o yaml` writes them (or the API server
// returns them as JSON): core v1 Service and Pod, discovery.k8s.io
// EndpointSlice. These are machine-written and Kubernetes adds fields every
// release, so only the fields sluice uses are read (and type-checked); every
// other field (managedFields, ownerReferences, nodePort, ...) is ignored
// without a diagnostic, as documented in docs/config-reference.md.
#include <algorithm>

#include "config/decoders.h"

namespace sluice::config {

namespace {

std::optional<model::IpAddress> ip_field(Decoder& d, const YAML::Node& n, const std::string& path) {
  auto s = d.string(n, path);
  if (!s) return std::nullopt;
  auto ip = model::IpAddress::parse(*s);
  if (!ip) d.error(n, d.field(path) + ": '" + *s + "' is not an IPv4 or IPv6 address");
  return ip;
}

// A port that Kubernetes writes as a number or a name (IntOrString).
void int_or_string(Decoder& d, const YAML::Node& n, const std::string& path, uint32_t& number, std::string& name) {
  if (!n.IsScalar()) {
    d.error(n, d.field(path) + " must be a port number or a port name");
    return;
  }
  const std::string& text = n.Scalar();
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (auto p = d.port_number(n, path)) number = *p;
  } else {
    name = text;
  }
}

template <typename Each>
void for_each_item(Decoder& d, Fields& f, std::string_view key, Each each) {
  const YAML::Node* list = f.get(key);
  if (!list) return;
  if (!list->IsSequence()) {
    d.error(*list, d.field(f.name_of(key)) + " must be a list");
    return;
  }
  size_t i = 0;
  for (const auto& item : *list) {
    Fields itf(d, item, indexed(f.path(), key, i++));
    if (itf.ok()) each(itf, item);
  }
}

}  // namespace

void decode_kube_service(Decoder& d, const YAML::Node& spec, ResourceMeta meta) {
  Fields f(d, spec, "spec");
  if (!f.ok()) return;
  KubeServiceSpec svc;
  svc.meta = std::move(meta);
  f.read("type", svc.type);
  f.read("externalName", svc.external_name);
  std::string cluster_ip;
  if (f.read("clusterIP", cluster_ip) && (cluster_ip == "None" || cluster_ip.empty())) svc.headless = cluster_ip == "None";
  if (const YAML::Node* ips = f.get("clusterIPs"); ips && ips->IsSequence()) {
    size_t i = 0;
    for (const auto& n : *ips) {
      const std::string path = indexed("spec", "clusterIPs", i++);
      if (n.IsScalar() && n.Scalar() == "None") {
        svc.headless = true;
        continue;
      }
      if (auto ip = ip_field(d, n, path)) svc.cluster_ips.push_back(*ip);
    }
  } else if (!cluster_ip.empty() && cluster_ip != "None") {
    if (auto ip = ip_field(d, spec["clusterIP"], "spec.clusterIP")) svc.cluster_ips.push_back(*ip);
  }
  for_each_item(d, f, "ports", [&](Fields& pf, const YAML::Node& item) {
    KubeServicePort port;
    port.where = d.at(item);
    pf.read("name", port.name);
    if (!pf.read_port("port", port.port)) {
      if (!pf.get("port")) d.error(item, d.field(pf.name_of("port")) + " is required");
      return;
    }
    pf.read("protocol", port.protocol);
    pf.read("appProtocol", port.app_protocol);
    if (const YAML::Node* t = pf.get("targetPort")) int_or_string(d, *t, pf.name_of("targetPort"), port.target_port, port.target_port_name);
    svc.ports.push_back(std::move(port));
  });
  model::Labels selector;
  if (f.read("selector", selector)) svc.selector = std::move(selector);
  d.out().kube_services.push_back(std::move(svc));
}

void decode_endpoint_slice(Decoder& d, const YAML::Node& doc, ResourceMeta meta) {
  Fields f(d, doc, "");
  EndpointSliceSpec slice;
  slice.meta = std::move(meta);
  if (auto it = slice.meta.labels.find("kubernetes.io/service-name"); it != slice.meta.labels.end()) {
    slice.service = it->second;
  } else {
    d.note(doc, "EndpointSlice '" + slice.meta.name +
                    "' has no label kubernetes.io/service-name: it belongs to no Service and is ignored");
    return;
  }
  f.read("addressType", slice.address_type);
  if (slice.address_type != "IPv4" && slice.address_type != "IPv6") {
    d.warning(f.get("addressType") ? *f.get("addressType") : doc,
              "EndpointSlice '" + slice.meta.name + "' addressType '" + slice.address_type +
                  "' is not implemented by sluice (IPv4 and IPv6 only); its endpoints are ignored");
    return;
  }
  for_each_item(d, f, "endpoints", [&](Fields& ef, const YAML::Node& item) {
    KubeEndpoint e;
    e.where = d.at(item);
    if (const YAML::Node* addresses = ef.get("addresses"); addresses && addresses->IsSequence()) {
      size_t i = 0;
      for (const auto& a : *addresses) {
        if (auto ip = ip_field(d, a, indexed(ef.path(), "addresses", i++)))
          e.addresses.push_back(*ip);
      }
    }
    if (const YAML::Node* c = ef.get("conditions")) {
      Fields cf(d, *c, ef.name_of("conditions"));
      if (cf.ok()) {
        cf.read("ready", e.ready);
        cf.read("serving", e.serving);
        cf.read("terminating", e.terminating);
      }
    }
    if (const YAML::Node* t = ef.get("targetRef")) {
      Fields tf(d, *t, ef.name_of("targetRef"));
      if (tf.ok()) {
        tf.read("kind", e.target_kind);
        tf.read("name", e.target_name);
        tf.read("namespace", e.target_namespace);
      }
    }
    if (e.target_namespace.empty()) e.target_namespace = slice.meta.namespace_;
    if (!e.addresses.empty()) slice.endpoints.push_back(std::move(e));
  });
  for_each_item(d, f, "ports", [&](Fields& pf, const YAML::Node&) {
    std::string name;
    uint32_t port = 0;
    pf.read("name", name);
    if (pf.read_port("port", port)) slice.ports.emplace_back(name, port);
  });
  d.out().endpoint_slices.push_back(std::move(slice));
}

void decode_pod(Decoder& d, const YAML::Node* spec, const YAML::Node* status, ResourceMeta meta) {
  PodSpec pod;
  pod.meta = std::move(meta);
  if (spec) {
    Fields f(d, *spec, "spec");
    if (f.ok()) {
      f.read("hostNetwork", pod.host_network);
      for_each_item(d, f, "containers", [&](Fields& cf, const YAML::Node&) {
        for_each_item(d, cf, "ports", [&](Fields& pf, const YAML::Node&) {
          std::string name;
          uint32_t number = 0;
          if (pf.read("name", name) && pf.read_port("containerPort", number)) pod.container_ports.emplace(name, number);
        });
      });
    }
  }
  if (status) {
    Fields f(d, *status, "status");
    if (f.ok()) {
      f.read("phase", pod.phase);
      for_each_item(d, f, "podIPs", [&](Fields& pf, const YAML::Node&) {
        if (const YAML::Node* ip = pf.get("ip")) {
          if (auto a = ip_field(d, *ip, pf.name_of("ip"))) pod.ips.push_back(*a);
        }
      });
      if (pod.ips.empty()) {
        if (const YAML::Node* ip = f.get("podIP")) {
          if (auto a = ip_field(d, *ip, "status.podIP")) pod.ips.push_back(*a);
        }
      }
      for_each_item(d, f, "conditions", [&](Fields& cf, const YAML::Node&) {
        std::string type, value;
        if (cf.read("type", type) && type == "Ready" && cf.read("status", value)) pod.ready = value == "True";
      });
    }
  }
  d.out().pods.push_back(std::move(pod));
}

}  // namespace sluice::config

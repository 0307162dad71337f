#include "config/decoders.h"

#include <re2/re2.h>

#include <algorithm>
#include <limits>
#include <sstream>

namespace sluice::config {

namespace {

// The WorkloadEntry shape, shared by WorkloadEntry.spec and ServiceEntry.endpoints[].
std::optional<model::Endpoint> decode_workload(Decoder& d, const YAML::Node& n,
                                               const std::string& path) {
  Fields f(d, n, path);
  if (!f.ok()) return std::nullopt;
  model::Endpoint e;
  e.where = d.at(n);
  bool ok = true;
  if (const auto* v = f.get("address")) {
    if (auto s = d.string(*v, f.name_of("address"))) {
      if (auto ip = model::IpAddress::parse(*s)) {
        e.address = *ip;
      } else {
        d.error(*v, d.field(f.name_of("address")) + ": '" + *s +
                        "' is not an IPv4 or IPv6 address (sluice does not resolve DNS names "
                        "or Unix sockets)");
        ok = false;
      }
    } else {
      ok = false;
    }
  } else {
    d.error(n, d.field(f.name_of("address")) + " is required");
    ok = false;
  }
  f.read("labels", e.labels);
  if (const auto* v = f.get("ports")) {
    if (!v->IsMap()) {
      d.error(*v, d.field(f.name_of("ports")) + " must map port names to numbers");
    } else {
      for (const auto& kv : *v) {
        if (!kv.first.IsScalar()) continue;
        if (auto p = d.port_number(kv.second, f.name_of("ports") + "." + kv.first.Scalar())) {
          e.ports[kv.first.Scalar()] = *p;
        }
      }
    }
  }
  if (const auto* v = f.get("weight")) {
    // 0 is protobuf's "unset": the default weight 1.
    if (auto w = d.u32(*v, f.name_of("weight"))) e.weight = *w == 0 ? 1 : *w;
  }
  f.read("locality", e.locality);
  f.not_implemented("network");
  f.not_implemented("serviceAccount");
  f.finish();
  if (!ok) return std::nullopt;
  return e;
}

}  // namespace

std::optional<model::Protocol> protocol_from_name(std::string_view text) {
  const std::string p = uppercase(std::string(text));
  using P = model::Protocol;
  if (p == "HTTP") return P::HTTP;
  if (p == "HTTPS") return P::HTTPS;
  if (p == "HTTP2") return P::HTTP2;
  if (p == "GRPC" || p == "GRPC-WEB") return P::GRPC;
  if (p == "TCP") return P::TCP;
  if (p == "TLS") return P::TLS;
  if (p == "UDP") return P::UDP;
  if (p == "MONGO") return P::Mongo;
  if (p == "REDIS") return P::Redis;
  if (p == "MYSQL") return P::MySQL;
  return std::nullopt;
}

void decode_service_entry(Decoder& d, Fields& spec, ResourceMeta meta) {
  ServiceEntrySpec se;
  se.meta = std::move(meta);
  if (const auto* v = spec.get("hosts")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("hosts") + " must be a list of host names");
    } else {
      size_t i = 0;
      for (const auto& h : *v) {
        if (auto s = d.string(h, "hosts[" + std::to_string(i) + "]")) {
          if (s->find('*') != std::string::npos) {
            d.error(h, d.field("hosts[" + std::to_string(i) + "]") + ": wildcard host '" + *s +
                           "' is not supported (sluice needs a concrete host and VIP)");
          } else {
            se.hosts.push_back({*s, d.at(h)});
          }
        }
        ++i;
      }
    }
  }
  if (se.hosts.empty()) d.error(spec.node(), d.field("hosts") + " must name at least one host");
  if (const auto* v = spec.get("addresses")) {
    if (auto list = d.string_list(*v, "addresses")) {
      size_t i = 0;
      for (const auto& a : *list) {
        if (auto ip = model::IpAddress::parse(a)) {
          se.vips.push_back(*ip);
        } else {
          d.error((*v)[i], d.field("addresses[" + std::to_string(i) + "]") + ": '" + a +
                               "' is not an IP address (CIDR ranges are not supported as VIPs)");
        }
        ++i;
      }
    }
  }
  if (const auto* v = spec.get("ports")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("ports") + " must be a list");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        Fields pf(d, item, indexed("", "ports", i++));
        if (!pf.ok()) continue;
        model::ServicePort port;
        if (pf.get("number")) {
          pf.read_port("number", port.number);
        } else {
          d.error(item, d.field(pf.name_of("number")) + " is required");
        }
        pf.read("name", port.name);
        if (const auto* x = pf.get("protocol")) {
          if (auto s = d.string(*x, pf.name_of("protocol"))) {
            if (auto p = protocol_from_name(*s)) {
              port.protocol = *p;
            } else {
              d.error(*x, d.field(pf.name_of("protocol")) + ": unknown protocol '" + *s +
                              "' (expected HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, UDP, MONGO, "
                              "REDIS or MYSQL)");
            }
          }
        } else {
          // Istio's convention: the name's prefix before '-' says the protocol.
          const std::string prefix = port.name.substr(0, port.name.find('-'));
          if (auto p = protocol_from_name(prefix)) port.protocol = *p;
        }
        pf.read_port("targetPort", port.target_port);
        pf.finish();
        if (port.number == 0) continue;
        bool duplicate = false;
        for (const auto& other : se.ports) duplicate = duplicate || other.number == port.number;
        if (duplicate) {
          d.error(item, d.field(pf.name_of("number")) + ": port " + std::to_string(port.number) +
                            " is listed twice");
          continue;
        }
        se.ports.push_back(port);
        se.port_where.push_back(d.at(item));
      }
    }
  }
  if (se.ports.empty()) d.error(spec.node(), d.field("ports") + " must list at least one port");
  if (const auto* v = spec.get("resolution")) {
    if (auto s = d.string(*v, "resolution")) {
      const std::string r = uppercase(*s);
      if (r == "NONE" || r == "DNS" || r == "DNS_ROUND_ROBIN") {
        d.warning(*v, d.field("resolution") + " " + r +
                          " is not implemented by sluice; endpoints are used as STATIC addresses");
      } else if (r != "STATIC") {
        d.error(*v, d.field("resolution") + ": unknown resolution '" + *s +
                        "' (expected STATIC, NONE, DNS or DNS_ROUND_ROBIN)");
      }
    }
  }
  if (const auto* v = spec.get("endpoints")) {
    if (!v->IsSequence()) {
      d.error(*v, d.field("endpoints") + " must be a list");
    } else {
      size_t i = 0;
      for (const auto& item : *v) {
        const std::string path = indexed("", "endpoints", i);
        if (auto e = decode_workload(d, item, path)) {
          e->name = se.meta.name + "/endpoints[" + std::to_string(i) + "]";
          se.endpoints.push_back(std::move(*e));
        }
        ++i;
      }
    }
  }
  if (const auto* v = spec.get("workloadSelector")) {
    Fields wf(d, *v, "workloadSelector");
    if (wf.ok()) {
      se.selector_where = d.at(*v);
      if (const auto* l = wf.get("labels")) {
        se.workload_selector = d.labels(*l, wf.name_of("labels"));
      } else {
        se.workload_selector = model::Labels{};
      }
      wf.finish();
    }
    if (!se.endpoints.empty()) {
      d.error(*v, d.field("workloadSelector") + " and 'endpoints' are exclusive; use one");
    }
  }
  spec.not_implemented("location", "every service is steered the same way");
  decode_export_to(d, spec, se.meta, true);
  spec.not_implemented("subjectAltNames");
  spec.finish();
  d.out().service_entries.push_back(std::move(se));
}

void decode_workload_entry(Decoder& d, const YAML::Node& spec, ResourceMeta meta) {
  auto e = decode_workload(d, spec, "");
  if (!e) return;
  e->name = meta.name;
  WorkloadEntrySpec we{std::move(meta), std::move(*e)};
  d.out().workload_entries.push_back(std::move(we));
}


}  // namespace sluice::config

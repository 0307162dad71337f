#include "agent/planes.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <spdlog/spdlog.h>

#include "bpfmaps/datapath_report.h"

namespace sluice::agent {

XdpPlane::XdpPlane(bpfmaps::BpfDatapath& datapath) : datapath_(datapath), writer_(datapath) {
  writer_.recover();
}

void XdpPlane::apply(const model::SnapshotPtr& snapshot) {
  std::lock_guard lock(mu_);
  bpfmaps::ApplyResult r = writer_.apply(*snapshot);
  spdlog::debug("xdp: version {} on generation {}: {} service ports ({} of client views, {} client addresses), {} "
                "subsets, {} live backends, {} retired",
                r.snapshot_version, r.generation, r.service_ports, r.client_views, r.client_addresses, r.subsets,
                r.live_backends, r.retired_backends);
}

bpfmaps::DatapathStats XdpPlane::stats(bpfmaps::StatsScope scope) const {
  std::lock_guard lock(mu_);
  return bpfmaps::read_datapath_stats(datapath_, writer_, scope);
}

namespace {

std::string flow_endpoint(const __u32 addr[4], __u16 port_be, __u8 family) {
  model::IpAddress a;
  a.family = family == 6 ? model::IpAddress::kV6 : model::IpAddress::kV4;
  std::memcpy(a.bytes.data(), addr, a.is_v4() ? 4 : 16);
  std::string text = a.is_v4() ? a.to_string() : "[" + a.to_string() + "]";
  return text + ":" + std::to_string(ntohs(port_be));
}

}  // namespace

nlohmann::json XdpPlane::conntrack(size_t limit) const {
  std::lock_guard lock(mu_);
  nlohmann::json flows = nlohmann::json::array();
  for (const auto& f : bpfmaps::list_conntrack(datapath_, limit)) {
    nlohmann::json j;
    j["client"] = flow_endpoint(f.key.src, f.key.sport, f.key.family);
    j["vip"] = flow_endpoint(f.key.dst, f.key.dport, f.key.family);
    j["protocol"] = f.key.proto == IPPROTO_UDP ? "udp" : "tcp";
    j["backend_id"] = f.entry.backend_id;
    auto it = writer_.backends().find(f.entry.backend_id);
    j["backend"] = it == writer_.backends().end() ? "" : it->second.to_string();
    j["flags"] = f.entry.flags;
    flows.push_back(j);
  }
  return flows;
}

std::atomic<int64_t>* BpfActiveRequests::counter_for(const model::IpAddress& address, uint32_t port) {
  // The map's l7_active is a __u64 in shared memory that only ever sees
  // atomic adds; viewing it as std::atomic<int64_t> is sound because that
  // type is lock-free and has the same size and alignment.
  static_assert(std::atomic<int64_t>::is_always_lock_free && sizeof(std::atomic<int64_t>) == sizeof(__u64));
  if (auto id = table_.find_backend(address, static_cast<uint16_t>(port), IPPROTO_TCP)) {
    auto& load = const_cast<sluice_backend_load&>(table_.at(*id));
    return reinterpret_cast<std::atomic<int64_t>*>(&load.l7_active);
  }
  return fallback_.counter_for(address, port);
}

}  // namespace sluice::agent

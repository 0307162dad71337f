#include "agent/planes.h"

#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include "bpfmaps/datapath_report.h"

namespace sluice::agent {

XdpPlane::XdpPlane(bpfmaps::BpfDatapath& datapath) : datapath_(datapath), writer_(datapath) {
  writer_.recover();
}

void XdpPlane::apply(const model::SnapshotPtr& snapshot) {
  std::lock_guard lock(mu_);
  bpfmaps::ApplyResult r = writer_.apply(*snapshot);
  spdlog::debug("xdp: version {} on generation {}: {} service ports, {} subsets, {} live backends, {} retired",
                r.snapshot_version, r.generation, r.service_ports, r.subsets, r.live_backends,
                r.retired_backends);
}

nlohmann::json XdpPlane::stats() const {
  std::lock_guard lock(mu_);
  return bpfmaps::datapath_stats_json(datapath_, writer_);
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

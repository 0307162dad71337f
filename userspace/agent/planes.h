// The agent's data planes behind DataPlane: the XDP tables and the L7 proxy.
// Each takes a whole snapshot or throws, leaving what it served.
#pragma once

#include <nlohmann/json.hpp>

#include <mutex>

#include "agent/agent.h"
#include "bpfmaps/bpf_datapath.h"
#include "bpfmaps/datapath_report.h"
#include "bpfmaps/table_writer.h"
#include "proxy/proxy.h"

namespace sluice::agent {

class XdpPlane final : public DataPlane {
 public:
  // Recovers backend ids and counter slots from maps a previous agent pinned.
  explicit XdpPlane(bpfmaps::BpfDatapath& datapath);
  std::string name() const override { return "xdp"; }
  void apply(const model::SnapshotPtr& snapshot) override;

  // The datapath's counters under the writer's lock (slot names change on apply).
  bpfmaps::DatapathStats stats(bpfmaps::StatsScope scope = bpfmaps::StatsScope::All) const;
  // Tracked flows (client -> VIP) with the backend each was given, at most `limit`.
  nlohmann::json conntrack(size_t limit) const;
  bpfmaps::BpfDatapath& datapath() { return datapath_; }

 private:
  bpfmaps::BpfDatapath& datapath_;
  mutable std::mutex mu_;
  bpfmaps::TableWriter writer_;
};

class ProxyPlane final : public DataPlane {
 public:
  explicit ProxyPlane(proxy::Proxy& proxy) : proxy_(proxy) {}
  std::string name() const override { return "proxy"; }
  void apply(const model::SnapshotPtr& snapshot) override { proxy_.update_snapshot(snapshot); }

 private:
  proxy::Proxy& proxy_;
};

// The proxy's per-backend active-request counters, living in the pinned
// least-request BPF map so XDP's LEAST_REQUEST reads the same figures. A
// backend the kernel tables do not know (an L7-only port) gets a process-local
// counter.
class BpfActiveRequests final : public proxy::ActiveRequestCounters {
 public:
  explicit BpfActiveRequests(const std::string& pin_dir) : table_(pin_dir) {}
  std::atomic<int64_t>* counter_for(const model::IpAddress& address, uint32_t port) override;

 private:
  bpfmaps::BackendLoadTable table_;
  proxy::InMemoryActiveRequests fallback_;
};

}  // namespace sluice::agent

// L7 VIPs must be local addresses in the node's network namespace: sk_lookup
// only runs for packets the stack delivers locally, so without a `local`
// route the kernel would forward VIP traffic instead of handing it to the
// agent's listener. The agent adds `local VIP/32 dev lo` (table local) for
// every L7 VIP, the way `ip route add local` does, over rtnetlink.
#pragma once

#include <set>
#include <string>

#include "agent/agent.h"
#include "model/snapshot.h"

namespace sluice::agent {

// The VIPs of every port served by the L7 plane.
std::set<model::IpAddress> l7_vips(const model::Snapshot& snapshot);

// A data plane in its own right: the routes follow the serving snapshot.
class LocalRoutes final : public DataPlane {
 public:
  ~LocalRoutes() override = default;
  std::string name() const override { return "local-routes"; }
  void apply(const model::SnapshotPtr& snapshot) override { sync(l7_vips(*snapshot)); }

  // Makes the installed set equal `vips` (adds missing, removes ones it added).
  // Throws std::runtime_error naming the address on a netlink error.
  void sync(const std::set<model::IpAddress>& vips);
  void remove_all();
  const std::set<model::IpAddress>& installed() const { return installed_; }

 private:
  std::set<model::IpAddress> installed_;
};

}  // namespace sluice::agent

// Which devices of the node can take a native XDP_REDIRECT. The kernel drops
// a frame redirected into a device that cannot transmit XDP frames after the
// program's XDP_REDIRECT already "succeeded": a veth whose peer has neither
// an XDP program nor GRO on, or a driver without ndo_xdp_xmit. Since Linux
// 6.3 each device advertises this as NETDEV_XDP_ACT_NDO_XMIT in its
// xdp-features (netdev generic-netlink family); a veth sets it exactly when
// its peer can take the frames, so the node's own end tells about a peer
// inside a pod's namespace that the agent cannot see into.
//
// The XDP program redirects only into devices marked SLUICE_IFACE_F_REDIRECT_OK
// in sluice_ifaces and hands every other rewritten packet to the kernel
// (XDP_PASS), which forwards it (docs/bpf-datapath.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::bpfmaps {

class BpfDatapath;

struct RedirectTarget {
  uint32_t ifindex = 0;
  std::string name;
  std::string driver;           // ethtool's driver name ("veth", ...), "" if unknown
  bool native_redirect = false; // xdp-features has NDO_XMIT
};

// Every device of the caller's network namespace with its xdp-features, or
// nullopt when the kernel has no netdev family (before 6.3: nothing is known,
// every redirect becomes XDP_PASS).
std::optional<std::vector<RedirectTarget>> probe_redirect_targets();

// Why `t` cannot take native redirects, in words for the log and status.
std::string no_redirect_reason(const RedirectTarget& t);

// Writes SLUICE_IFACE_F_REDIRECT_OK for the targets that take native
// redirects and clears it for the others (other flags kept). Targets beyond
// the map's room are left unmarked (XDP_PASS: slower, still delivered).
void mark_redirect_targets(BpfDatapath& datapath, const std::vector<RedirectTarget>& targets);

}  // namespace sluice::bpfmaps

#include "agent/datapath_upkeep.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <set>

namespace sluice::agent {

void reset_stale_l7_counts(bpfmaps::BpfDatapath& datapath) {
  const uint32_t stale = datapath.reset_l7_active();
  if (stale > 0)
    spdlog::warn("datapath: {} backend(s) had active L7 requests left by a previous agent; reset to 0", stale);
}

namespace {

// A reply reverse-NATed to its VIP and handed to the kernel arrives with the
// VIP as its source; when the VIP is also a local address of the node (an L7
// port on the same VIP: sluiced routes it locally for sk_lookup), the kernel
// drops it as a martian unless the interface has accept_local. Returns
// whether it had to be turned on.
bool ensure_accept_local(const std::string& ifname) {
  const std::string path = "/proc/sys/net/ipv4/conf/" + ifname + "/accept_local";
  std::string value;
  if (std::ifstream in(path); !(in >> value) || value == "1") return false;
  std::ofstream out(path);
  out << "1\n";
  return static_cast<bool>(out);
}

}  // namespace

RedirectTargetWatch::RedirectTargetWatch(bpfmaps::BpfDatapath& datapath, std::chrono::seconds period)
    : datapath_(datapath), period_(period) {}

void RedirectTargetWatch::tick() {
  if (std::chrono::steady_clock::now() - last_ >= period_) check();
}

void RedirectTargetWatch::check() {
  last_ = std::chrono::steady_clock::now();
  std::set<std::string> attached;
  bool any_native = false;
  for (const auto& a : datapath_.attached()) {
    attached.insert(a.name);
    any_native = any_native || a.mode == "native";
  }
  nlohmann::json st = {{"probed", false},
                       {"native", nlohmann::json::array()},
                       {"via_kernel", nlohmann::json::array()},
                       {"warnings", nlohmann::json::array()}};
  std::string summary;
  const auto targets = bpfmaps::probe_redirect_targets();
  if (!targets) {
    summary = "this kernel does not report xdp-features (netdev netlink family, Linux 6.3+): every rewritten "
              "packet that would be redirected goes through the kernel instead";
    if (any_native) st["warnings"].push_back("xdp: " + summary);
  } else {
    st["probed"] = true;
    bpfmaps::mark_redirect_targets(datapath_, *targets);
    for (const auto& t : *targets) {
      if (t.native_redirect) {
        st["native"].push_back(t.name);
        continue;
      }
      // Worth a word only for devices traffic is steered to: the ones sluice
      // runs on and veths (pods); lo, bridges and tunnels never are.
      if (!attached.contains(t.name) && t.driver != "veth") continue;
      const std::string reason = bpfmaps::no_redirect_reason(t);
      st["via_kernel"].push_back({{"name", t.name}, {"reason", reason}});
      summary += fmt::format("{}{}", summary.empty() ? "" : ", ", t.name);
      if (any_native)
        st["warnings"].push_back(fmt::format("xdp: packets steered to {} go through the kernel (slower): {}; "
                                             "attach an XDP program to the peer or enable GRO on it "
                                             "(docs/bpf-datapath.md)",
                                             t.name, reason));
    }
  }
  // Packets handed to the kernel must be forwardable: see ensure_accept_local.
  if (!summary.empty() || !targets)
    for (const auto& name : attached)
      if (ensure_accept_local(name))
        spdlog::info("xdp: net.ipv4.conf.{}.accept_local=1, so replies from a VIP that is also a local address "
                     "are forwarded by the kernel",
                     name);
  if (summary != last_summary_) {
    if (!targets) spdlog::warn("xdp: {}", summary);
    else if (!summary.empty() && any_native)
      spdlog::warn("xdp: native redirects into {} would be dropped by the kernel (peer without XDP program "
                   "or GRO); their packets are handed to the kernel to forward (XDP_PASS) instead",
                   summary);
    else if (!last_summary_.empty())
      spdlog::info("xdp: every redirect target takes native redirects now");
    last_summary_ = summary;
  }
  std::lock_guard lock(mu_);
  status_ = std::move(st);
}

nlohmann::json RedirectTargetWatch::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

ConntrackReapWatch::ConntrackReapWatch(bpfmaps::BpfDatapath& datapath, std::chrono::seconds period,
                                       bool reconcile_evictions)
    : datapath_(datapath), period_(period), reconcile_(reconcile_evictions) {}

void ConntrackReapWatch::tick() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < period_) return;
  last_ = now;
  const bpfmaps::ReapResult r = bpfmaps::reap_conntrack(datapath_, reconcile_);
  if (r.expired || r.evicted)
    spdlog::debug("conntrack: {} flows walked, {} expired ({} never counted closed), {} found evicted", r.walked,
                  r.expired, r.reaped, r.evicted);
  std::lock_guard lock(mu_);
  reaped_ += r.reaped;
  evicted_ += r.evicted;
}

std::array<std::pair<std::string_view, uint64_t>, 2> ConntrackReapWatch::totals() const {
  std::lock_guard lock(mu_);
  return {{{"ct_reaped", reaped_}, {"ct_evicted", evicted_}}};
}

}  // namespace sluice::agent

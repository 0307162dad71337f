// sluice-fwd: the L4 steering of the XDP program, in userspace on DPDK ports
// (PCI NICs, or net_af_packet / net_af_xdp vdevs over veth for tests).
//
//   sluice-fwd [EAL options] -- --pin-dir DIR --route PREFIX/LEN@PORT=MAC... [--queues N]
//              [--exception-tap PORT[=IFNAME]]... [--stats-file F] [--duration S]
//              [--idle-sleep-us N] [--flows N]
//
// One lcore per queue index: lcore i polls RX queue i of every port and is
// the only writer of TX queue i of every port, so no TX lock. Per packet:
// parse -> flow table (affinity) -> on a miss, the shared decision
// (sluice/steer_decide.h over the mmapped pinned tables) ->
// DNAT or reverse NAT -> static next hop -> TX burst. Frames it does not
// steer go to the kernel through the port's exception TAP, if it has one, and
// the kernel's frames from that TAP leave through the port. A control thread
// follows the generation flip, expires idle flows and writes the stats file
// sluiced exports (docs/dpdk.md).
#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_random.h>
#include <rte_cycles.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dpdk/flow_expiry.h"
#include "dpdk/packet_nat.h"
#include "dpdk/steer_tables.h"
#include "sluice/conntrack_rules.h"

namespace sluice::dpdk {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint16_t kRxDesc = 1024, kTxDesc = 1024;
// Exception TAPs carry control and node traffic, not the steered load.
constexpr uint16_t kTapDesc = 256;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

[[noreturn]] void die(const std::string& message) {
  std::cerr << "sluice-fwd: " << message << "\n";
  std::exit(1);
}

// A static next hop: frames whose (rewritten) destination is in prefix leave
// through port with this destination MAC. The longest prefix wins.
struct Route {
  uint8_t family = 0;
  uint8_t addr[16]{};
  uint32_t prefix_len = 0;
  uint16_t port = 0;
  rte_ether_addr mac{};
  std::string text;
};

Route parse_route(const std::string& text) {
  // PREFIX/LEN@PORT=MAC, e.g. 10.200.11.0/24@1=02:00:00:00:11:02
  Route r;
  r.text = text;
  const auto at = text.find('@'), eq = text.find('='), slash = text.find('/');
  if (at == std::string::npos || eq == std::string::npos || slash == std::string::npos || slash > at || at > eq)
    throw CLI::ValidationError("--route", "'" + text + "': expected PREFIX/LEN@PORT=MAC");
  const std::string prefix = text.substr(0, slash);
  r.family = prefix.find(':') != std::string::npos ? SLUICE_FAMILY_V6 : SLUICE_FAMILY_V4;
  if (inet_pton(r.family == SLUICE_FAMILY_V6 ? AF_INET6 : AF_INET, prefix.c_str(), r.addr) != 1)
    throw CLI::ValidationError("--route", "'" + text + "': bad address '" + prefix + "'");
  try {
    r.prefix_len = static_cast<uint32_t>(std::stoul(text.substr(slash + 1, at - slash - 1)));
    r.port = static_cast<uint16_t>(std::stoul(text.substr(at + 1, eq - at - 1)));
  } catch (const std::exception&) {
    throw CLI::ValidationError("--route", "'" + text + "': prefix length and port must be numbers");
  }
  if (r.prefix_len > (r.family == SLUICE_FAMILY_V6 ? 128u : 32u))
    throw CLI::ValidationError("--route", "'" + text + "': prefix length too long");
  if (rte_ether_unformat_addr(text.substr(eq + 1).c_str(), &r.mac) != 0)
    throw CLI::ValidationError("--route", "'" + text + "': bad MAC '" + text.substr(eq + 1) + "'");
  return r;
}

// The kernel side of a DPDK port (docs/dpdk.md "Exception path"): a net_tap
// interface with the port's MAC. Frames the forwarder does not steer go into
// it; what the kernel sends through it leaves through the port.
struct ExceptionTap {
  uint16_t port = 0;            // the DPDK port it stands in for
  std::string iface;            // the kernel interface net_tap creates
  uint16_t tap_port = 0;        // the net_tap device's own DPDK port id
  std::string text;
};

std::string default_tap_name(uint16_t port) { return fmt::format("sluice-tap{}", port); }

ExceptionTap parse_exception_tap(const std::string& text) {
  // PORT or PORT=IFNAME, e.g. 0=eth0
  ExceptionTap t;
  t.text = text;
  const auto eq = text.find('=');
  try {
    size_t used = 0;
    const std::string port_text = text.substr(0, eq);
    const unsigned long port = std::stoul(port_text, &used);
    if (used != port_text.size() || port >= RTE_MAX_ETHPORTS) throw std::invalid_argument(port_text);
    t.port = static_cast<uint16_t>(port);
  } catch (const std::exception&) {
    throw CLI::ValidationError("--exception-tap", "'" + text + "': expected PORT[=IFNAME], PORT a DPDK port id below " +
                                                      std::to_string(RTE_MAX_ETHPORTS));
  }
  t.iface = eq == std::string::npos ? default_tap_name(t.port) : text.substr(eq + 1);
  // IFNAMSIZ - 1 characters; ',' would split the net_tap devargs.
  if (t.iface.empty() || t.iface.size() > 15 ||
      t.iface.find_first_of(",=/ \t:") != std::string::npos)
    throw CLI::ValidationError("--exception-tap", "'" + text + "': interface name '" + t.iface +
                                                      "' must be 1-15 characters without , = / : or spaces");
  return t;
}

bool route_matches(const Route& r, const sluice_flow_key& key, bool by_dst) {
  if (r.family != key.family) return false;
  const auto* a = reinterpret_cast<const uint8_t*>(by_dst ? key.dst : key.src);
  uint32_t bits = r.prefix_len, i = 0;
  for (; bits >= 8; bits -= 8, i++)
    if (a[i] != r.addr[i]) return false;
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (a[i] & mask) == (r.addr[i] & mask);
}

// Forwarder flows. The forward table (client -> VIP) gives affinity; the
// reverse table (backend -> client) gives the VIP to restore. Entries are
// slots of arrays indexed by the rte_hash position of their key; rte_hash
// runs lock-free for readers with concurrent writers, because the two
// directions of one flow arrive on different ports, so on different lcores,
// and the control thread deletes expired flows. A deleted key's position is
// freed only after every lcore passed a burst boundary (see the control
// thread), so an lcore that found it still reads a valid entry.
//
// The two entries of a flow point at each other (forward.reverse_pos,
// reverse.forward_pos); a link is valid while the other entry points back.
// Both directions refresh the forward entry's last_seen, so a flow is as
// fresh as its latest packet either way. A reverse entry whose flow moved to
// another backend (re-steered) is an orphan: it rewrites nothing and ages
// out on its own. A forward entry marked kFlowKernel holds a tuple a flow
// of the kernel's now uses: both its entries are skipped until they age out.
constexpr uint32_t kFlowLive = 1;     // slot holds a flow
constexpr uint32_t kFlowClosed = 2;   // FIN/RST seen or re-steered: counted closed, closing timeout
constexpr uint32_t kFlowReplied = 4;  // the backend answered (else TCP gets the closing timeout)
constexpr uint32_t kFlowKernel = 8;   // the tuple's current flow is the kernel's (L7, PASSTHROUGH): skipped

struct ForwardEntry {
  std::atomic<uint32_t> flags{0};
  uint32_t backend_id = 0;
  uint32_t service_stat = 0;
  uint32_t subset_stat = 0;
  int32_t reverse_pos = -1;
  uint8_t proto = 0;
  std::atomic<uint64_t> last_seen_ns{0};
};
struct ReverseEntry {
  std::atomic<uint32_t> flags{0};
  uint32_t vip[4]{};
  uint16_t vip_port = 0;
  uint8_t proto = 0;
  uint32_t backend_id = 0;
  uint32_t service_stat = 0;
  uint32_t subset_stat = 0;
  int32_t forward_pos = -1;
  std::atomic<uint64_t> last_seen_ns{0};
};

struct FlowTables {
  rte_hash* forward = nullptr;
  rte_hash* reverse = nullptr;
  std::unique_ptr<ForwardEntry[]> forward_entries;
  std::unique_ptr<ReverseEntry[]> reverse_entries;
  uint32_t forward_slots = 0, reverse_slots = 0;

  bool linked(int32_t forward_pos, int32_t reverse_pos) const {
    if (forward_pos < 0 || reverse_pos < 0) return false;
    const ForwardEntry& f = forward_entries[static_cast<uint32_t>(forward_pos)];
    const ReverseEntry& r = reverse_entries[static_cast<uint32_t>(reverse_pos)];
    return (f.flags.load(std::memory_order_relaxed) & kFlowLive) && f.reverse_pos == reverse_pos &&
           r.forward_pos == forward_pos;
  }
};

// A packet refreshes last_seen at most once per SLUICE_CT_REFRESH_NS, as the
// XDP conntrack does: the expiry timeouts are seconds, the cache line stays
// clean.
inline void refresh(std::atomic<uint64_t>& last_seen, uint64_t now_ns) {
  if (now_ns - last_seen.load(std::memory_order_relaxed) >= SLUICE_CT_REFRESH_NS)
    last_seen.store(now_ns, std::memory_order_relaxed);
}

rte_hash* create_flow_hash(const char* name, uint32_t entries) {
  rte_hash_parameters params{};
  params.name = name;
  params.entries = entries;
  params.key_len = sizeof(sluice_flow_key);
  params.hash_func = rte_jhash;
  params.socket_id = static_cast<int>(rte_socket_id());
  params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD;
  rte_hash* h = rte_hash_create(&params);
  if (!h) die(fmt::format("create flow table {} ({} flows): {}", name, entries, rte_strerror(rte_errno)));
  return h;
}

// Per-lcore counters, summed by the stats writer. Same meanings as the XDP
// program's (SLUICE_G_*, struct sluice_counters), so the agent adds them up.
struct alignas(64) LcoreStats {
  std::atomic<uint64_t> global[SLUICE_G_COUNT]{};
  std::atomic<uint64_t> tx_dropped{0};   // TX ring full
  std::atomic<uint64_t> no_route{0};     // rewritten, but no --route for the destination
  std::atomic<uint64_t> flow_table_full{0};
  std::atomic<uint64_t> flows_expired{0};       // removed by the idle sweeper (control thread)
  std::atomic<uint64_t> flows_reopened{0};      // a new flow took over a tracked tuple's entry (SYN re-use, backend gone)
  std::atomic<uint64_t> lagging_decisions{0};   // new flows decided in the live half before the snapshot caught up
  std::atomic<uint64_t> busy_cycles{0};  // TSC cycles spent on bursts that carried packets
  std::atomic<uint64_t> busy_packets{0};
  std::atomic<uint64_t> quiescent{0};    // advanced between bursts (snapshot retirement)
  std::vector<sluice_counters> services, subsets, backends;
  // Exception path, by DPDK data port.
  struct Exception {
    std::atomic<uint64_t> to_kernel{0};             // written into the port's TAP
    std::atomic<uint64_t> to_kernel_dropped{0};     // TAP write refused (interface down, queue full)
    std::atomic<uint64_t> from_kernel{0};           // read from the TAP, sent on the port
    std::atomic<uint64_t> from_kernel_dropped{0};   // the port's TX ring was full
    std::atomic<uint64_t> other_host{0};            // unsteered unicast for another MAC (promiscuous port): not the kernel's
    std::atomic<uint64_t> checksum_completed{0};    // partial L4 checksums finished before the TAP
  };
  std::array<Exception, RTE_MAX_ETHPORTS> exception;
};

struct Forwarder {
  std::string pin_dir;
  std::vector<Route> routes;
  uint16_t queues = 1;
  std::vector<uint16_t> ports;                       // the data ports (not the exception TAPs)
  std::vector<rte_ether_addr> port_macs;
  std::vector<ExceptionTap> taps;
  std::array<int32_t, RTE_MAX_ETHPORTS> tap_of{};    // data port -> its TAP's port id, -1: none
  std::array<bool, RTE_MAX_ETHPORTS> tx_kick_twice{};  // net_af_xdp ports (the kernel's frames, see lcore_main)
  std::unique_ptr<PinnedSteerTables> tables;
  std::atomic<const SteerSnapshot*> snapshot{nullptr};
  FlowTables flows;
  std::vector<std::unique_ptr<LcoreStats>> stats;   // by queue index; the last one is the control thread's
  std::atomic<uint64_t> now_ns{0};                   // CLOCK_MONOTONIC, advanced by the control thread every tick
  uint64_t snapshots_applied = 1;                    // control thread only
  uint32_t idle_sleep_us = 0;                        // 0: pure busy polling
  uint32_t flow_capacity = 0;
};

void add(std::atomic<uint64_t>& c, uint64_t n = 1) { c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }

const Route* route_for(const Forwarder& fw, const sluice_flow_key& key) {
  const Route* best = nullptr;
  for (const Route& r : fw.routes)
    if (route_matches(r, key, true) && (!best || r.prefix_len > best->prefix_len)) best = &r;
  return best;
}

// Counted once per flow (FIN/RST seen, re-steered, or expired): whoever sets
// kFlowClosed first counts it, so an lcore and the sweeper never both do.
void close_flow(Forwarder& fw, LcoreStats& stats, ForwardEntry& entry) {
  if (entry.flags.fetch_or(kFlowClosed, std::memory_order_relaxed) & kFlowClosed) return;
  auto counters = [](std::vector<sluice_counters>& table, uint32_t index) -> sluice_counters& {
    return table[index < table.size() ? index : 0];
  };
  counters(stats.services, entry.service_stat).closed_flows++;
  counters(stats.subsets, entry.subset_stat).closed_flows++;
  counters(stats.backends, entry.backend_id).closed_flows++;
  if (auto* load = fw.tables->backend_load(); load && entry.backend_id < fw.tables->backend_load_entries())
    __atomic_fetch_add(&load[entry.backend_id].l4_closed, 1, __ATOMIC_RELAXED);
}

struct Lcore {
  Forwarder* fw;
  uint16_t queue;
  LcoreStats* stats;
  sluice_user_steer_env env{};
  std::vector<uint32_t> rr_cursor;
  const SteerSnapshot* bound = nullptr;
  sluice_service lagging_service{};   // decide_new_flow's slow-path copy
  std::vector<std::vector<rte_mbuf*>> tx;   // by port id (data ports and TAPs)
  uint16_t rx_port = 0;                     // the port of the burst being steered

  void bind(const SteerSnapshot* s) {
    bound = s;
    bind_env(env, *s);
  }

  // A frame the forwarder does not steer (the XDP program's XDP_PASS): into
  // the RX port's exception TAP, or dropped without one (on an af_packet
  // vdev the kernel sees its own copy anyway). parsed is null for frames
  // that are not steerable IP (ARP, ND's ICMPv6, fragments...).
  int to_kernel(uint8_t* frame, const ParsedFrame* parsed) {
    const int32_t tap = fw->tap_of[rx_port];
    if (tap < 0) return -1;
    const auto* eth = reinterpret_cast<const rte_ether_hdr*>(frame);
    if (rte_is_unicast_ether_addr(&eth->dst_addr) && !rte_is_same_ether_addr(&eth->dst_addr, &fw->port_macs[rx_port])) {
      add(stats->exception[rx_port].other_host);   // the kernel would drop it (PACKET_OTHERHOST)
      return -1;
    }
    // A TAP takes no offload state, so the kernel verifies L4 checksums: a
    // sender over veth left a partial one (docs/bpf-datapath.md), finish it.
    if (parsed && has_partial_checksum(frame, *parsed)) {
      write_full_l4_checksum(frame, *parsed);
      add(stats->exception[rx_port].checksum_completed);
    }
    return tap;
  }

  // Returns the port to send on (a data port, or the RX port's exception
  // TAP), or -1 to drop.
  int steer(rte_mbuf* m) {
    auto* frame = rte_pktmbuf_mtod(m, uint8_t*);
    ParsedFrame p;
    add(stats->global[SLUICE_G_PACKETS]);
    if (!parse_frame(frame, rte_pktmbuf_data_len(m), p)) {
      add(stats->global[SLUICE_G_PASS_NOT_IP]);
      return to_kernel(frame, nullptr);
    }
    const SteerSnapshot& snap = *bound;
    const uint64_t now = fw->now_ns.load(std::memory_order_relaxed);
    const uint32_t bytes = rte_pktmbuf_pkt_len(m);
    const bool is_tcp = p.key.proto == IPPROTO_TCP;
    const bool closes = is_tcp && (p.tcp_flags & 0x05);   // FIN or RST
    const bool is_syn = sluice_ct_is_syn(p.key.proto, p.tcp_flags);
    FlowTables& flows = fw->flows;

    if (snap.find_service(snap.service_key_of(p.key))) {
      const sluice_flow_key client_key = p.key;
      ForwardEntry* entry = nullptr;
      ForwardEntry* stale = nullptr;   // the tuple's earlier flow, just closed
      bool kernel_owned = false;
      int32_t pos = rte_hash_lookup(flows.forward, &client_key);
      const sluice_backend* backend = nullptr;
      if (pos >= 0) {
        entry = &flows.forward_entries[static_cast<uint32_t>(pos)];
        backend = snap.backend(entry->backend_id);
        const uint32_t flags = entry->flags.load(std::memory_order_relaxed);
        if (flags & kFlowKernel) {
          kernel_owned = true;
          entry = nullptr;
        } else if (!backend || (is_syn && (flags & kFlowClosed))) {
          if (!backend) add(stats->global[SLUICE_G_RESTEER_BACKEND_GONE]);
          close_flow(*fw, *stats, *entry);
          add(stats->flows_reopened);
          stale = entry;
          entry = nullptr;
        }
      }
      if (!entry) {
        // Only a SYN creates TCP state, as in the XDP program
        // (include/sluice/conntrack_rules.h); L7 and PASSTHROUGH flows,
        // never tracked, go to the kernel whatever the packet. Replacing an
        // entry creates no new key, so any packet of its flow may do it,
        // unless the kernel owns the tuple's flow.
        const bool may_create =
            (pos >= 0 && !kernel_owned) || sluice_ct_may_create(client_key.proto, p.tcp_flags);
        NewFlowOutcome d =
            decide_new_flow(snap, env, client_key, fw->tables.get(), &lagging_service, may_create);
        if (d.service == &lagging_service) add(stats->lagging_decisions);
        if (d.verdict == NewFlowVerdict::NotService) {
          add(stats->global[SLUICE_G_PASS_NOT_SERVICE]);   // the port left the live half
          return to_kernel(frame, &p);
        }
        if (d.verdict == NewFlowVerdict::PassToKernel) {
          // The tuple's earlier entry must not catch the rest of this flow
          // (its ACKs and data are no SYNs): marked, it is skipped until it
          // ages out as a closed flow (docs/bpf-datapath.md, "A tuple
          // handed to the kernel").
          if (stale) {
            stale->flags.fetch_or(kFlowKernel, std::memory_order_relaxed);
            add(stats->global[SLUICE_G_CT_GIVEN_UP]);
          }
          add(stats->global[d.decision.action == SLUICE_ACT_PASS_L7 ? SLUICE_G_PASS_L7 : SLUICE_G_PASS_PASSTHROUGH]);
          counters(stats->services, d.service->stat_id).passthrough++;
          return to_kernel(frame, &p);
        }
        if (d.verdict == NewFlowVerdict::MidflowMiss) {
          add(stats->global[SLUICE_G_CT_MIDFLOW_MISS]);
          return -1;
        }
        if (d.verdict != NewFlowVerdict::Forward) {
          add(stats->global[SLUICE_G_DROP_NO_BACKEND]);
          counters(stats->services, d.service->stat_id).drop_no_backend++;
          counters(stats->subsets, d.decision.subset_stat).drop_no_backend++;
          return -1;
        }
        backend = d.backend;
        // Reverse entry: the reply's key, backend -> client.
        sluice_flow_key reply{};
        std::memcpy(reply.src, backend->addr, 16);
        std::memcpy(reply.dst, client_key.src, 16);
        reply.sport = backend->port;
        reply.dport = client_key.sport;
        reply.proto = client_key.proto;
        reply.family = client_key.family;
        if (reply_held_by_live_flow(client_key, reply, now)) {
          add(stats->global[SLUICE_G_CT_REPLY_CONFLICT]);
          return -1;
        }
        // Adding an existing key (a SYN re-using a closed tuple) returns its
        // position: the entry is re-initialised in place.
        pos = rte_hash_add_key(flows.forward, &client_key);
        if (pos < 0) {
          add(stats->flow_table_full);
          return -1;
        }
        entry = &flows.forward_entries[static_cast<uint32_t>(pos)];
        entry->backend_id = d.decision.backend_id;
        entry->service_stat = d.service->stat_id;
        entry->subset_stat = d.decision.subset_stat;
        entry->proto = client_key.proto;
        entry->reverse_pos = -1;
        entry->last_seen_ns.store(now, std::memory_order_relaxed);
        const int32_t rpos = rte_hash_add_key(flows.reverse, &reply);
        if (rpos >= 0) {
          ReverseEntry& r = flows.reverse_entries[static_cast<uint32_t>(rpos)];
          std::memcpy(r.vip, client_key.dst, 16);
          r.vip_port = client_key.dport;
          r.proto = client_key.proto;
          r.backend_id = d.decision.backend_id;
          r.service_stat = d.service->stat_id;
          r.subset_stat = d.decision.subset_stat;
          r.forward_pos = pos;
          r.last_seen_ns.store(now, std::memory_order_relaxed);
          r.flags.store(kFlowLive, std::memory_order_release);
          entry->reverse_pos = rpos;
        } else {
          add(stats->flow_table_full);
        }
        entry->flags.store(kFlowLive, std::memory_order_release);
        add(stats->global[SLUICE_G_NEW_FLOWS]);
        counters(stats->services, entry->service_stat).new_flows++;
        counters(stats->subsets, entry->subset_stat).new_flows++;
        counters(stats->backends, entry->backend_id).new_flows++;
        if (auto* load = fw->tables->backend_load(); load && entry->backend_id < fw->tables->backend_load_entries())
          __atomic_fetch_add(&load[entry->backend_id].l4_opened, 1, __ATOMIC_RELAXED);
      } else {
        refresh(entry->last_seen_ns, now);
      }
      if (closes) close_flow(*fw, *stats, *entry);
      counters(stats->services, entry->service_stat).packets_in++;
      counters(stats->services, entry->service_stat).bytes_in += bytes;
      counters(stats->subsets, entry->subset_stat).packets_in++;
      counters(stats->subsets, entry->subset_stat).bytes_in += bytes;
      counters(stats->backends, entry->backend_id).packets_in++;
      counters(stats->backends, entry->backend_id).bytes_in += bytes;
      if (!rewrite_endpoint(frame, p, RewriteSide::Destination, backend->addr, backend->port)) return -1;
      add(stats->global[SLUICE_G_FORWARDED]);
      return next_hop(frame, p);
    }

    const int32_t rpos = rte_hash_lookup(flows.reverse, &p.key);
    if (rpos < 0) {
      add(stats->global[SLUICE_G_PASS_NOT_SERVICE]);
      return to_kernel(frame, &p);
    }
    ReverseEntry& r = flows.reverse_entries[static_cast<uint32_t>(rpos)];
    // Only a reply of a flow still ours is rewritten: an orphan (its flow
    // expired or re-steered) or an entry whose tuple the kernel now owns
    // (PASSTHROUGH, L7) would break the kernel's flow on that tuple behind
    // its NAT. The orphan ages out unrefreshed (docs/bpf-datapath.md, "A
    // tuple handed to the kernel").
    if (!flows.linked(r.forward_pos, rpos) ||
        (flows.forward_entries[static_cast<uint32_t>(r.forward_pos)].flags.load(std::memory_order_relaxed) &
         kFlowKernel)) {
      add(stats->global[SLUICE_G_PASS_STALE_REPLY]);
      return to_kernel(frame, &p);
    }
    refresh(r.last_seen_ns, now);
    {
      ForwardEntry& f = flows.forward_entries[static_cast<uint32_t>(r.forward_pos)];
      refresh(f.last_seen_ns, now);
      if (!(f.flags.load(std::memory_order_relaxed) & kFlowReplied))
        f.flags.fetch_or(kFlowReplied, std::memory_order_relaxed);
      if (closes) close_flow(*fw, *stats, f);
    }
    counters(stats->services, r.service_stat).packets_out++;
    counters(stats->services, r.service_stat).bytes_out += bytes;
    counters(stats->subsets, r.subset_stat).packets_out++;
    counters(stats->subsets, r.subset_stat).bytes_out += bytes;
    counters(stats->backends, r.backend_id).packets_out++;
    counters(stats->backends, r.backend_id).bytes_out += bytes;
    if (!rewrite_endpoint(frame, p, RewriteSide::Source, r.vip, r.vip_port)) return -1;
    add(stats->global[SLUICE_G_REVERSE_NAT]);
    return next_hop(frame, p);
  }

  // Whether `reply` is the reverse key of another live flow, which a new
  // flow must not take over (include/sluice/conntrack_rules.h).
  bool reply_held_by_live_flow(const sluice_flow_key& client, const sluice_flow_key& reply, uint64_t now) const {
    const FlowTables& flows = fw->flows;
    const int32_t held = rte_hash_lookup(flows.reverse, &reply);
    if (held < 0) return false;
    const ReverseEntry& r = flows.reverse_entries[static_cast<uint32_t>(held)];
    bool owner_live = false;
    if ((r.flags.load(std::memory_order_acquire) & kFlowLive) && flows.linked(r.forward_pos, held)) {
      const ForwardEntry& f = flows.forward_entries[static_cast<uint32_t>(r.forward_pos)];
      const bool closed = f.flags.load(std::memory_order_relaxed) & kFlowClosed;
      const FlowTimeouts timeouts{fw->tables->tcp_idle_ns(), fw->tables->udp_idle_ns(), fw->tables->closing_ns()};
      const bool replied = f.flags.load(std::memory_order_relaxed) & kFlowReplied;
      owner_live = !closed && f.backend_id == r.backend_id &&
                   !flow_expired(
                       FlowActivity{f.proto, false, f.last_seen_ns.load(std::memory_order_relaxed), replied}, now,
                       timeouts);
    }
    sluice_rnat_entry holder{};
    std::memcpy(holder.vip, r.vip, sizeof(holder.vip));
    holder.vip_port = r.vip_port;
    return !sluice_ct_may_take_reply(&client, &holder, owner_live);
  }

  static sluice_counters& counters(std::vector<sluice_counters>& table, uint32_t index) {
    return table[index < table.size() ? index : 0];
  }

  // Sends what steer() queued for port out; frees and counts in dropped
  // what its TX queue refused. Returns the number sent.
  uint16_t flush(uint16_t out, std::atomic<uint64_t>& dropped) {
    auto& q = tx[out];
    if (q.empty()) return 0;
    const uint16_t sent = rte_eth_tx_burst(out, queue, q.data(), static_cast<uint16_t>(q.size()));
    for (size_t i = sent; i < q.size(); i++) rte_pktmbuf_free(q[i]);
    add(dropped, q.size() - sent);
    q.clear();
    return sent;
  }

  int next_hop(uint8_t* frame, const ParsedFrame& p) {
    const Route* r = route_for(*fw, p.key);
    if (!r) {
      add(stats->no_route);
      return -1;
    }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
    eth->dst_addr = r->mac;
    eth->src_addr = fw->port_macs[r->port];
    return r->port;
  }
};

// Deletes the key stored at pos; false if pos no longer holds a key. The
// position itself is freed later, after a grace period (control thread).
bool delete_key_at(rte_hash* table, uint32_t pos) {
  void* key = nullptr;
  if (rte_hash_get_key_with_position(table, static_cast<int32_t>(pos), &key) != 0) return false;
  const sluice_flow_key copy = *static_cast<const sluice_flow_key*>(key);
  return rte_hash_del_key(table, &copy) == static_cast<int32_t>(pos);
}

// The sweeper's views of the two tables (flow_expiry.h).
struct ForwardSweepView {
  Forwarder& fw;
  LcoreStats& stats;
  std::vector<int32_t>& expired;
  uint32_t slots() const { return fw.flows.forward_slots; }
  std::optional<FlowActivity> activity(uint32_t pos) const {
    const ForwardEntry& e = fw.flows.forward_entries[pos];
    const uint32_t flags = e.flags.load(std::memory_order_acquire);
    if (!(flags & kFlowLive)) return std::nullopt;
    return FlowActivity{e.proto, (flags & kFlowClosed) != 0, e.last_seen_ns.load(std::memory_order_relaxed),
                        (flags & kFlowReplied) != 0};
  }
  void expire(uint32_t pos) {
    ForwardEntry& e = fw.flows.forward_entries[pos];
    if (!delete_key_at(fw.flows.forward, pos)) return;
    close_flow(fw, stats, e);   // an expired flow that never saw FIN/RST is closed now
    e.flags.store(0, std::memory_order_release);
    add(stats.flows_expired);
    expired.push_back(static_cast<int32_t>(pos));
  }
};

struct ReverseSweepView {
  Forwarder& fw;
  std::vector<int32_t>& expired;
  uint32_t slots() const { return fw.flows.reverse_slots; }
  std::optional<FlowActivity> activity(uint32_t pos) const {
    const ReverseEntry& r = fw.flows.reverse_entries[pos];
    if (!(r.flags.load(std::memory_order_acquire) & kFlowLive)) return std::nullopt;
    const int32_t rpos = static_cast<int32_t>(pos);
    if (fw.flows.linked(r.forward_pos, rpos)) {
      // Expires with its flow; the forward entry's activity covers both directions.
      const ForwardEntry& f = fw.flows.forward_entries[static_cast<uint32_t>(r.forward_pos)];
      const uint32_t flags = f.flags.load(std::memory_order_relaxed);
      return FlowActivity{r.proto, (flags & kFlowClosed) != 0,
                          std::max(f.last_seen_ns.load(std::memory_order_relaxed),
                                   r.last_seen_ns.load(std::memory_order_relaxed)),
                          (flags & kFlowReplied) != 0};
    }
    // Orphan: its flow expired or moved to another backend; it rewrites
    // nothing (steer) and goes after the closing timeout.
    return FlowActivity{r.proto, true, r.last_seen_ns.load(std::memory_order_relaxed)};
  }
  void expire(uint32_t pos) {
    if (!delete_key_at(fw.flows.reverse, pos)) return;
    fw.flows.reverse_entries[pos].flags.store(0, std::memory_order_release);
    expired.push_back(static_cast<int32_t>(pos));
  }
};

int lcore_main(void* arg) {
  auto* lc = static_cast<Lcore*>(arg);
  Forwarder& fw = *lc->fw;
  rte_mbuf* rx[kBurst];
  while (!g_stop.load(std::memory_order_relaxed)) {
    const SteerSnapshot* s = fw.snapshot.load(std::memory_order_acquire);
    if (s != lc->bound) lc->bind(s);
    bool idle = true;
    for (uint16_t port : fw.ports) {
      const uint16_t n = rte_eth_rx_burst(port, lc->queue, rx, kBurst);
      if (n == 0) continue;
      idle = false;
      const uint64_t start = rte_rdtsc();
      lc->rx_port = port;
      for (uint16_t i = 0; i < n; i++) {
        const int out = lc->steer(rx[i]);
        if (out < 0)
          rte_pktmbuf_free(rx[i]);
        else
          lc->tx[static_cast<size_t>(out)].push_back(rx[i]);
      }
      for (uint16_t out : fw.ports) add(lc->stats->global[SLUICE_G_TX], lc->flush(out, lc->stats->tx_dropped));
      if (const int32_t tap = fw.tap_of[port]; tap >= 0) {
        LcoreStats::Exception& e = lc->stats->exception[port];
        add(e.to_kernel, lc->flush(static_cast<uint16_t>(tap), e.to_kernel_dropped));
      }
      add(lc->stats->busy_cycles, rte_rdtsc() - start);
      add(lc->stats->busy_packets, n);
    }
    // The kernel's frames leave through the TAP's port as they are: the
    // kernel resolved the neighbour and wrote complete checksums (a TAP has
    // no checksum offload). Polled by the same lcore, so the port's TX queue
    // keeps a single user.
    for (const ExceptionTap& tap : fw.taps) {
      const uint16_t n = rte_eth_rx_burst(tap.tap_port, lc->queue, rx, kBurst);
      if (n == 0) continue;
      idle = false;
      const uint16_t sent = rte_eth_tx_burst(tap.port, lc->queue, rx, n);
      // net_af_xdp (copy mode, veth) left a lone frame in its TX ring until
      // some later burst kicked the socket again: the kernel's ARP replies
      // arrived seconds late, in batches, and ARP gave up. An empty burst
      // kicks it once more (docs/dpdk.md).
      if (sent && fw.tx_kick_twice[tap.port]) rte_eth_tx_burst(tap.port, lc->queue, nullptr, 0);
      for (uint16_t i = sent; i < n; i++) rte_pktmbuf_free(rx[i]);
      add(lc->stats->exception[tap.port].from_kernel, sent);
      add(lc->stats->exception[tap.port].from_kernel_dropped, n - sent);
    }
    // Release: every use of the snapshot and of flow entries in this round
    // happens before the control thread can see the counter move.
    lc->stats->quiescent.fetch_add(1, std::memory_order_release);
    // On a shared host a sleeping poller is scheduled like an interactive
    // task when traffic resumes; a pure busy poller waits behind everyone.
    if (idle && fw.idle_sleep_us) rte_delay_us_sleep(fw.idle_sleep_us);
  }
  return 0;
}

// Data ports run promiscuous (the forwarder answers for VIPs, whatever MAC
// the sender resolved); a TAP takes only its MAC, the kernel's view.
void setup_port(Forwarder& fw, uint16_t port, rte_mempool* pool, uint16_t descriptors, bool promiscuous) {
  rte_eth_dev_info info{};
  char name[RTE_ETH_NAME_MAX_LEN] = "?";
  rte_eth_dev_get_name_by_port(port, name);
  const std::string what = fmt::format("port {} ({})", port, name);
  if (int err = rte_eth_dev_info_get(port, &info)) die(fmt::format("{}: device info: {}", what, rte_strerror(-err)));
  if (fw.queues > info.max_rx_queues || fw.queues > info.max_tx_queues)
    die(fmt::format("{}: {} queues requested, the device has {} RX / {} TX (net_af_packet: qpairs=N; "
                    "net_af_xdp: queue_count=N)",
                    what, fw.queues, info.max_rx_queues, info.max_tx_queues));
  rte_eth_conf conf{};
  if (int err = rte_eth_dev_configure(port, fw.queues, fw.queues, &conf))
    die(fmt::format("{}: configure {} queues: {}", what, fw.queues, rte_strerror(-err)));
  uint16_t rxd = descriptors, txd = descriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
  for (uint16_t q = 0; q < fw.queues; q++) {
    if (int err = rte_eth_rx_queue_setup(port, q, rxd, rte_eth_dev_socket_id(port), nullptr, pool))
      die(fmt::format("{}: RX queue {}: {}", what, q, rte_strerror(-err)));
    if (int err = rte_eth_tx_queue_setup(port, q, txd, rte_eth_dev_socket_id(port), nullptr))
      die(fmt::format("{}: TX queue {}: {}", what, q, rte_strerror(-err)));
  }
  if (int err = rte_eth_dev_start(port)) die(fmt::format("{}: start: {}", what, rte_strerror(-err)));
  if (promiscuous) rte_eth_promiscuous_enable(port);
  fw.tx_kick_twice[port] = info.driver_name && std::string_view(info.driver_name) == "net_af_xdp";
  rte_ether_addr mac{};
  rte_eth_macaddr_get(port, &mac);
  fw.port_macs[port] = mac;
  char text[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(text, sizeof(text), &mac);
  std::cerr << fmt::format("sluice-fwd: {} up, {} queue(s), MAC {}\n", what, fw.queues, text);
}

// Creates the port's exception TAP: a net_tap device whose kernel interface
// has the port's MAC (so the kernel's ARP/ND answers and its own frames carry
// the address the network knows) and MTU, polled like a data port.
void create_exception_tap(Forwarder& fw, ExceptionTap& tap, rte_mempool* pool) {
  char mac[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(mac, sizeof(mac), &fw.port_macs[tap.port]);
  const std::string device = fmt::format("net_tap_sluice{}", tap.port);
  const std::string args = fmt::format("iface={},mac={}", tap.iface, mac);
  if (rte_vdev_init(device.c_str(), args.c_str()) != 0)
    die(fmt::format("--exception-tap {}: creating {} ({}) failed: net_tap needs /dev/net/tun and CAP_NET_ADMIN, "
                    "and no other interface named {} in this network namespace (see the EAL log above)",
                    tap.text, device, args, tap.iface));
  if (rte_eth_dev_get_port_by_name(device.c_str(), &tap.tap_port) != 0)
    die(fmt::format("--exception-tap {}: {} created but has no port id", tap.text, device));
  setup_port(fw, tap.tap_port, pool, kTapDesc, false);
  uint16_t mtu = 0;
  if (rte_eth_dev_get_mtu(tap.port, &mtu) == 0 && mtu != 0)
    if (int err = rte_eth_dev_set_mtu(tap.tap_port, mtu))
      std::cerr << fmt::format("sluice-fwd: exception TAP {}: MTU {} (port {}'s) not set: {}\n", tap.iface, mtu,
                               tap.port, rte_strerror(-err));
  fw.tap_of[tap.port] = tap.tap_port;
  std::cerr << fmt::format("sluice-fwd: port {}: exception TAP {} (port {}, MAC {}, MTU {})\n", tap.port, tap.iface,
                           tap.tap_port, mac, mtu);
}

// Returns once every lcore finished the poll round it was in (or the
// forwarder stops): nothing it read before can still be in use.
void wait_for_lcores_quiescent(const Forwarder& fw) {
  std::vector<uint64_t> seen;
  for (uint16_t q = 0; q < fw.queues; q++) seen.push_back(fw.stats[q]->quiescent.load(std::memory_order_acquire));
  for (uint16_t q = 0; q < fw.queues; q++)
    while (fw.stats[q]->quiescent.load(std::memory_order_acquire) == seen[q] && !g_stop.load())
      std::this_thread::sleep_for(std::chrono::microseconds(50));
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

const char* kGlobalNames[SLUICE_G_COUNT] = {
    "packets", "pass_not_ip", "pass_not_l4", "pass_truncated", "pass_malformed", "pass_not_service",
    "pass_ip_options", "pass_fragment", "pass_ipv6_ext", "pass_l7", "pass_passthrough", "new_flows",
    "ct_midflow_miss", "ct_insert_failed", "ct_expired", "resteer_backend_gone", "forwarded", "reverse_nat",
    "redirect", "tx", "fib_no_neigh", "fib_pass", "drop_no_backend", "csum_full", "drop_too_big",
    "ct_reply_conflict", "pass_no_redirect", "redirect_err", nullptr /* pass_filtered: the XDP program's */, "ct_given_up", "pass_stale_reply"};

nlohmann::json counters_json(const sluice_counters& c) {
  return {{"packets_in", c.packets_in},   {"bytes_in", c.bytes_in},         {"packets_out", c.packets_out},
          {"bytes_out", c.bytes_out},     {"new_flows", c.new_flows},       {"closed_flows", c.closed_flows},
          {"passthrough", c.passthrough}, {"drop_no_backend", c.drop_no_backend}};
}

// The stats file the agent reads (docs/dpdk.md): counters summed over lcores,
// with the same names and stat ids as the XDP program's maps.
void write_stats(const Forwarder& fw, const std::string& path, uint64_t tsc_hz) {
  nlohmann::json j;
  j["generation"] = fw.snapshot.load()->generation;
  j["snapshots_applied"] = fw.snapshots_applied;
  j["lcores"] = fw.stats.size();
  uint64_t totals[SLUICE_G_COUNT] = {};
  uint64_t tx_dropped = 0, no_route = 0, table_full = 0, cycles = 0, packets = 0;
  auto sum_table = [&](auto member) {
    nlohmann::json out = nlohmann::json::object();
    const size_t n = ((*fw.stats[0]).*member).size();
    for (size_t i = 0; i < n; i++) {
      sluice_counters total{};
      bool any = false;
      for (const auto& s : fw.stats) {
        const sluice_counters& c = ((*s).*member)[i];
        total.packets_in += c.packets_in, total.bytes_in += c.bytes_in, total.packets_out += c.packets_out;
        total.bytes_out += c.bytes_out, total.new_flows += c.new_flows, total.closed_flows += c.closed_flows;
        total.passthrough += c.passthrough, total.drop_no_backend += c.drop_no_backend;
        any = any || c.packets_in || c.packets_out || c.passthrough || c.drop_no_backend;
      }
      if (any) out[std::to_string(i)] = counters_json(total);
    }
    return out;
  };
  for (const auto& s : fw.stats) {
    for (int i = 0; i < SLUICE_G_COUNT; i++) totals[i] += s->global[i].load(std::memory_order_relaxed);
    tx_dropped += s->tx_dropped.load(), no_route += s->no_route.load(), table_full += s->flow_table_full.load();
    cycles += s->busy_cycles.load(), packets += s->busy_packets.load();
  }
  for (int i = 0; i < SLUICE_G_COUNT; i++)
    if (kGlobalNames[i]) j["global"][kGlobalNames[i]] = totals[i];
  j["global"]["tx_dropped"] = tx_dropped;
  j["global"]["no_route"] = no_route;
  j["global"]["flow_table_full"] = table_full;
  uint64_t expired = 0, reopened = 0, lagging = 0;
  for (const auto& s : fw.stats)
    expired += s->flows_expired.load(), reopened += s->flows_reopened.load(), lagging += s->lagging_decisions.load();
  j["global"]["flows_expired"] = expired;
  j["global"]["flows_reopened"] = reopened;
  j["global"]["lagging_decisions"] = lagging;
  j["flows"] = rte_hash_count(fw.flows.forward);
  j["reverse_flows"] = rte_hash_count(fw.flows.reverse);
  j["flow_capacity"] = fw.flow_capacity;
  j["pid"] = getpid();
  j["written_at"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  j["cycles_per_packet"] = packets ? static_cast<double>(cycles) / static_cast<double>(packets) : 0.0;
  j["tsc_hz"] = tsc_hz;
  // The exception path, per data port, and summed in global.
  const char* exception_names[] = {"to_kernel", "to_kernel_dropped", "from_kernel", "from_kernel_dropped",
                                   "other_host", "checksum_completed"};
  const auto exception_members = {
      &LcoreStats::Exception::to_kernel,   &LcoreStats::Exception::to_kernel_dropped,
      &LcoreStats::Exception::from_kernel, &LcoreStats::Exception::from_kernel_dropped,
      &LcoreStats::Exception::other_host,  &LcoreStats::Exception::checksum_completed};
  uint64_t exception_totals[std::size(exception_names)] = {};
  j["exception_taps"] = nlohmann::json::object();
  for (const ExceptionTap& tap : fw.taps) {
    nlohmann::json t = {{"iface", tap.iface}, {"tap_port", tap.tap_port}};
    size_t k = 0;
    for (auto member : exception_members) {
      uint64_t sum = 0;
      for (const auto& s : fw.stats) sum += (s->exception[tap.port].*member).load(std::memory_order_relaxed);
      t[exception_names[k]] = sum;
      exception_totals[k++] += sum;
    }
    j["exception_taps"][std::to_string(tap.port)] = t;
  }
  for (size_t k = 0; k < std::size(exception_names); k++)
    j["global"][std::string("exception_") + exception_names[k]] = exception_totals[k];
  // Port counters tell drops before the forwarder (imissed: the RX ring was
  // full, e.g. the lcore was descheduled) from drops after it (oerrors). The
  // TAPs are ports too: their tx is what the kernel was given.
  std::vector<uint16_t> all_ports = fw.ports;
  for (const ExceptionTap& tap : fw.taps) all_ports.push_back(tap.tap_port);
  for (uint16_t port : all_ports) {
    rte_eth_stats ps{};
    if (rte_eth_stats_get(port, &ps) != 0) continue;
    char name[RTE_ETH_NAME_MAX_LEN] = "?";
    rte_eth_dev_get_name_by_port(port, name);
    j["ports"][std::to_string(port)] = {{"name", name},          {"rx_packets", ps.ipackets},
                                        {"tx_packets", ps.opackets}, {"rx_missed", ps.imissed},
                                        {"rx_errors", ps.ierrors},   {"tx_errors", ps.oerrors},
                                        {"rx_nombuf", ps.rx_nombuf}};
  }
  j["services"] = sum_table(&LcoreStats::services);
  j["subsets"] = sum_table(&LcoreStats::subsets);
  j["backends"] = sum_table(&LcoreStats::backends);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(1) << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace
}  // namespace sluice::dpdk

int main(int argc, char** argv) {
  using namespace sluice::dpdk;
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0)
    die(fmt::format("EAL init failed: {}. Hugepages: reserve and mount them (tools/bench/dpdk_hugepages.sh) "
                    "or pass --no-huge -m 256; devices: --vdev net_af_packet0,iface=IF or a PCI address bound "
                    "to vfio-pci",
                    rte_strerror(rte_errno)));
  argc -= eal_args;
  argv += eal_args;

  Forwarder fw;
  fw.pin_dir = SLUICE_DEFAULT_PIN_DIR;
  std::vector<std::string> route_texts, tap_texts;
  std::string stats_file = "/run/sluice/sluice-fwd.json";
  double duration = 0;
  uint32_t flow_capacity = 1u << 20;
  CLI::App app{"sluice-fwd: the sluice L4 steering on DPDK ports (EAL options before --)", "sluice-fwd"};
  app.add_option("--pin-dir", fw.pin_dir, "bpffs directory of the datapath maps sluiced pins")->capture_default_str();
  app.add_option("--route", route_texts, "next hop PREFIX/LEN@PORT=MAC (repeatable; longest prefix wins)")
      ->required();
  app.add_option("--queues", fw.queues, "RX/TX queues per port, one lcore each")->capture_default_str();
  app.add_option("--stats-file", stats_file,
                 "JSON counters rewritten every second; sluiced --dpdk-stats reads them ('' disables)")
      ->capture_default_str();
  app.add_option("--duration", duration, "stop after this many seconds (0: until SIGINT/SIGTERM)");
  app.add_option("--idle-sleep-us", fw.idle_sleep_us,
                 "sleep this long after a poll round that found no packet (shared CPUs, tests); 0 polls only")
      ->capture_default_str();
  app.add_option("--flows", flow_capacity, "flow table capacity per direction")->capture_default_str();
  app.add_option("--exception-tap", tap_texts,
                 "give DPDK port PORT a kernel side: a TAP interface IFNAME (default sluice-tapPORT) with the "
                 "port's MAC; unsteered frames go into it, its frames leave through the port (repeatable)")
      ->type_name("PORT[=IFNAME]");
  try {
    app.parse(argc, argv);
    for (const auto& text : route_texts) fw.routes.push_back(parse_route(text));
    for (const auto& text : tap_texts) fw.taps.push_back(parse_exception_tap(text));
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (!stats_file.empty()) {
    std::error_code ec;
    const auto dir = std::filesystem::path(stats_file).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) die(fmt::format("--stats-file {}: cannot create {}: {}", stats_file, dir.string(), ec.message()));
  }

  uint16_t port;
  RTE_ETH_FOREACH_DEV(port) fw.ports.push_back(port);
  if (fw.ports.empty()) die("no DPDK port: pass --vdev net_af_packet0,iface=IF (or net_af_xdp) or bind a NIC");
  for (const Route& r : fw.routes)
    if (std::find(fw.ports.begin(), fw.ports.end(), r.port) == fw.ports.end())
      die(fmt::format("--route {}: port {} does not exist ({} ports)", r.text, r.port, fw.ports.size()));
  for (size_t i = 0; i < fw.taps.size(); i++) {
    const ExceptionTap& t = fw.taps[i];
    if (std::find(fw.ports.begin(), fw.ports.end(), t.port) == fw.ports.end())
      die(fmt::format("--exception-tap {}: port {} does not exist ({} ports)", t.text, t.port, fw.ports.size()));
    for (size_t j = 0; j < i; j++)
      if (fw.taps[j].port == t.port || fw.taps[j].iface == t.iface)
        die(fmt::format("--exception-tap {} and {}: one TAP per port, one port per TAP name", fw.taps[j].text, t.text));
  }
  if (rte_lcore_count() < fw.queues)
    die(fmt::format("{} queues need {} lcores, EAL has {} (-l)", fw.queues, fw.queues, rte_lcore_count()));

  try {
    fw.tables = std::make_unique<PinnedSteerTables>(fw.pin_dir);
  } catch (const std::exception& e) {
    die(e.what());
  }
  std::shared_ptr<const SteerSnapshot> current = fw.tables->read_snapshot();
  fw.snapshot.store(current.get());
  std::cerr << fmt::format("sluice-fwd: tables from {}: generation {}, {} service ports\n", fw.pin_dir,
                           current->generation, current->services.size());

  const unsigned mbufs = static_cast<unsigned>(fw.ports.size() * fw.queues * (kRxDesc + kTxDesc + 2 * kBurst) + 4096);
  rte_mempool* pool = rte_pktmbuf_pool_create("slc_fwd_mbufs", mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (!pool) die(fmt::format("mbuf pool of {} buffers: {} (more memory: -m, or hugepages)", mbufs, rte_strerror(rte_errno)));
  fw.port_macs.resize(RTE_MAX_ETHPORTS);
  fw.tap_of.fill(-1);
  for (uint16_t p : fw.ports) setup_port(fw, p, pool, kRxDesc, true);
  if (!fw.taps.empty()) {
    // The kernel's frames get their own buffers: a chatty kernel cannot
    // take the data ports' mbufs, and a port whose PMD registers its pool
    // with the kernel (net_af_xdp's UMEM) copies them into its own instead
    // of handing it foreign buffers.
    const unsigned tap_mbufs = static_cast<unsigned>(fw.taps.size() * fw.queues * (2 * kTapDesc + 2 * kBurst) + 1024);
    rte_mempool* tap_pool = rte_pktmbuf_pool_create("slc_fwd_tap_mbufs", tap_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                    static_cast<int>(rte_socket_id()));
    if (!tap_pool)
      die(fmt::format("exception TAP mbuf pool of {} buffers: {} (more memory: -m, or hugepages)", tap_mbufs,
                      rte_strerror(rte_errno)));
    for (ExceptionTap& tap : fw.taps) create_exception_tap(fw, tap, tap_pool);
  }

  fw.flows.forward = create_flow_hash("slc_fwd_flows", flow_capacity);
  fw.flows.reverse = create_flow_hash("slc_fwd_replies", flow_capacity);
  fw.flow_capacity = flow_capacity;
  // Entries are indexed by key position, 0 .. rte_hash_max_key_id (the
  // capacity plus the per-lcore free-slot caches of a multi-writer table).
  fw.flows.forward_slots = static_cast<uint32_t>(rte_hash_max_key_id(fw.flows.forward)) + 1;
  fw.flows.reverse_slots = static_cast<uint32_t>(rte_hash_max_key_id(fw.flows.reverse)) + 1;
  fw.flows.forward_entries = std::make_unique<ForwardEntry[]>(fw.flows.forward_slots);
  fw.flows.reverse_entries = std::make_unique<ReverseEntry[]>(fw.flows.reverse_slots);
  fw.now_ns.store(monotonic_ns());

  std::vector<std::unique_ptr<Lcore>> lcores;
  const std::vector<uint32_t> start_cursors = fw.tables->read_rr_cursors();
  const PinnedSteerTables::CounterSlots slots = fw.tables->counter_slots();
  auto new_stats = [&slots] {
    auto s = std::make_unique<LcoreStats>();
    s->services.resize(slots.services);
    s->subsets.resize(slots.subsets);
    s->backends.resize(slots.backends);
    return s;
  };
  for (uint16_t q = 0; q < fw.queues; q++) {
    auto s = new_stats();
    auto lc = std::make_unique<Lcore>();
    lc->fw = &fw;
    lc->queue = q;
    lc->stats = s.get();
    lc->rr_cursor = start_cursors;
    lc->env.rr_cursor = lc->rr_cursor.data();
    lc->env.rr_count = static_cast<uint32_t>(lc->rr_cursor.size());
    lc->env.load = fw.tables->backend_load();
    lc->env.load_count = fw.tables->backend_load_entries();
    lc->env.random_state = rte_rand();
    lc->tx.resize(RTE_MAX_ETHPORTS);
    lc->bind(current.get());
    fw.stats.push_back(std::move(s));
    lcores.push_back(std::move(lc));
  }
  fw.stats.push_back(new_stats());   // the control thread's: flows it expires

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  // Control thread: keeps the clock, follows the generation flip, expires
  // idle flows, writes the stats file. An EAL control thread runs on the CPUs
  // the lcores do not poll (on the main lcore's CPU if they take them all),
  // and registers so it may free rte_hash positions (per-lcore caches).
  struct ControlArgs {
    std::function<void()> body;
  } control_args;
  control_args.body = [&] {
    if (rte_thread_register() != 0)
      die(fmt::format("register the control thread with EAL: {}", rte_strerror(rte_errno)));
    const uint64_t tsc_hz = rte_get_tsc_hz();
    constexpr auto kTick = std::chrono::milliseconds(5);
    constexpr uint64_t kTickNs = 5'000'000, kSweepPeriodNs = 2'000'000'000;
    auto next_stats = std::chrono::steady_clock::now();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration);
    FlowSweeper forward_sweeper, reverse_sweeper;
    std::vector<int32_t> expired_forward, expired_reverse;
    LcoreStats& control_stats = *fw.stats.back();
    while (!g_stop.load()) {
      std::this_thread::sleep_for(kTick);
      const uint64_t now = monotonic_ns();
      fw.now_ns.store(now, std::memory_order_relaxed);
      if (duration > 0 && std::chrono::steady_clock::now() >= deadline) g_stop.store(true);
      bool retire_snapshot = false;
      std::shared_ptr<const SteerSnapshot> fresh;
      if (fw.tables->active_generation() != current->generation) {
        try {
          fresh = fw.tables->read_snapshot();
          // seq_cst: the store is visible before the quiescence counters are read.
          fw.snapshot.store(fresh.get(), std::memory_order_seq_cst);
          retire_snapshot = true;
        } catch (const std::exception& e) {
          std::cerr << "sluice-fwd: keeping generation " << current->generation << ": " << e.what() << "\n";
        }
      }
      const FlowTimeouts timeouts{fw.tables->tcp_idle_ns(), fw.tables->udp_idle_ns(), fw.tables->closing_ns()};
      ForwardSweepView forward_view{fw, control_stats, expired_forward};
      ReverseSweepView reverse_view{fw, expired_reverse};
      forward_sweeper.sweep(forward_view, now, timeouts, kTickNs, kSweepPeriodNs);
      reverse_sweeper.sweep(reverse_view, now, timeouts, kTickNs, kSweepPeriodNs);
      if (retire_snapshot || !expired_forward.empty() || !expired_reverse.empty()) {
        // Free the old snapshot and the deleted keys' positions once no lcore
        // can still hold them.
        wait_for_lcores_quiescent(fw);
        for (int32_t pos : expired_forward) rte_hash_free_key_with_position(fw.flows.forward, pos);
        for (int32_t pos : expired_reverse) rte_hash_free_key_with_position(fw.flows.reverse, pos);
        expired_forward.clear();
        expired_reverse.clear();
      }
      if (retire_snapshot) {
        current = std::move(fresh);
        fw.snapshots_applied++;
        // Written at once, so a caller can tell the new tables are live here.
        if (!stats_file.empty()) write_stats(fw, stats_file, tsc_hz);
      }
      if (!stats_file.empty() && std::chrono::steady_clock::now() >= next_stats) {
        write_stats(fw, stats_file, tsc_hz);
        next_stats = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
    }
    rte_thread_unregister();
  };
  pthread_t control;
  if (int err = rte_ctrl_thread_create(
          &control, "slc-fwd-ctrl", nullptr,
          [](void* arg) -> void* {
            static_cast<ControlArgs*>(arg)->body();
            return nullptr;
          },
          &control_args))
    die(fmt::format("start the control thread: {}", rte_strerror(err)));

  // Queue q runs on the q-th lcore; the main lcore takes queue 0.
  unsigned lcore_id;
  uint16_t q = 1;
  RTE_LCORE_FOREACH_WORKER(lcore_id) {
    if (q >= fw.queues) break;
    rte_eal_remote_launch(lcore_main, lcores[q++].get(), lcore_id);
  }
  lcore_main(lcores[0].get());
  rte_eal_mp_wait_lcore();
  pthread_join(control, nullptr);
  if (!stats_file.empty()) write_stats(fw, stats_file, rte_get_tsc_hz());
  // Closing a TAP removes its kernel interface (and the addresses on it).
  for (const ExceptionTap& tap : fw.taps) {
    rte_eth_dev_stop(tap.tap_port);
    rte_eth_dev_close(tap.tap_port);
  }
  for (uint16_t p : fw.ports) {
    rte_eth_dev_stop(p);
    rte_eth_dev_close(p);
  }
  rte_hash_free(fw.flows.forward);
  rte_hash_free(fw.flows.reverse);
  rte_eal_cleanup();
  return 0;
}

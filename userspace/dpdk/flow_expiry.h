// Idle expiry of the forwarder's flow tables, with the kernel conntrack's
// timeouts (sluice_ctrl: tcp_idle_ns, udp_idle_ns, closing_ns): a TCP flow
// that saw FIN or RST, or whose backend never answered, goes closing_ns after
// its last packet, another TCP flow tcp_idle_ns, a UDP flow udp_idle_ns.
//
// The sweeper walks a table a slice at a time (a whole pass per `period`),
// so the control thread's work per tick stays small and constant. It is
// generic over the table so the rules are tested without DPDK; the table
// type provides:
//
//   uint32_t slots() const;                                  positions 0..slots-1
//   std::optional<FlowActivity> activity(uint32_t pos) const;  nullopt: slot unused
//   void expire(uint32_t pos);                               remove the flow at pos
#pragma once

#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace sluice::dpdk {

struct FlowTimeouts {
  uint64_t tcp_idle_ns = 0;
  uint64_t udp_idle_ns = 0;
  uint64_t closing_ns = 0;
};

struct FlowActivity {
  uint8_t proto = IPPROTO_TCP;
  bool closing = false;        // FIN or RST seen (TCP), or the flow was re-steered
  uint64_t last_seen_ns = 0;   // latest packet in either direction
  bool replied = true;         // the backend answered (SLUICE_CT_F_REPLIED)
};

// How long a flow may stay idle.
inline uint64_t flow_idle_limit_ns(const FlowActivity& flow, const FlowTimeouts& t) {
  if (flow.proto == IPPROTO_UDP) return t.udp_idle_ns;
  return flow.closing || !flow.replied ? t.closing_ns : t.tcp_idle_ns;
}

inline bool flow_expired(const FlowActivity& flow, uint64_t now_ns, const FlowTimeouts& t) {
  return now_ns > flow.last_seen_ns && now_ns - flow.last_seen_ns > flow_idle_limit_ns(flow, t);
}

class FlowSweeper {
 public:
  // Visits the next slice of the table: enough slots that `period` worth of
  // ticks of length `tick` cover the whole table. Returns the flows expired.
  template <typename Table>
  uint32_t sweep(Table& table, uint64_t now_ns, const FlowTimeouts& timeouts, uint64_t tick_ns, uint64_t period_ns) {
    const uint32_t slots = table.slots();
    if (slots == 0) return 0;
    const uint64_t ticks_per_pass = std::max<uint64_t>(1, period_ns / std::max<uint64_t>(1, tick_ns));
    const uint32_t budget = static_cast<uint32_t>(std::min<uint64_t>(slots, (slots + ticks_per_pass - 1) / ticks_per_pass));
    uint32_t expired = 0;
    for (uint32_t i = 0; i < budget; i++) {
      if (cursor_ >= slots) cursor_ = 0;
      const uint32_t pos = cursor_++;
      const std::optional<FlowActivity> flow = table.activity(pos);
      if (flow && flow_expired(*flow, now_ns, timeouts)) {
        table.expire(pos);
        expired++;
      }
    }
    return expired;
  }

 private:
  uint32_t cursor_ = 0;
};

}  // namespace sluice::dpdk

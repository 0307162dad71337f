#include "dpdk/flow_expiry.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace sluice::dpdk {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;
const FlowTimeouts kTimeouts{.tcp_idle_ns = 3600 * kSecond, .udp_idle_ns = 60 * kSecond, .closing_ns = 10 * kSecond};

// A flow table of fixed slots, as the sweeper sees one.
struct FakeFlowTable {
  std::vector<std::optional<FlowActivity>> flows;
  std::vector<uint32_t> expired;

  uint32_t slots() const { return static_cast<uint32_t>(flows.size()); }
  std::optional<FlowActivity> activity(uint32_t pos) const { return flows[pos]; }
  void expire(uint32_t pos) {
    flows[pos].reset();
    expired.push_back(pos);
  }
};

FlowActivity tcp(uint64_t last_seen, bool closing = false) { return {IPPROTO_TCP, closing, last_seen}; }
FlowActivity udp(uint64_t last_seen) { return {IPPROTO_UDP, false, last_seen}; }

TEST(FlowExpiry, OpenTcpFlowLivesForTheTcpIdleTimeout) {
  EXPECT_FALSE(flow_expired(tcp(0), 3600 * kSecond, kTimeouts));
  EXPECT_TRUE(flow_expired(tcp(0), 3600 * kSecond + 1, kTimeouts));
}

TEST(FlowExpiry, TcpFlowThatSawFinOrRstGoesAfterTheClosingTimeout) {
  EXPECT_FALSE(flow_expired(tcp(5 * kSecond, true), 15 * kSecond, kTimeouts));
  EXPECT_TRUE(flow_expired(tcp(5 * kSecond, true), 15 * kSecond + 1, kTimeouts));
}

TEST(FlowExpiry, TcpFlowItsBackendNeverAnsweredGoesAfterTheClosingTimeout) {
  const FlowActivity unanswered{IPPROTO_TCP, false, 5 * kSecond, false};
  EXPECT_FALSE(flow_expired(unanswered, 15 * kSecond, kTimeouts));
  EXPECT_TRUE(flow_expired(unanswered, 15 * kSecond + 1, kTimeouts));
}

TEST(FlowExpiry, UdpFlowUsesTheUdpTimeoutWhateverItsFlags) {
  EXPECT_FALSE(flow_expired(udp(0), 60 * kSecond, kTimeouts));
  EXPECT_TRUE(flow_expired(udp(0), 60 * kSecond + 1, kTimeouts));
}

TEST(FlowExpiry, PacketSeenAfterTheSweepersClockReadIsNotExpired) {
  // An lcore may refresh last_seen with a clock reading newer than the one
  // the sweeper took: that flow is fresh, not 2^64 ns old.
  EXPECT_FALSE(flow_expired(tcp(10 * kSecond), 9 * kSecond, kTimeouts));
}

TEST(FlowSweeper, ExpiresOnlyIdleFlowsAndLeavesActiveOnesInPlace) {
  FakeFlowTable table;
  const uint64_t now = 7200 * kSecond;
  table.flows = {tcp(now - kSecond), tcp(0), std::nullopt, tcp(now - 11 * kSecond, true), udp(now - 61 * kSecond),
                 udp(now - 59 * kSecond), tcp(now - 9 * kSecond, true)};
  FlowSweeper sweeper;
  // tick == period: the whole table in one call.
  EXPECT_EQ(sweeper.sweep(table, now, kTimeouts, kSecond, kSecond), 3u);
  EXPECT_EQ(table.expired, (std::vector<uint32_t>{1, 3, 4}));
  EXPECT_TRUE(table.flows[0] && table.flows[5] && table.flows[6]);
}

TEST(FlowSweeper, VisitsASliceEachTickAndTheWholeTableOncePerPeriod) {
  FakeFlowTable table;
  table.flows.assign(1000, tcp(0));
  FlowSweeper sweeper;
  const uint64_t now = 7200 * kSecond;
  // 5 ms ticks, 2 s period: 400 ticks per pass, ceil(1000 / 400) = 3 slots each.
  EXPECT_EQ(sweeper.sweep(table, now, kTimeouts, 5'000'000, 2 * kSecond), 3u);
  uint32_t ticks = 1;
  while (table.expired.size() < 1000 && ticks < 1000) {
    sweeper.sweep(table, now, kTimeouts, 5'000'000, 2 * kSecond);
    ticks++;
  }
  EXPECT_EQ(table.expired.size(), 1000u);
  EXPECT_EQ(ticks, 334u);   // ceil(1000 / 3): within one period of 400 ticks
  // The cursor wraps: a flow that goes idle later is found on the next pass.
  table.flows[0] = tcp(0);
  for (uint32_t i = 0; i < 400; i++) sweeper.sweep(table, now, kTimeouts, 5'000'000, 2 * kSecond);
  EXPECT_FALSE(table.flows[0]);
}

TEST(FlowSweeper, EmptyTableIsNoWork) {
  FakeFlowTable table;
  FlowSweeper sweeper;
  EXPECT_EQ(sweeper.sweep(table, kSecond, kTimeouts, 1, 1), 0u);
}

}  // namespace
}  // namespace sluice::dpdk

// The forwarder's frame parsing and NAT rewriting (userspace/dpdk/packet_nat.h):
// the rewritten frame is the frame the sender would have built for the new
// address, with valid checksums, whether the input carried a full or a
// partial (offload-pending) L4 checksum.
#include <gtest/gtest.h>

#include "bpf/packet_builder.h"
#include "dpdk/packet_nat.h"

namespace sluice::dpdk {
namespace {

using testing::build_packet;
using testing::Frame;
using testing::PacketSpec;

sluice_backend backend_at(const char* addr, uint16_t port) {
  sluice_backend b{};
  const bool v6 = std::string(addr).find(':') != std::string::npos;
  inet_pton(v6 ? AF_INET6 : AF_INET, addr, b.addr);
  b.port = htons(port);
  return b;
}

struct Case {
  const char* name;
  PacketSpec spec;
  const char* backend;
};

class RewriteTest : public ::testing::TestWithParam<Case> {};

TEST_P(RewriteTest, DnatGivesTheFrameTheClientWouldHaveSentToTheBackend) {
  const Case& c = GetParam();
  Frame f = build_packet(c.spec);
  ParsedFrame p;
  ASSERT_TRUE(parse_frame(f.data(), static_cast<uint32_t>(f.size()), p));
  EXPECT_EQ(ntohs(p.key.dport), c.spec.dport);
  const sluice_backend b = backend_at(c.backend, 9181);
  ASSERT_TRUE(rewrite_endpoint(f.data(), p, RewriteSide::Destination, b.addr, b.port));

  PacketSpec expected = c.spec;
  expected.dst = c.backend;
  expected.dport = 9181;
  expected.ttl = static_cast<uint8_t>(c.spec.ttl - 1);
  expected.partial_checksum = false;
  std::string why;
  EXPECT_TRUE(testing::checksums_valid(f, &why)) << why;
  EXPECT_EQ(f, build_packet(expected));
}

TEST_P(RewriteTest, ReverseNatRestoresTheVipAsSource) {
  const Case& c = GetParam();
  PacketSpec reply = c.spec;
  std::swap(reply.src, reply.dst);
  reply.src = c.backend;
  reply.sport = 9181;
  reply.dport = c.spec.sport;
  Frame f = build_packet(reply);
  ParsedFrame p;
  ASSERT_TRUE(parse_frame(f.data(), static_cast<uint32_t>(f.size()), p));
  const sluice_backend vip = backend_at(c.spec.dst.c_str(), c.spec.dport);
  ASSERT_TRUE(rewrite_endpoint(f.data(), p, RewriteSide::Source, vip.addr, vip.port));

  PacketSpec expected = reply;
  expected.src = c.spec.dst;
  expected.sport = c.spec.dport;
  expected.ttl = static_cast<uint8_t>(reply.ttl - 1);
  expected.partial_checksum = false;
  std::string why;
  EXPECT_TRUE(testing::checksums_valid(f, &why)) << why;
  EXPECT_EQ(f, build_packet(expected));
}

PacketSpec spec(const char* src, const char* dst, uint8_t proto, bool partial, std::vector<uint8_t> payload = {}) {
  PacketSpec s;
  s.src = src;
  s.dst = dst;
  s.proto = proto;
  s.dport = proto == IPPROTO_UDP ? 9082 : 9081;
  s.partial_checksum = partial;
  s.payload = std::move(payload);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Frames, RewriteTest,
    ::testing::Values(
        Case{"v4_tcp_full", spec("10.200.1.2", "10.96.0.10", IPPROTO_TCP, false), "10.200.11.2"},
        Case{"v4_tcp_partial", spec("10.200.1.2", "10.96.0.10", IPPROTO_TCP, true, {1, 2, 3}), "10.200.13.2"},
        Case{"v4_udp_full", spec("10.200.1.2", "10.96.0.10", IPPROTO_UDP, false, {9, 8, 7, 6, 5}), "10.200.12.2"},
        Case{"v4_udp_partial", spec("10.200.1.2", "10.96.0.10", IPPROTO_UDP, true, {1}), "10.200.14.2"},
        Case{"v6_tcp_full", spec("fd00:200:1::2", "fd00:96::10", IPPROTO_TCP, false), "fd00:200:11::2"},
        Case{"v6_tcp_partial", spec("fd00:200:1::2", "fd00:96::10", IPPROTO_TCP, true, {4, 4}), "fd00:200:12::2"},
        Case{"v6_udp_full", spec("fd00:200:1::2", "fd00:96::10", IPPROTO_UDP, false, {1, 2}), "fd00:200:13::2"}),
    [](const ::testing::TestParamInfo<Case>& param_info) { return std::string(param_info.param.name); });

// The exception path hands frames to the kernel through a TAP, which does
// not take offload state: a partial checksum must be completed first, and a
// complete one left alone.
TEST_P(RewriteTest, APartialChecksumIsCompletedForTheKernelAndTheFrameIsOtherwiseUnchanged) {
  const Case& c = GetParam();
  Frame f = build_packet(c.spec);
  ParsedFrame p;
  ASSERT_TRUE(parse_frame(f.data(), static_cast<uint32_t>(f.size()), p));
  EXPECT_EQ(has_partial_checksum(f.data(), p), c.spec.partial_checksum);
  if (has_partial_checksum(f.data(), p)) write_full_l4_checksum(f.data(), p);

  PacketSpec expected = c.spec;
  expected.partial_checksum = false;
  std::string why;
  EXPECT_TRUE(testing::checksums_valid(f, &why)) << why;
  EXPECT_EQ(f, build_packet(expected));
}

TEST(PartialChecksum, AnIpv4UdpDatagramWithoutChecksumIsNotPartial) {
  PacketSpec s = spec("10.200.1.2", "10.96.0.10", IPPROTO_UDP, false, {1, 2});
  Frame f = build_packet(s);
  ParsedFrame p;
  ASSERT_TRUE(parse_frame(f.data(), static_cast<uint32_t>(f.size()), p));
  f[p.l4_off + 6] = 0, f[p.l4_off + 7] = 0;
  EXPECT_FALSE(has_partial_checksum(f.data(), p));
}

TEST(ParseFrame, LeavesFragmentsAndNonIpToTheKernel) {
  Frame f = build_packet(spec("10.200.1.2", "10.96.0.10", IPPROTO_TCP, false));
  ParsedFrame p;
  Frame fragment = f;
  fragment[14 + 6] = 0x20;   // MF
  EXPECT_FALSE(parse_frame(fragment.data(), static_cast<uint32_t>(fragment.size()), p));
  Frame arp = f;
  arp[12] = 0x08, arp[13] = 0x06;
  EXPECT_FALSE(parse_frame(arp.data(), static_cast<uint32_t>(arp.size()), p));
  EXPECT_FALSE(parse_frame(f.data(), 30, p));
}

TEST(RewriteEndpoint, RefusesAnExpiringTtl) {
  PacketSpec s = spec("10.200.1.2", "10.96.0.10", IPPROTO_TCP, false);
  s.ttl = 1;
  Frame f = build_packet(s);
  ParsedFrame p;
  ASSERT_TRUE(parse_frame(f.data(), static_cast<uint32_t>(f.size()), p));
  const sluice_backend b = backend_at("10.200.11.2", 9081);
  EXPECT_FALSE(rewrite_endpoint(f.data(), p, RewriteSide::Destination, b.addr, b.port));
}

}  // namespace
}  // namespace sluice::dpdk

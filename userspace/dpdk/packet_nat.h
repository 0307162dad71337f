// Frame parsing and NAT rewriting of the forwarder, on plain bytes (no DPDK
// types) so they can be tested without a port. Same coverage as the XDP
// program's fast path: Ethernet, IPv4 without options or fragments, IPv6
// without extension headers, TCP and UDP. Anything else is not steered.
//
// Checksums: a segment from a local stack over veth may carry a *partial*
// L4 checksum (the field holds only the pseudo-header sum, offload finishes
// it; see docs/bpf-datapath.md, "Checksums after NAT"). Such a segment gets a
// complete checksum computed after the rewrite; a full checksum is updated
// incrementally (RFC 1624).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

#include "sluice/datapath_structs.h"

namespace sluice::dpdk {

// Header offsets (byte layout, not struct types: DPDK's and glibc's headers
// both define struct iphdr).
constexpr uint32_t kEthHeaderLen = 14;
constexpr uint16_t kEtherTypeIpv4 = 0x0800, kEtherTypeIpv6 = 0x86dd;
constexpr uint32_t kIpv4HeaderLen = 20, kIpv6HeaderLen = 40;
constexpr uint32_t kIpv4TotalLen = 2, kIpv4FragOff = 6, kIpv4Ttl = 8, kIpv4Proto = 9, kIpv4Check = 10,
                   kIpv4Src = 12, kIpv4Dst = 16;
constexpr uint32_t kIpv6PayloadLen = 4, kIpv6NextHeader = 6, kIpv6HopLimit = 7, kIpv6Src = 8, kIpv6Dst = 24;

struct ParsedFrame {
  sluice_flow_key key{};   // as on the wire (network order)
  uint32_t l3_off = 0, l4_off = 0, l4_len = 0;
  uint8_t tcp_flags = 0;
};

inline uint32_t csum_add_bytes(uint32_t sum, const uint8_t* p, size_t n) {
  for (; n >= 2; p += 2, n -= 2) sum += (uint32_t{p[0]} << 8) | p[1];
  if (n) sum += uint32_t{p[0]} << 8;
  return sum;
}

inline uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// Host-order checksum field updated for a 16-bit word changing old -> new (RFC 1624 eqn. 3).
inline uint16_t csum_replace16(uint16_t check, uint16_t old_word, uint16_t new_word) {
  uint32_t sum = static_cast<uint16_t>(~check) + static_cast<uint16_t>(~old_word) + uint32_t{new_word};
  return static_cast<uint16_t>(~csum_fold(sum));
}

inline uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Parses an untagged frame. False: not a frame the forwarder steers.
inline bool parse_frame(const uint8_t* f, uint32_t len, ParsedFrame& out) {
  if (len < kEthHeaderLen) return false;
  const uint16_t ethertype = load16(f + 12);
  out.key = sluice_flow_key{};
  out.l3_off = kEthHeaderLen;
  const uint8_t* ip = f + kEthHeaderLen;
  uint32_t l4_end;
  if (ethertype == kEtherTypeIpv4) {
    if (len < kEthHeaderLen + kIpv4HeaderLen) return false;
    if (ip[0] != 0x45) return false;                          // version 4, no options
    if (load16(ip + kIpv4FragOff) & 0x3fff) return false;    // MF or offset: fragments go to the kernel
    const uint32_t total = load16(ip + kIpv4TotalLen);
    if (total < kIpv4HeaderLen || kEthHeaderLen + total > len) return false;
    std::memcpy(&out.key.src[0], ip + kIpv4Src, 4);
    std::memcpy(&out.key.dst[0], ip + kIpv4Dst, 4);
    out.key.proto = ip[kIpv4Proto];
    out.key.family = SLUICE_FAMILY_V4;
    out.l4_off = kEthHeaderLen + kIpv4HeaderLen;
    l4_end = kEthHeaderLen + total;
  } else if (ethertype == kEtherTypeIpv6) {
    if (len < kEthHeaderLen + kIpv6HeaderLen) return false;
    if ((ip[0] >> 4) != 6) return false;
    l4_end = kEthHeaderLen + kIpv6HeaderLen + load16(ip + kIpv6PayloadLen);
    if (l4_end > len) return false;
    std::memcpy(out.key.src, ip + kIpv6Src, 16);
    std::memcpy(out.key.dst, ip + kIpv6Dst, 16);
    out.key.proto = ip[kIpv6NextHeader];
    out.key.family = SLUICE_FAMILY_V6;
    out.l4_off = kEthHeaderLen + kIpv6HeaderLen;
  } else {
    return false;
  }
  out.l4_len = l4_end - out.l4_off;
  const uint8_t* l4 = f + out.l4_off;
  if (out.key.proto == IPPROTO_TCP) {
    if (out.l4_len < 20) return false;
    out.tcp_flags = l4[13];
  } else if (out.key.proto == IPPROTO_UDP) {
    if (out.l4_len < 8) return false;
  } else {
    return false;
  }
  std::memcpy(&out.key.sport, l4, 2);
  std::memcpy(&out.key.dport, l4 + 2, 2);
  return true;
}

inline uint32_t pseudo_header_sum(const ParsedFrame& p, const uint32_t* src, const uint32_t* dst) {
  const size_t addr_len = p.key.family == SLUICE_FAMILY_V4 ? 4 : 16;
  uint32_t sum = csum_add_bytes(0, reinterpret_cast<const uint8_t*>(src), addr_len);
  sum = csum_add_bytes(sum, reinterpret_cast<const uint8_t*>(dst), addr_len);
  return sum + p.key.proto + p.l4_len;
}

// True when the L4 checksum field holds only the pseudo-header sum: the
// segment left a local stack over veth with its checksum offload pending
// (docs/bpf-datapath.md). An IPv4 UDP datagram without checksum (0) is not partial.
inline bool has_partial_checksum(const uint8_t* f, const ParsedFrame& p) {
  const bool udp = p.key.proto == IPPROTO_UDP;
  const uint16_t check = load16(f + p.l4_off + (udp ? 6 : 16));
  if (udp && check == 0 && p.key.family == SLUICE_FAMILY_V4) return false;
  return check == csum_fold(pseudo_header_sum(p, p.key.src, p.key.dst));
}

// Writes the complete L4 checksum of the frame as it is now (what the
// sender's offload would have finished).
inline void write_full_l4_checksum(uint8_t* f, const ParsedFrame& p) {
  uint8_t* l4 = f + p.l4_off;
  const bool udp = p.key.proto == IPPROTO_UDP;
  uint8_t* check_field = l4 + (udp ? 6 : 16);
  store16(check_field, 0);
  uint32_t sum = pseudo_header_sum(p, p.key.src, p.key.dst);
  sum = csum_add_bytes(sum, l4, p.l4_len);
  uint16_t check = static_cast<uint16_t>(~csum_fold(sum));
  if (udp && check == 0) check = 0xffff;
  store16(check_field, check);
}

enum class RewriteSide { Destination, Source };

// Rewrites the frame's destination (DNAT) or source (reverse NAT) address and
// port, fixes the IPv4 header and L4 checksums, decrements TTL / hop limit.
// Returns false when the packet must not be forwarded (TTL expired).
inline bool rewrite_endpoint(uint8_t* f, ParsedFrame& p, RewriteSide side, const uint32_t addr[4], uint16_t port_be) {
  uint8_t* l4 = f + p.l4_off;
  const bool udp = p.key.proto == IPPROTO_UDP;
  uint8_t* check_field = l4 + (udp ? 6 : 16);
  uint16_t check = load16(check_field);
  const bool udp_no_checksum = udp && check == 0 && p.key.family == SLUICE_FAMILY_V4;
  const bool partial = has_partial_checksum(f, p);

  uint32_t* key_addr = side == RewriteSide::Destination ? p.key.dst : p.key.src;
  uint16_t* key_port = side == RewriteSide::Destination ? &p.key.dport : &p.key.sport;
  const size_t addr_len = p.key.family == SLUICE_FAMILY_V4 ? 4 : 16;
  uint8_t* port_field = l4 + (side == RewriteSide::Destination ? 2 : 0);

  uint8_t* ip = f + p.l3_off;
  const auto* new_bytes = reinterpret_cast<const uint8_t*>(addr);
  if (p.key.family == SLUICE_FAMILY_V4) {
    if (ip[kIpv4Ttl] <= 1) return false;
    uint8_t* addr_field = ip + (side == RewriteSide::Destination ? kIpv4Dst : kIpv4Src);
    uint16_t ip_check = load16(ip + kIpv4Check);
    for (int w = 0; w < 2; w++) {
      const uint16_t old_word = load16(addr_field + 2 * w), new_word = load16(new_bytes + 2 * w);
      ip_check = csum_replace16(ip_check, old_word, new_word);
      if (!partial && !udp_no_checksum) check = csum_replace16(check, old_word, new_word);
    }
    std::memcpy(addr_field, addr, 4);
    const uint16_t ttl_word = load16(ip + kIpv4Ttl);
    ip[kIpv4Ttl]--;
    ip_check = csum_replace16(ip_check, ttl_word, load16(ip + kIpv4Ttl));
    store16(ip + kIpv4Check, ip_check);
  } else {
    if (ip[kIpv6HopLimit] <= 1) return false;
    uint8_t* addr_field = ip + (side == RewriteSide::Destination ? kIpv6Dst : kIpv6Src);
    if (!partial)
      for (int w = 0; w < 8; w++) check = csum_replace16(check, load16(addr_field + 2 * w), load16(new_bytes + 2 * w));
    std::memcpy(addr_field, addr, 16);
    ip[kIpv6HopLimit]--;
  }
  if (!partial && !udp_no_checksum) check = csum_replace16(check, load16(port_field), ntohs(port_be));
  std::memcpy(port_field, &port_be, 2);
  std::memcpy(key_addr, addr, addr_len);
  *key_port = port_be;

  if (partial) {
    write_full_l4_checksum(f, p);
    return true;
  }
  if (udp && check == 0 && !udp_no_checksum) check = 0xffff;
  store16(check_field, check);
  return true;
}

}  // namespace sluice::dpdk

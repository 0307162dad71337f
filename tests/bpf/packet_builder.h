// Builds test frames (Ethernet, optional 802.1Q, IPv4/IPv6, TCP/UDP) with
// correct checksums, or with the partial checksum a local stack leaves for
// offload, and verifies the checksums of a frame the program rewrote.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sluice/datapath_structs.h"

namespace sluice::testing {

using Frame = std::vector<uint8_t>;

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

struct PacketSpec {
  std::string src = "10.200.1.2";
  std::string dst = "10.96.0.10";
  uint16_t sport = 40000;
  uint16_t dport = 9081;
  uint8_t proto = IPPROTO_TCP;
  uint8_t tcp_flags = kSyn;
  bool vlan = false;
  bool partial_checksum = false;   // L4 field = pseudo-header sum only (CHECKSUM_PARTIAL)
  uint8_t ttl = 64;
  std::vector<uint8_t> payload;
};

inline bool is_v6(const std::string& addr) { return addr.find(':') != std::string::npos; }

// The conntrack key (client -> VIP as on the wire) of the flow `spec` builds.
inline sluice_flow_key flow_key_of(const PacketSpec& spec) {
  sluice_flow_key key{};
  const bool v6 = is_v6(spec.dst);
  inet_pton(v6 ? AF_INET6 : AF_INET, spec.src.c_str(), key.src);
  inet_pton(v6 ? AF_INET6 : AF_INET, spec.dst.c_str(), key.dst);
  key.sport = htons(spec.sport);
  key.dport = htons(spec.dport);
  key.proto = spec.proto;
  key.family = v6 ? SLUICE_FAMILY_V6 : SLUICE_FAMILY_V4;
  return key;
}

inline uint32_t sum_words(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}

inline uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

inline uint32_t pseudo_sum(const uint8_t* src, const uint8_t* dst, size_t addr_len, uint8_t proto, size_t l4_len) {
  uint32_t sum = sum_words(src, addr_len);
  sum = sum_words(dst, addr_len, sum);
  return sum + proto + static_cast<uint32_t>(l4_len);
}

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline Frame build_packet(const PacketSpec& spec) {
  const bool v6 = is_v6(spec.dst);
  const size_t addr_len = v6 ? 16 : 4;
  uint8_t src[16] = {}, dst[16] = {};
  inet_pton(v6 ? AF_INET6 : AF_INET, spec.src.c_str(), src);
  inet_pton(v6 ? AF_INET6 : AF_INET, spec.dst.c_str(), dst);

  const size_t l4_hdr = spec.proto == IPPROTO_TCP ? 20 : 8;
  const size_t l4_len = l4_hdr + spec.payload.size();
  Frame f;
  const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
  f.insert(f.end(), macs, macs + 12);
  if (spec.vlan) {
    f.insert(f.end(), {0x81, 0x00, 0x00, 0x64});
  }
  f.push_back(v6 ? 0x86 : 0x08);
  f.push_back(v6 ? 0xdd : 0x00);
  const size_t l3 = f.size();
  if (v6) {
    f.resize(l3 + 40);
    f[l3] = 0x60;
    put16(&f[l3 + 4], static_cast<uint16_t>(l4_len));
    f[l3 + 6] = spec.proto;
    f[l3 + 7] = spec.ttl;
    std::memcpy(&f[l3 + 8], src, 16);
    std::memcpy(&f[l3 + 24], dst, 16);
  } else {
    f.resize(l3 + 20);
    f[l3] = 0x45;
    put16(&f[l3 + 2], static_cast<uint16_t>(20 + l4_len));
    put16(&f[l3 + 4], 0x1234);
    put16(&f[l3 + 6], 0x4000);   // DF
    f[l3 + 8] = spec.ttl;
    f[l3 + 9] = spec.proto;
    std::memcpy(&f[l3 + 12], src, 4);
    std::memcpy(&f[l3 + 16], dst, 4);
    put16(&f[l3 + 10], static_cast<uint16_t>(~fold(sum_words(&f[l3], 20))));
  }
  const size_t l4 = f.size();
  f.resize(l4 + l4_hdr);
  put16(&f[l4], spec.sport);
  put16(&f[l4 + 2], spec.dport);
  size_t check_off;
  if (spec.proto == IPPROTO_TCP) {
    put16(&f[l4 + 4], 0x0102);
    put16(&f[l4 + 6], 0x0304);   // seq
    f[l4 + 12] = 0x50;
    f[l4 + 13] = spec.tcp_flags;
    put16(&f[l4 + 14], 64240);
    check_off = l4 + 16;
  } else {
    put16(&f[l4 + 4], static_cast<uint16_t>(l4_len));
    check_off = l4 + 6;
  }
  f.insert(f.end(), spec.payload.begin(), spec.payload.end());
  const uint32_t pseudo = pseudo_sum(src, dst, addr_len, spec.proto, l4_len);
  uint16_t check;
  if (spec.partial_checksum) {
    check = fold(pseudo);
  } else {
    check = static_cast<uint16_t>(~fold(sum_words(&f[l4], l4_len, pseudo)));
    if (spec.proto == IPPROTO_UDP && check == 0) check = 0xffff;
  }
  put16(&f[check_off], check);
  return f;
}

// True when the IPv4 header checksum and the L4 checksum of `f` verify.
inline bool checksums_valid(const Frame& f, std::string* why) {
  size_t l3 = 14;
  if (f.size() >= 14 && f[12] == 0x81 && f[13] == 0x00) l3 = 18;
  const bool v6 = f[l3 - 2] == 0x86;
  size_t l4, l4_len;
  uint8_t proto;
  uint32_t pseudo;
  if (v6) {
    l4 = l3 + 40;
    l4_len = static_cast<size_t>(f[l3 + 4] << 8 | f[l3 + 5]);
    proto = f[l3 + 6];
    pseudo = pseudo_sum(&f[l3 + 8], &f[l3 + 24], 16, proto, l4_len);
  } else {
    if (fold(sum_words(&f[l3], 20)) != 0xffff) {
      *why = "IPv4 header checksum";
      return false;
    }
    l4 = l3 + 20;
    l4_len = static_cast<size_t>(f[l3 + 2] << 8 | f[l3 + 3]) - 20;
    proto = f[l3 + 9];
    pseudo = pseudo_sum(&f[l3 + 12], &f[l3 + 16], 4, proto, l4_len);
  }
  if (fold(sum_words(&f[l4], l4_len, pseudo)) != 0xffff) {
    *why = proto == IPPROTO_TCP ? "TCP checksum" : "UDP checksum";
    return false;
  }
  return true;
}

}  // namespace sluice::testing

// Sends 64-byte UDP frames (IPv4, 60 bytes + FCS on the wire) to a VIP from
// N source ports, as fast as one AF_PACKET socket with qdisc bypass and
// sendmmsg allows, for a bounded time. The packet-rate source of
// tools/bench/dpdk_forwarder.sh (no pktgen module or testpmd on this host).
//
//   dpdk_frame_blaster --iface eth0 --dst-mac MAC --src IP --dst IP --dport P
//                      [--flows N] [--seconds S]
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <vector>

namespace {

uint16_t ip_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

int main(int argc, char** argv) {
  std::string iface, dst_mac_text, src_text, dst_text;
  uint16_t dport = 9082;
  unsigned flows = 256;
  double seconds = 5;
  CLI::App app{"64-byte UDP frames over AF_PACKET, bounded in time"};
  app.add_option("--iface", iface)->required();
  app.add_option("--dst-mac", dst_mac_text)->required();
  app.add_option("--src", src_text)->required();
  app.add_option("--dst", dst_text)->required();
  app.add_option("--dport", dport);
  app.add_option("--flows", flows);
  app.add_option("--seconds", seconds);
  CLI11_PARSE(app, argc, argv);

  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) return perror("socket(AF_PACKET)"), 1;
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface.c_str());
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) return perror(("SIOCGIFHWADDR " + iface).c_str()), 1;
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
  addr.sll_halen = 6;
  uint8_t dst_mac[6];
  if (std::sscanf(dst_mac_text.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dst_mac[0], &dst_mac[1], &dst_mac[2],
                  &dst_mac[3], &dst_mac[4], &dst_mac[5]) != 6)
    return std::cerr << "bad --dst-mac " << dst_mac_text << "\n", 2;
  std::memcpy(addr.sll_addr, dst_mac, 6);
  in_addr src{}, dst{};
  if (inet_pton(AF_INET, src_text.c_str(), &src) != 1 || inet_pton(AF_INET, dst_text.c_str(), &dst) != 1)
    return std::cerr << "bad --src/--dst\n", 2;

  constexpr size_t kLen = 60;   // 64 on the wire with the FCS
  std::vector<std::array<uint8_t, kLen>> frames(flows);
  for (unsigned i = 0; i < flows; i++) {
    uint8_t* f = frames[i].data();
    std::memset(f, 0, kLen);
    std::memcpy(f, dst_mac, 6);
    std::memcpy(f + 6, ifr.ifr_hwaddr.sa_data, 6);
    f[12] = 0x08;
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    const uint16_t total = kLen - 14;
    ip[2] = total >> 8, ip[3] = total & 0xff;
    ip[8] = 64, ip[9] = IPPROTO_UDP;
    std::memcpy(ip + 12, &src, 4);
    std::memcpy(ip + 16, &dst, 4);
    const uint16_t c = ip_checksum(ip, 20);
    ip[10] = c >> 8, ip[11] = c & 0xff;
    uint8_t* udp = ip + 20;
    const uint16_t sport = static_cast<uint16_t>(20000 + i);
    udp[0] = sport >> 8, udp[1] = sport & 0xff;
    udp[2] = dport >> 8, udp[3] = dport & 0xff;
    udp[4] = 0, udp[5] = total - 20;   // UDP checksum 0: none (IPv4)
  }
  constexpr unsigned kBatch = 64;
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  uint64_t sent = 0;
  unsigned next = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    for (unsigned b = 0; b < kBatch; b++) {
      iov[b] = {frames[next].data(), kLen};
      next = (next + 1) % flows;
      msgs[b] = {};
      msgs[b].msg_hdr.msg_name = &addr;
      msgs[b].msg_hdr.msg_namelen = sizeof(addr);
      msgs[b].msg_hdr.msg_iov = &iov[b];
      msgs[b].msg_hdr.msg_iovlen = 1;
    }
    int n = sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n > 0) sent += static_cast<uint64_t>(n);
  }
  std::cout << "{\"sent\": " << sent << ", \"seconds\": " << seconds << "}\n";
  close(fd);
  return 0;
}

// Socket addresses for listeners and upstream connections: "ADDR:PORT"
// listener specs, and model::IpAddress to and from sockaddr_storage.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "model/snapshot.h"

namespace sluice::proxy {

inline std::pair<std::string, uint16_t> split_host_port(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("listener '" + address + "': expected ADDR:PORT");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto port_text = std::string_view(address).substr(colon + 1);
  auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (r.ec != std::errc() || r.ptr != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    throw std::invalid_argument("listener '" + address + "': invalid port '" + std::string(port_text) + "'");
  }
  return {host, static_cast<uint16_t>(port)};
}

inline socklen_t to_sockaddr(const model::IpAddress& ip, uint32_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (ip.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sin->sin_addr, ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<uint16_t>(port));
  std::memcpy(&sin6->sin6_addr, ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

inline void from_sockaddr(const sockaddr_storage& ss, model::IpAddress& ip, uint32_t& port) {
  ip = model::IpAddress{};
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    ip.family = model::IpAddress::kV4;
    std::memcpy(ip.bytes.data(), &sin->sin_addr, 4);
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ip.family = model::IpAddress::kV6;
    std::memcpy(ip.bytes.data(), &sin6->sin6_addr, 16);
    port = ntohs(sin6->sin6_port);
  }
}


}  // namespace sluice::proxy

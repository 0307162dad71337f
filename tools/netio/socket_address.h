// Socket addresses as the test tools take them on the command line:
// "10.96.0.10:9080", "[fd00:96::10]:9080", or a bare address plus a port.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace sluice::tools {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  uint16_t port() const;
  std::string host() const;        // "10.0.0.1" or "fd00::1" (no brackets)
  std::string to_string() const;   // "10.0.0.1:80" or "[fd00::1]:80"

  // "HOST:PORT" or "[V6]:PORT". Host must be a numeric address.
  static std::optional<SocketAddress> parse_host_port(std::string_view text);
  // A numeric address (v4 or v6, brackets allowed) and a port.
  static std::optional<SocketAddress> from_host(std::string_view host, uint16_t port);
  static SocketAddress from_sockaddr(const sockaddr* sa, socklen_t len);
};

}  // namespace sluice::tools

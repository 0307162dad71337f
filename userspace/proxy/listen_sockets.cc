#include "proxy/listen_sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "proxy/socket_address.h"

namespace sluice::proxy {

namespace {

// The first descriptor passed by socket activation (SD_LISTEN_FDS_START).
constexpr int kListenFdsStart = 3;

bool parse_unsigned(const char* text, unsigned long& out) {
  if (text == nullptr || *text == '\0') return false;
  const char* end = text + std::strlen(text);
  auto r = std::from_chars(text, end, out);
  return r.ec == std::errc() && r.ptr == end;
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  model::IpAddress ia, ib;
  uint32_t pa = 0, pb = 0;
  from_sockaddr(a, ia, pa);
  from_sockaddr(b, ib, pb);
  return pa == pb && ia == ib;
}

}  // namespace

int open_listen_socket(const std::string& address) {
  auto [host, port] = split_host_port(address);
  auto ip = model::IpAddress::parse(host);
  if (!ip) throw std::invalid_argument("listener '" + address + "': invalid address '" + host + "'");
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(*ip, port, ss);
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket for listener " + address);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // One socket per worker in a SO_REUSEPORT group: the kernel spreads
  // connections across workers, and each worker accepts on its own ring.
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
    int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "bind/listen on " + address);
  }
  return fd;
}

std::vector<int> take_inherited_sockets() {
  unsigned long pid = 0, count = 0;
  const bool ours = parse_unsigned(std::getenv("LISTEN_PID"), pid) && pid == static_cast<unsigned long>(getpid()) &&
                    parse_unsigned(std::getenv("LISTEN_FDS"), count);
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  std::vector<int> fds;
  if (!ours) return fds;
  for (unsigned long i = 0; i < count && i < 1024; ++i) {
    const int fd = kListenFdsStart + static_cast<int>(i);
    const int flags = fcntl(fd, F_GETFD);
    if (flags < 0) continue;   // not open: a miscounting parent
    fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    fds.push_back(fd);
  }
  return fds;
}

int claim_inherited_listener(std::vector<int>& inherited, const std::string& address) {
  auto [host, port] = split_host_port(address);
  auto ip = model::IpAddress::parse(host);
  if (!ip) return -1;
  sockaddr_storage want;
  to_sockaddr(*ip, port, want);
  for (auto it = inherited.begin(); it != inherited.end(); ++it) {
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(*it, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    len = sizeof listening;
    if (getsockopt(*it, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage have{};
    len = sizeof have;
    if (getsockname(*it, reinterpret_cast<sockaddr*>(&have), &len) != 0 || !same_address(have, want)) continue;
    const int fd = *it;
    inherited.erase(it);
    return fd;
  }
  return -1;
}

std::string describe_local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
      (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
    return "fd " + std::to_string(fd);
  }
  model::IpAddress ip;
  uint32_t port = 0;
  from_sockaddr(ss, ip, port);
  return ip.is_v4() ? ip.to_string() + ":" + std::to_string(port) : "[" + ip.to_string() + "]:" + std::to_string(port);
}

}  // namespace sluice::proxy

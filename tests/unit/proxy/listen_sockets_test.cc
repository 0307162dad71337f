// Socket activation as sluiced reads it (listen_sockets.h): descriptors 3..
// are taken only when LISTEN_PID names this process, the variables are
// cleared, and a passed socket is placed by its local address.
#include "proxy/listen_sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace sluice::proxy {
namespace {

// A listening socket on 127.0.0.1 (an ephemeral port) moved to descriptor
// `at`, as a socket-activating parent leaves it; returns its "ADDR:PORT".
std::string listen_at(int at) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  EXPECT_EQ(listen(fd, 8), 0);
  if (fd != at) {   // socket() may return `at` itself: the lowest free descriptor
    EXPECT_EQ(dup2(fd, at), at);
    close(fd);
  }
  fcntl(at, F_SETFD, 0);   // as passed: inheritable
  return describe_local_address(at);
}

void set_listen_env(pid_t pid, int count) {
  setenv("LISTEN_PID", std::to_string(pid).c_str(), 1);
  setenv("LISTEN_FDS", std::to_string(count).c_str(), 1);
  setenv("LISTEN_FDNAMES", "l7", 1);
}

TEST(ListenSockets, TakesPassedSocketsForThisProcessAndClearsTheVariables) {
  const std::string address = listen_at(3);
  set_listen_env(getpid(), 1);
  std::vector<int> fds = take_inherited_sockets();
  ASSERT_EQ(fds, std::vector<int>{3});
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDNAMES"), nullptr);
  EXPECT_TRUE(fcntl(3, F_GETFD) & FD_CLOEXEC) << "a child of sluiced must not inherit the listener";
  EXPECT_EQ(claim_inherited_listener(fds, address), 3);
  EXPECT_TRUE(fds.empty());
  close(3);
}

TEST(ListenSockets, IgnoresSocketsPassedToAnotherProcess) {
  listen_at(3);
  set_listen_env(getpid() + 1, 1);   // meant for a parent or a sibling
  EXPECT_TRUE(take_inherited_sockets().empty());
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  close(3);
}

TEST(ListenSockets, PlacesEachSocketByItsAddressNotItsOrder) {
  const std::string first = listen_at(3);
  const std::string second = listen_at(4);
  set_listen_env(getpid(), 2);
  std::vector<int> fds = take_inherited_sockets();
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(claim_inherited_listener(fds, second), 4);
  EXPECT_EQ(claim_inherited_listener(fds, "[::1]" + first.substr(first.rfind(':'))), -1) << "another family";
  EXPECT_EQ(claim_inherited_listener(fds, "127.0.0.2" + first.substr(first.rfind(':'))), -1) << "another address";
  EXPECT_EQ(claim_inherited_listener(fds, first), 3);
  close(3);
  close(4);
}

TEST(ListenSockets, ANonListeningSocketIsNotAListener) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  std::vector<int> fds{fd};
  EXPECT_EQ(claim_inherited_listener(fds, describe_local_address(fd)), -1);
  close(fd);
}

}  // namespace
}  // namespace sluice::proxy

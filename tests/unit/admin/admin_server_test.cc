#include "admin/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace sluice::admin {
namespace {

// Sends one raw HTTP/1.1 request and returns the whole response (server closes).
std::string raw_request(const std::string& address, const std::string& request) {
  auto [host, port] = split_host_port(address);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(SplitHostPort, AcceptsV4V6AndBarePort) {
  EXPECT_EQ(split_host_port("127.0.0.1:15000"), (std::pair<std::string, unsigned short>{"127.0.0.1", 15000}));
  EXPECT_EQ(split_host_port("[::1]:80"), (std::pair<std::string, unsigned short>{"::1", 80}));
  EXPECT_EQ(split_host_port(":9").first, "127.0.0.1");
  EXPECT_THROW(split_host_port("127.0.0.1"), std::invalid_argument);
  EXPECT_THROW(split_host_port("127.0.0.1:99999"), std::invalid_argument);
  EXPECT_THROW(split_host_port("127.0.0.1:http"), std::invalid_argument);
}

TEST(AdminServer, DispatchesByPathWithDecodedQueryAndBody) {
  AdminServer server(AdminListeners{"127.0.0.1:0", "", "a-token-of-16-bytes"});
  AdminRequest seen;
  server.handle("/weights", [&](const AdminRequest& r) {
    seen = r;
    return AdminResponse{200, "application/json", "{\"ok\":true}"};
  });
  server.start();
  std::string resp = raw_request(server.local_address(),
                                 "POST /weights?host=product%20page&x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Authorization: Bearer a-token-of-16-bytes\r\n"
                                 "Content-Length: 4\r\nConnection: close\r\n\r\nv1=9");
  server.stop();
  EXPECT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp;
  EXPECT_NE(resp.find("{\"ok\":true}"), std::string::npos);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.path, "/weights");
  EXPECT_EQ(seen.query["host"], "product page");
  EXPECT_EQ(seen.body, "v1=9");
}

TEST(AdminServer, UnknownPathIs404ListingEndpoints) {
  AdminServer server("127.0.0.1:0");
  server.handle("/ready", [](const AdminRequest&) { return AdminResponse{}; });
  server.start();
  std::string resp = raw_request(server.local_address(), "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  server.stop();
  EXPECT_NE(resp.find("HTTP/1.1 404"), std::string::npos) << resp;
  EXPECT_NE(resp.find("/ready"), std::string::npos);
}

TEST(AdminServer, HandlerExceptionBecomes500) {
  AdminServer server("127.0.0.1:0");
  server.handle("/boom", [](const AdminRequest&) -> AdminResponse { throw std::runtime_error("kaput"); });
  server.start();
  std::string resp = raw_request(server.local_address(), "GET /boom HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  server.stop();
  EXPECT_NE(resp.find("HTTP/1.1 500"), std::string::npos);
  EXPECT_NE(resp.find("kaput"), std::string::npos);
}

TEST(AdminServer, BindFailureNamesTheAddress) {
  AdminServer first("127.0.0.1:0");
  std::string taken = first.local_address();
  try {
    AdminServer second(taken);
    FAIL() << "second bind on " << taken << " succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice::admin

#include "admin/admin_client.h"

namespace sluice::admin {
namespace {

TEST(AdminClient, RoundTripsGetAndPost) {
  AdminServer server(AdminListeners{"127.0.0.1:0", "", "a-token-of-16-bytes"});
  server.handle("/status", [](const AdminRequest& r) {
    return AdminResponse{200, "application/json", "{\"method\":\"" + r.method + "\",\"body\":" +
                                                      (r.body.empty() ? std::string("null") : r.body) + "}"};
  });
  server.start();
  auto got = admin_get(server.local_address(), "/status");
  auto posted = admin_request(AdminTarget{server.local_address(), "", "a-token-of-16-bytes"}, "POST", "/status",
                              "{\"a\":1}");
  auto missing = admin_get(server.local_address(), "/nope");
  server.stop();
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, "{\"method\":\"GET\",\"body\":null}");
  EXPECT_EQ(posted.body, "{\"method\":\"POST\",\"body\":{\"a\":1}}");
  EXPECT_EQ(missing.status, 404u);
}

TEST(AdminClient, UnreachableAgentErrorNamesTheAddress) {
  std::string address;
  {
    AdminServer server("127.0.0.1:0");   // learn a free port, then close it
    address = server.local_address();
  }
  try {
    admin_get(address, "/status");
    FAIL() << "connected to a closed port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(address), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice::admin

namespace sluice::admin {
namespace {

TEST(AdminServer, AnIdleConnectionDoesNotBlockOtherClients) {
  AdminServer server("127.0.0.1:0");
  server.handle("/ready", [](const AdminRequest&) { return AdminResponse{200, "text/plain", "LIVE\n"}; });
  server.start();
  auto [host, port] = split_host_port(server.local_address());
  // A client that connects and sends nothing (a stuck scraper, a keep-alive pool).
  int idle = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  ASSERT_EQ(::connect(idle, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  // Another client is still answered, and told the connection closes.
  std::string resp = raw_request(server.local_address(), "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_NE(resp.find("HTTP/1.1 200"), std::string::npos) << resp;
  EXPECT_NE(resp.find("Connection: close"), std::string::npos) << resp;
  ::close(idle);
  server.stop();
}

}  // namespace
}  // namespace sluice::admin

namespace sluice::admin {
namespace {

TEST(AdminServer, PostWithBodyInTheSameSegmentIsAnsweredAtOnce) {
  AdminServer server(AdminListeners{"127.0.0.1:0", "", "a-token-of-16-bytes"});
  server.handle("/weights", [](const AdminRequest& r) { return AdminResponse{200, "application/json", r.body}; });
  server.start();
  auto reply = admin_request(AdminTarget{server.local_address(), "", "a-token-of-16-bytes"}, "POST", "/weights",
                             "{\"host\":\"productpage\"}");
  server.stop();
  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(reply.body, "{\"host\":\"productpage\"}");
}

}  // namespace
}  // namespace sluice::admin

#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

namespace sluice::admin {
namespace {

using namespace std::chrono_literals;

int connect_tcp(const std::string& address) {
  auto [host, port] = split_host_port(address);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  return fd;
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

struct SocketDir {
  SocketDir() {
    char tmpl[] = "/tmp/sluice-admin-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~SocketDir() { std::filesystem::remove_all(dir); }
  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string dir;
};

AdminResponse echo(const AdminRequest& r) { return AdminResponse{200, "text/plain", r.method + " " + r.body}; }

TEST(HostHeader, OnlyIpLiteralsAndLocalhostPass) {
  for (const char* ok : {"127.0.0.1", "127.0.0.1:15000", "10.1.2.3:80", "[::1]", "[::1]:15000", "localhost",
                         "LOCALHOST:15000"}) {
    EXPECT_TRUE(host_header_allowed(ok)) << ok;
  }
  for (const char* bad : {"", "evil.example", "evil.example:15000", "127.0.0.1.nip.io", "localhost.evil.example",
                          "127.0.0.1:", "127.0.0.1:80x", "[::1", "::1", "0x7f.1", "127.1", "localhost:123456"}) {
    EXPECT_FALSE(host_header_allowed(bad)) << bad;
  }
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("Bearer abc", "Bearer abc"));
  EXPECT_FALSE(constant_time_equal("Bearer abc", "Bearer abd"));
  EXPECT_FALSE(constant_time_equal("Bearer abc", "Bearer ab"));
  EXPECT_FALSE(constant_time_equal("", "x"));
}

TEST(AdminServer, TcpRefusesPostWithoutTokenButServesGet) {
  AdminServer server("127.0.0.1:0");
  server.handle("/weights", echo);
  server.start();
  std::string post = raw_request(server.local_address(),
                                 "POST /weights HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}");
  std::string get = raw_request(server.local_address(), "GET /weights HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  server.stop();
  EXPECT_EQ(status_line(post), "HTTP/1.1 403 Forbidden") << post;
  EXPECT_NE(post.find("admin socket"), std::string::npos) << post;
  EXPECT_EQ(status_line(get), "HTTP/1.1 200 OK") << get;
}

TEST(AdminServer, TcpPostNeedsTheRightBearerToken) {
  AdminServer server(AdminListeners{"127.0.0.1:0", "", "s3cret-token-0123456789"});
  server.handle("/weights", echo);
  server.start();
  auto post = [&](const std::string& auth) {
    return status_line(raw_request(server.local_address(), "POST /weights HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth +
                                                               "Content-Length: 2\r\n\r\n{}"));
  };
  const std::string none = post("");
  const std::string wrong = post("Authorization: Bearer s3cret-token-0123456788\r\n");
  const std::string right = post("Authorization: Bearer s3cret-token-0123456789\r\n");
  server.stop();
  EXPECT_EQ(none, "HTTP/1.1 401 Unauthorized");
  EXPECT_EQ(wrong, "HTTP/1.1 401 Unauthorized");
  EXPECT_EQ(right, "HTTP/1.1 200 OK");
}

TEST(AdminServer, ForeignHostHeaderIsRefused) {
  AdminServer server("127.0.0.1:0");
  server.handle("/ready", echo);
  server.start();
  std::string rebound = raw_request(server.local_address(), "GET /ready HTTP/1.1\r\nHost: attacker.example:15000\r\n\r\n");
  std::string missing = raw_request(server.local_address(), "GET /ready HTTP/1.0\r\n\r\n");
  server.stop();
  EXPECT_EQ(status_line(rebound), "HTTP/1.1 403 Forbidden") << rebound;
  EXPECT_EQ(status_line(missing), "HTTP/1.0 403 Forbidden") << missing;
}

TEST(AdminServer, UnixSocketIsOwnerOnlyAndServesPost) {
  SocketDir dir;
  const std::string path = dir.path("run/admin.sock");   // "run" does not exist yet
  AdminServer server(AdminListeners{"", path, ""});
  server.handle("/weights", echo);
  server.start();
  struct stat sock {}, parent {};
  ASSERT_EQ(::stat(path.c_str(), &sock), 0);
  ASSERT_EQ(::stat(dir.path("run").c_str(), &parent), 0);
  auto reply = admin_request(AdminTarget{"", path, ""}, "POST", "/weights", "{}");
  server.stop();
  EXPECT_TRUE(S_ISSOCK(sock.st_mode));
  EXPECT_EQ(sock.st_mode & 0777, 0600u);
  EXPECT_EQ(parent.st_mode & 0777, 0700u);
  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(reply.body, "POST {}");
  EXPECT_FALSE(std::filesystem::exists(path)) << "stop() leaves the socket file behind";
}

TEST(AdminServer, StaleSocketIsReplacedLiveOneIsAnError) {
  SocketDir dir;
  const std::string path = dir.path("admin.sock");
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);   // what a SIGKILLed agent leaves: a socket nobody listens on
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ::close(fd);
  }
  AdminServer first(AdminListeners{"", path, ""});
  first.start();
  try {
    AdminServer second(AdminListeners{"", path, ""});
    FAIL() << "a second server took over a live socket";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  first.stop();
}

// The whole request has one deadline: a client that sends a byte every
// 400 ms (each read well within any per-read timeout) is still cut off.
TEST(AdminServer, RequestDeadlineIsAbsolute) {
  AdminServer server("127.0.0.1:0");
  server.handle("/ready", echo);
  server.start();
  int fd = connect_tcp(server.local_address());
  const std::string head = "GET /ready HTTP/1.1\r\nX-Slow: ";
  ASSERT_EQ(::write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - start < kRequestDeadline + 3s) {
    std::this_thread::sleep_for(400ms);
    closed = ::send(fd, "a", 1, MSG_NOSIGNAL) < 0;
    pollfd p{fd, POLLIN, 0};
    char c;
    if (!closed && ::poll(&p, 1, 0) == 1 && ::read(fd, &c, 1) <= 0) closed = true;
  }
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  server.stop();
  EXPECT_TRUE(closed) << "a trickling client kept its connection past the deadline";
  EXPECT_LT(took, kRequestDeadline + 2s);
}

// 64 clients that send a request head byte by byte, slower than any read
// timeout, must not keep /ready from answering: the bound is 1 s, far below
// the 5 s request deadline that would free their slots.
TEST(AdminServer, SlowClientsDoNotStarveReady) {
  AdminServer server("127.0.0.1:0");
  server.handle("/ready", echo);
  server.start();
  std::vector<int> slow;
  for (int i = 0; i < 64; ++i) {
    int fd = connect_tcp(server.local_address());
    ASSERT_EQ(::write(fd, "G", 1), 1);
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  std::string resp = raw_request(server.local_address(), "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const auto took = std::chrono::steady_clock::now() - start;
  for (int fd : slow) ::close(fd);
  server.stop();
  EXPECT_EQ(status_line(resp), "HTTP/1.1 200 OK");
  EXPECT_LT(took, 1s);
}

TEST(AdminToken, FileMustBePrivateAndLongEnough) {
  SocketDir dir;
  auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    const std::string p = dir.path(name);
    FILE* f = std::fopen(p.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    ::chmod(p.c_str(), mode);
    return p;
  };
  EXPECT_EQ(read_token_file(write("ok", "0123456789abcdef\n", 0600)), "0123456789abcdef");
  EXPECT_THROW(read_token_file(write("open", "0123456789abcdef\n", 0644)), std::runtime_error);
  EXPECT_THROW(read_token_file(write("short", "abc\n", 0600)), std::runtime_error);
  EXPECT_THROW(read_token_file(dir.path("missing")), std::runtime_error);
}

}  // namespace
}  // namespace sluice::admin

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
  AdminServer server("127.0.0.1:0");
  AdminRequest seen;
  server.handle("/weights", [&](const AdminRequest& r) {
    seen = r;
    return AdminResponse{200, "application/json", "{\"ok\":true}"};
  });
  server.start();
  std::string resp = raw_request(server.local_address(),
                                 "POST /weights?host=product%20page&x=1 HTTP/1.1\r\nHost: a\r\n"
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
  std::string resp = raw_request(server.local_address(), "GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  server.stop();
  EXPECT_NE(resp.find("HTTP/1.1 404"), std::string::npos) << resp;
  EXPECT_NE(resp.find("/ready"), std::string::npos);
}

TEST(AdminServer, HandlerExceptionBecomes500) {
  AdminServer server("127.0.0.1:0");
  server.handle("/boom", [](const AdminRequest&) -> AdminResponse { throw std::runtime_error("kaput"); });
  server.start();
  std::string resp = raw_request(server.local_address(), "GET /boom HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
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
  AdminServer server("127.0.0.1:0");
  server.handle("/status", [](const AdminRequest& r) {
    return AdminResponse{200, "application/json", "{\"method\":\"" + r.method + "\",\"body\":" +
                                                      (r.body.empty() ? std::string("null") : r.body) + "}"};
  });
  server.start();
  auto got = admin_get(server.local_address(), "/status");
  auto posted = admin_post(server.local_address(), "/status", "{\"a\":1}");
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
  std::string resp = raw_request(server.local_address(), "GET /ready HTTP/1.1\r\nHost: a\r\n\r\n");
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
  AdminServer server("127.0.0.1:0");
  server.handle("/weights", [](const AdminRequest& r) { return AdminResponse{200, "application/json", r.body}; });
  server.start();
  auto reply = admin_post(server.local_address(), "/weights", "{\"host\":\"productpage\"}");
  server.stop();
  EXPECT_EQ(reply.status, 200u);
  EXPECT_EQ(reply.body, "{\"host\":\"productpage\"}");
}

}  // namespace
}  // namespace sluice::admin

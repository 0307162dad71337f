// Upstream pools are per (subset cluster, backend), as Envoy's are: two
// subsets or two services that share a backend address keep separate
// connections, settings and limits; a reload updates a cluster's settings in
// place and retires the pools of clusters and backends that left; the pool
// of a request is found without allocating once warm.
#include "proxy/upstream_pools.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>

#include "common/allocation_counter.h"
#include "proxy/metrics.h"

namespace sluice::proxy {
namespace {

using Admission = UpstreamPools::Admission;

struct PoolSettings {
  uint32_t max_connections = model::ConnectionPool::kUnlimited;
  uint32_t max_pending = model::ConnectionPool::kUnlimited;
  uint32_t max_requests_per_connection = 0;
  uint32_t max_retries = model::ConnectionPool::kUnlimited;
};

// A service on port 9080 whose endpoints are `addresses`; subset 0 is the
// whole service, then one subset per entry of `subsets`, each selecting
// every endpoint, with its own connectionPool settings.
void add_service(model::Snapshot& snapshot, std::string host, std::vector<std::string> addresses,
                 std::vector<std::pair<std::string, PoolSettings>> subsets) {
  model::Service& service = snapshot.services.emplace_back();
  service.host = host;
  service.ports.push_back(model::ServicePort{9080, model::Protocol::HTTP, "http", 0});
  for (const auto& a : addresses) service.endpoints.emplace_back().address = *model::IpAddress::parse(a);
  subsets.insert(subsets.begin(), {"", PoolSettings{}});
  for (const auto& [name, settings] : subsets) {
    model::Subset& subset = service.subsets.emplace_back();
    subset.name = name;
    for (uint32_t e = 0; e < addresses.size(); ++e) subset.endpoints.push_back(e);
    model::ConnectionPool& pool = subset.policy_by_port[9080].connection_pool;
    pool.max_connections = settings.max_connections;
    pool.http1_max_pending_requests = settings.max_pending;
    pool.max_requests_per_connection = settings.max_requests_per_connection;
    pool.max_retries = settings.max_retries;
  }
  snapshot.service_by_host[host] = static_cast<uint32_t>(snapshot.services.size() - 1);
}

constexpr PoolSettings kOnePerConnection{1, 1, 1};
constexpr PoolSettings kReused{4, 100, 100};

std::shared_ptr<model::Snapshot> two_subsets_on_one_backend() {
  auto snapshot = std::make_shared<model::Snapshot>();
  add_service(*snapshot, "productpage", {"10.200.11.2"}, {{"a", kOnePerConnection}, {"b", kReused}});
  return snapshot;
}

class UpstreamPoolsTest : public testing::Test {
 protected:
  UpstreamPools pools{[this](const model::IpAddress& address, uint32_t port) {
    return counters.counter_for(address, port);
  }};
  struct Counters {
    std::map<std::pair<model::IpAddress, uint32_t>, std::unique_ptr<std::atomic<int64_t>>> slots;
    std::atomic<int64_t>* counter_for(const model::IpAddress& address, uint32_t port) {
      auto& slot = slots[{address, port}];
      if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
      return slot.get();
    }
  } counters;
};

const model::Destination kSubsetA{0, 1, 9080};
const model::Destination kSubsetB{0, 2, 9080};

TEST_F(UpstreamPoolsTest, TwoSubsetsSharingABackendGetTheirOwnPoolsAndSettings) {
  auto snapshot = two_subsets_on_one_backend();
  pools.apply_snapshot(*snapshot);
  const uint32_t a = pools.pool_for(*snapshot, kSubsetA, 0);
  const uint32_t b = pools.pool_for(*snapshot, kSubsetB, 0);
  EXPECT_NE(a, b);
  EXPECT_EQ(pools.pool(a).backend, pools.pool(b).backend);   // one backend: one least-request counter
  EXPECT_EQ(pools.cluster_of(a).subset, "a");
  EXPECT_EQ(pools.cluster_of(b).subset, "b");
  EXPECT_TRUE(pools.exhausted(a, 1));
  EXPECT_FALSE(pools.exhausted(b, 1));
  EXPECT_TRUE(pools.exhausted(b, 100));
  EXPECT_EQ(pools.pool_for(*snapshot, kSubsetA, 0), a);   // the same cluster and backend: the same pool
}

TEST_F(UpstreamPoolsTest, TwoServicesSharingABackendGetTheirOwnPools) {
  auto snapshot = two_subsets_on_one_backend();
  add_service(*snapshot, "reviews", {"10.200.11.2"}, {{"a", kReused}});
  pools.apply_snapshot(*snapshot);
  const uint32_t productpage = pools.pool_for(*snapshot, kSubsetA, 0);
  const uint32_t reviews = pools.pool_for(*snapshot, model::Destination{1, 1, 9080}, 0);
  EXPECT_NE(productpage, reviews);
  EXPECT_EQ(pools.pool(productpage).backend, pools.pool(reviews).backend);
  EXPECT_EQ(pools.cluster_of(reviews).service, "reviews");
}

TEST_F(UpstreamPoolsTest, LimitsCountOnlyTheClustersOwnConnectionsAndQueue) {
  auto snapshot = two_subsets_on_one_backend();
  pools.apply_snapshot(*snapshot);
  const uint32_t a = pools.pool_for(*snapshot, kSubsetA, 0);
  const uint32_t b = pools.pool_for(*snapshot, kSubsetB, 0);
  EXPECT_EQ(pools.admit(a, false), Admission::Open);
  pools.add_connections(a, 1);   // a's one connection, busy
  EXPECT_EQ(pools.admit(a, false), Admission::Queue);
  pools.add_pending(a, 1);
  EXPECT_EQ(pools.admit(a, false), Admission::Overflow);
  EXPECT_FALSE(pools.may_open(a));
  // b's maxConnections 4 is b's alone: a's connection and queue do not count.
  EXPECT_EQ(pools.admit(b, false), Admission::Open);
  pools.add_connections(b, 4);
  EXPECT_EQ(pools.admit(b, false), Admission::Queue);
}

TEST_F(UpstreamPoolsTest, AnIdleConnectionIsReusedUnlessAFreshOneIsAsked) {
  auto snapshot = two_subsets_on_one_backend();
  pools.apply_snapshot(*snapshot);
  const uint32_t b = pools.pool_for(*snapshot, kSubsetB, 0);
  pools.add_connections(b, 1);
  pools.pool(b).idle_head = 7;
  EXPECT_EQ(pools.admit(b, false), Admission::Reuse);
  EXPECT_EQ(pools.admit(b, true), Admission::Open);
}

// A grpc port, or an http port with h2UpgradePolicy UPGRADE, is an HTTP/2
// cluster: a connection with stream room takes the place of an idle one.
TEST_F(UpstreamPoolsTest, Http2ClustersReuseAConnectionWithStreamRoom) {
  auto snapshot = two_subsets_on_one_backend();
  snapshot->services[0].subsets[1].policy_by_port[9080].connection_pool.h2_upgrade =
      model::ConnectionPool::H2Upgrade::Upgrade;
  pools.apply_snapshot(*snapshot);
  const uint32_t a = pools.pool_for(*snapshot, kSubsetA, 0);
  const uint32_t b = pools.pool_for(*snapshot, kSubsetB, 0);
  EXPECT_TRUE(pools.cluster_of(a).http2);
  EXPECT_FALSE(pools.cluster_of(b).http2);   // DEFAULT keeps HTTP/1.1
  pools.add_connections(a, 1);
  EXPECT_EQ(pools.admit(a, false, true), Admission::Reuse);
  EXPECT_EQ(pools.admit(a, false, false), Admission::Queue);   // maxConnections 1, full: queued, not refused

  auto grpc = std::make_shared<model::Snapshot>(*snapshot);
  grpc->services[0].ports[0].protocol = model::Protocol::GRPC;
  grpc->services[0].subsets[1].policy_by_port[9080].connection_pool.h2_upgrade =
      model::ConnectionPool::H2Upgrade::DoNotUpgrade;
  pools.apply_snapshot(*grpc);
  EXPECT_TRUE(pools.cluster_of(a).http2);   // a grpc port speaks HTTP/2 whatever the policy says
  EXPECT_TRUE(pools.cluster_of(b).http2);
}

TEST_F(UpstreamPoolsTest, ActiveRequestLimitOverflowsBeforeAnyConnectionChoice) {
  auto snapshot = two_subsets_on_one_backend();
  snapshot->services[0].subsets[1].policy_by_port[9080].connection_pool.http2_max_requests = 2;
  pools.apply_snapshot(*snapshot);
  const uint32_t a = pools.pool_for(*snapshot, kSubsetA, 0);
  pools.add_active(a, 2);
  pools.pool(a).idle_head = 3;
  EXPECT_EQ(pools.admit(a, false), Admission::Overflow);
  EXPECT_EQ(pools.admit(pools.pool_for(*snapshot, kSubsetB, 0), false), Admission::Open);
}

TEST_F(UpstreamPoolsTest, AReloadAppliesNewSettingsToTheSamePool) {
  auto first = two_subsets_on_one_backend();
  pools.apply_snapshot(*first);
  const uint32_t a = pools.pool_for(*first, kSubsetA, 0);
  pools.add_connections(a, 1);
  auto second = std::make_shared<model::Snapshot>(*first);
  second->services[0].subsets[1].policy_by_port[9080].connection_pool.max_requests_per_connection = 5;
  second->services[0].subsets[1].policy_by_port[9080].connection_pool.max_connections = 3;
  const std::vector<uint32_t> revisit = pools.apply_snapshot(*second);
  EXPECT_EQ(revisit, std::vector<uint32_t>{a});   // b's settings did not change
  EXPECT_EQ(pools.pool_for(*second, kSubsetA, 0), a);
  EXPECT_FALSE(pools.pool(a).retired);
  EXPECT_FALSE(pools.exhausted(a, 4));
  EXPECT_TRUE(pools.exhausted(a, 5));
  EXPECT_TRUE(pools.may_open(a));   // 1 of 3 connections
}

TEST_F(UpstreamPoolsTest, ASubsetThatLeftRetiresItsPoolWhichIsFreedOnceEmpty) {
  auto first = two_subsets_on_one_backend();
  pools.apply_snapshot(*first);
  const uint32_t a = pools.pool_for(*first, kSubsetA, 0);
  const uint32_t b = pools.pool_for(*first, kSubsetB, 0);
  pools.add_connections(a, 1);   // an upstream connection still open
  auto second = std::make_shared<model::Snapshot>();
  add_service(*second, "productpage", {"10.200.11.2"}, {{"b", kReused}});
  const std::vector<uint32_t> revisit = pools.apply_snapshot(*second);
  EXPECT_EQ(revisit, std::vector<uint32_t>{a});
  EXPECT_TRUE(pools.pool(a).retired);
  EXPECT_FALSE(pools.pool(b).retired);
  EXPECT_EQ(pools.pool_for(*second, model::Destination{0, 1, 9080}, 0), b);   // b is subset 1 now
  EXPECT_EQ(pools.pool_count(), 2u);
  pools.add_connections(a, -1);   // the worker closed it
  pools.release_if_unused(a);
  EXPECT_EQ(pools.pool_count(), 1u);
}

TEST_F(UpstreamPoolsTest, AnEmptyPoolOfAGoneServiceIsFreedByTheReload) {
  auto first = two_subsets_on_one_backend();
  pools.apply_snapshot(*first);
  pools.pool_for(*first, kSubsetA, 0);
  pools.pool_for(*first, kSubsetB, 0);
  model::Snapshot empty;
  EXPECT_TRUE(pools.apply_snapshot(empty).empty());   // nothing held: freed, nothing to revisit
  EXPECT_EQ(pools.pool_count(), 0u);
}

TEST_F(UpstreamPoolsTest, ABackendThatLeftTheSubsetRetiresOnlyItsPool) {
  auto first = std::make_shared<model::Snapshot>();
  add_service(*first, "productpage", {"10.200.11.2", "10.200.12.2"}, {{"a", kReused}});
  pools.apply_snapshot(*first);
  const uint32_t kept = pools.pool_for(*first, kSubsetA, 0);
  const uint32_t gone = pools.pool_for(*first, kSubsetA, 1);
  pools.add_connections(kept, 1);
  pools.add_connections(gone, 1);
  auto second = std::make_shared<model::Snapshot>();
  add_service(*second, "productpage", {"10.200.11.2"}, {{"a", kReused}});
  EXPECT_EQ(pools.apply_snapshot(*second), std::vector<uint32_t>{gone});
  EXPECT_TRUE(pools.pool(gone).retired);
  EXPECT_FALSE(pools.pool(kept).retired);
  // Back in a later snapshot: the same pool serves again.
  EXPECT_EQ(pools.apply_snapshot(*first), std::vector<uint32_t>{gone});
  EXPECT_FALSE(pools.pool(gone).retired);
  EXPECT_EQ(pools.pool_for(*first, kSubsetA, 1), gone);
}

// useClientProtocol: the upstream protocol is the client's. HTTP/2 streams
// and HTTP/1.1 requests to one subset and backend get pools of their own
// (HTTP/2 and HTTP/1.1 connections), counted against one set of circuit-
// breaker figures; a reload that drops the setting gives both back the
// port's protocol, and new requests of either kind share one pool again.
TEST_F(UpstreamPoolsTest, UseClientProtocolKeepsTheClientsProtocolUpstream) {
  auto snapshot = two_subsets_on_one_backend();
  snapshot->services[0].subsets[1].policy_by_port[9080].connection_pool.use_client_protocol = true;
  pools.apply_snapshot(*snapshot);
  const uint32_t h1 = pools.pool_for(*snapshot, kSubsetA, 0, false);
  const uint32_t h2 = pools.pool_for(*snapshot, kSubsetA, 0, true);
  EXPECT_NE(h1, h2);
  EXPECT_FALSE(pools.cluster_of(h1).http2);
  EXPECT_TRUE(pools.cluster_of(h2).http2);
  EXPECT_EQ(pools.cluster_of(h1).load, pools.cluster_of(h2).load);   // one cluster's figures
  EXPECT_EQ(pools.pool_for(*snapshot, kSubsetA, 0, true), h2);
  // Subset b has no useClientProtocol: an HTTP port speaks HTTP/1.1, to both.
  const uint32_t b1 = pools.pool_for(*snapshot, kSubsetB, 0, false);
  EXPECT_EQ(pools.pool_for(*snapshot, kSubsetB, 0, true), b1);
  EXPECT_FALSE(pools.cluster_of(b1).http2);
  // The port declared HTTP2: without useClientProtocol both speak HTTP/2,
  // with it an HTTP/1.1 client's request stays HTTP/1.1.
  auto next = two_subsets_on_one_backend();
  next->services[0].ports[0].protocol = model::Protocol::HTTP2;
  next->services[0].subsets[2].policy_by_port[9080].connection_pool.use_client_protocol = true;
  const size_t pools_before = pools.pool_count();
  pools.apply_snapshot(*next);
  EXPECT_TRUE(pools.cluster_of(h1).http2);
  // Subset a's useClientProtocol is off now: its HTTP/2 twin, holding no
  // connection, is gone with its pool.
  EXPECT_FALSE(pools.pool(h2).in_use);
  EXPECT_EQ(pools.pool_count(), pools_before - 1);
  EXPECT_EQ(pools.pool_for(*next, kSubsetA, 0, false), pools.pool_for(*next, kSubsetA, 0, true));
  EXPECT_FALSE(pools.cluster_of(pools.pool_for(*next, kSubsetB, 0, false)).http2);
  EXPECT_TRUE(pools.cluster_of(pools.pool_for(*next, kSubsetB, 0, true)).http2);
}

TEST_F(UpstreamPoolsTest, ARequestResolvedOnAnOlderSnapshotFindsItsClusterByName) {
  auto first = two_subsets_on_one_backend();
  pools.apply_snapshot(*first);
  // The reload puts another service first: productpage's indices change.
  auto second = std::make_shared<model::Snapshot>();
  add_service(*second, "details", {"10.200.15.2"}, {});
  add_service(*second, "productpage", {"10.200.11.2"}, {{"a", kOnePerConnection}, {"b", kReused}});
  pools.apply_snapshot(*second);
  const uint32_t current = pools.pool_for(*second, model::Destination{1, 1, 9080}, 0);
  EXPECT_EQ(pools.pool_for(*first, kSubsetA, 0), current);
  EXPECT_FALSE(pools.pool(current).retired);
  // A cluster only the older snapshot has gets a retired pool: its
  // connection is not kept after the request.
  auto third = std::make_shared<model::Snapshot>();
  add_service(*third, "productpage", {"10.200.11.2"}, {{"b", kReused}});
  pools.apply_snapshot(*third);
  const uint32_t old_a = pools.pool_for(*first, kSubsetA, 0);
  EXPECT_TRUE(pools.pool(old_a).retired);
  EXPECT_TRUE(pools.exhausted(old_a, 1));   // with the settings it had
}

TEST_F(UpstreamPoolsTest, FindingAWarmPoolAllocatesNothing) {
  auto snapshot = two_subsets_on_one_backend();
  pools.apply_snapshot(*snapshot);
  pools.pool_for(*snapshot, kSubsetA, 0);
  pools.pool_for(*snapshot, kSubsetB, 0);
  uint64_t opened = 0;
  const uint64_t allocations = test_support::allocations_during([&] {
    for (int i = 0; i < 1000; ++i) {
      const uint32_t p = pools.pool_for(*snapshot, i % 2 == 0 ? kSubsetA : kSubsetB, 0);
      opened += pools.admit(p, false) == Admission::Open;
    }
  });
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(opened, 1000u);
  // The counter works: the first resolution after a reload does allocate.
  auto next = std::make_shared<model::Snapshot>(*snapshot);
  pools.apply_snapshot(*next);
  EXPECT_GE(test_support::allocations_during([&] { pools.pool_for(*next, kSubsetA, 0); }), 1u);
}

TEST_F(UpstreamPoolsTest, MaxRetriesBoundsTheRetriesOutstandingPerCluster) {
  auto snapshot = std::make_shared<model::Snapshot>();
  PoolSettings one_retry;
  one_retry.max_retries = 1;
  add_service(*snapshot, "productpage", {"10.200.11.2", "10.200.12.2"}, {{"a", one_retry}, {"b", PoolSettings{}}});
  pools.apply_snapshot(*snapshot);
  const uint32_t a0 = pools.pool_for(*snapshot, kSubsetA, 0), a1 = pools.pool_for(*snapshot, kSubsetA, 1);
  const uint32_t b0 = pools.pool_for(*snapshot, kSubsetB, 0);

  ASSERT_TRUE(pools.retry_budget_allows(a0, kNone));
  const uint32_t held = pools.hold_retry(a0);
  // The limit is the cluster's, whichever backend failed.
  EXPECT_FALSE(pools.retry_budget_allows(a0, kNone));
  EXPECT_FALSE(pools.retry_budget_allows(a1, kNone));
  // The request holding that retry may retry again: its next retry replaces it.
  EXPECT_TRUE(pools.retry_budget_allows(a1, held));
  // Another cluster on the same backend has its own (unlimited) budget.
  EXPECT_TRUE(pools.retry_budget_allows(b0, kNone));
  pools.release_retry(held);
  EXPECT_TRUE(pools.retry_budget_allows(a1, kNone));
  pools.release_retry(kNone);   // a request that held none: nothing to release
  EXPECT_TRUE(pools.retry_budget_allows(a0, kNone));
}

// Envoy's circuit breakers count over the whole cluster: every backend of
// it and every worker (two UpstreamPools sharing one ClusterLoad lookup).
TEST(UpstreamPoolsCircuitBreakers, CountOverEveryBackendAndWorkerOfTheCluster) {
  std::map<std::string, std::shared_ptr<UpstreamPools::ClusterLoad>> loads;
  std::map<std::pair<model::IpAddress, uint32_t>, std::unique_ptr<std::atomic<int64_t>>> counters;
  auto counter_for = [&](const model::IpAddress& address, uint32_t port) {
    auto& slot = counters[{address, port}];
    if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
    return slot.get();
  };
  auto load_for = [&](const std::string& identity) {
    auto& load = loads[identity];
    if (!load) load = std::make_shared<UpstreamPools::ClusterLoad>();
    return load;
  };
  UpstreamPools worker1(counter_for, load_for), worker2(counter_for, load_for);
  auto snapshot = std::make_shared<model::Snapshot>();
  PoolSettings limits;
  limits.max_connections = 2;
  limits.max_pending = 1;
  add_service(*snapshot, "productpage", {"10.200.11.2", "10.200.12.2"}, {{"a", limits}});
  worker1.apply_snapshot(*snapshot);
  worker2.apply_snapshot(*snapshot);
  const uint32_t w1_host1 = worker1.pool_for(*snapshot, kSubsetA, 0);
  const uint32_t w1_host2 = worker1.pool_for(*snapshot, kSubsetA, 1);
  const uint32_t w2_host1 = worker2.pool_for(*snapshot, kSubsetA, 0);

  worker1.add_connections(w1_host1, 1);
  worker1.add_connections(w1_host2, 1);   // the cluster's 2 connections, on two hosts
  EXPECT_EQ(worker1.admit(w1_host1, false), Admission::Queue);
  EXPECT_EQ(worker1.admit(w1_host2, false), Admission::Queue);
  // Worker 2's pool has no connection: it may open one over the limit, as
  // Envoy allows, so its queue never waits on connections of worker 1.
  EXPECT_EQ(worker2.admit(w2_host1, false), Admission::Open);
  worker2.add_connections(w2_host1, 1);
  EXPECT_FALSE(worker2.may_open(w2_host1));
  // One queued request in the cluster is the limit, whichever worker holds it.
  worker2.add_pending(w2_host1, 1);
  EXPECT_EQ(worker1.admit(w1_host1, false), Admission::Overflow);
  worker2.add_pending(w2_host1, -1);
  EXPECT_EQ(worker1.admit(w1_host1, false), Admission::Queue);
  // Connections closing anywhere make room everywhere.
  worker1.add_connections(w1_host2, -1);
  worker2.add_connections(w2_host1, -1);
  EXPECT_EQ(worker1.admit(w1_host1, false), Admission::Open);
}

TEST(UpstreamPoolsCircuitBreakers, IdentitiesParseBackAndRenderAsGauges) {
  const std::string identity("productpage\0v1\09080", 19);
  const auto id = UpstreamPools::parse_identity(identity);
  EXPECT_EQ(id.service, "productpage");
  EXPECT_EQ(id.subset, "v1");
  EXPECT_EQ(id.port, 9080u);
  EXPECT_EQ(UpstreamPools::parse_identity(std::string("reviews\0\09080", 14)).subset, "");

  const std::vector<ClusterGauges> clusters = {{"productpage", "v1", 9080, 3, 1, 2, 0}};
  const std::string text = render_cluster_gauges(clusters);
  EXPECT_NE(text.find("# TYPE sluice_cluster_pending_requests gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_cluster_active_requests{destination_service=\"productpage\",destination_version=\"v1\","
                      "destination_port=\"9080\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_cluster_connections{destination_service=\"productpage\",destination_version=\"v1\","
                      "destination_port=\"9080\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_TRUE(render_cluster_gauges({}).empty());
}

// An upstream socket as the worker sets it before connecting: TCP_NODELAY
// always; SO_KEEPALIVE and the keepalive timers only with tcpKeepalive, each
// field given replacing the node's default, read back with getsockopt.
TEST(UpstreamSocketOptions, TcpKeepaliveSetsWhatItGivesAndLeavesTheRestToTheNode) {
  auto option = [](int fd, int level, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    EXPECT_EQ(getsockopt(fd, level, name, &value, &len), 0);
    return value;
  };
  auto node_default = [](const char* sysctl) {
    int value = -1;
    std::ifstream(std::string("/proc/sys/net/ipv4/") + sysctl) >> value;
    return value;
  };
  model::ConnectionPool settings;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(set_upstream_socket_options(fd, settings), 0);
  EXPECT_NE(option(fd, IPPROTO_TCP, TCP_NODELAY), 0);
  EXPECT_EQ(option(fd, SOL_SOCKET, SO_KEEPALIVE), 0);   // none without tcpKeepalive
  ::close(fd);

  settings.tcp_keepalive = model::TcpKeepalive{4, std::chrono::seconds(7), std::chrono::seconds(3)};
  fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(set_upstream_socket_options(fd, settings), 0);
  EXPECT_NE(option(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPINTVL), 3);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
  ::close(fd);

  settings.tcp_keepalive = model::TcpKeepalive{0, std::chrono::seconds(60), model::Duration(0)};
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(set_upstream_socket_options(fd, settings), 0);
  EXPECT_NE(option(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPIDLE), 60);
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPINTVL), node_default("tcp_keepalive_intvl"));
  EXPECT_EQ(option(fd, IPPROTO_TCP, TCP_KEEPCNT), node_default("tcp_keepalive_probes"));
  ::close(fd);
}

}  // namespace
}  // namespace sluice::proxy

// TableWriter against the in-memory tables: what a Snapshot becomes in the
// datapath maps, and what stays stable from one snapshot to the next.
#include "bpfmaps/table_writer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <map>
#include <set>

#include "bpf/productpage_snapshot.h"
#include "bpfmaps/fake_datapath_tables.h"
#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {
namespace {

using testing::ip;
using testing::productpage_snapshot;
using testing::ProductpageOptions;

sluice_service_key service_key(const std::string& vip, uint16_t port, uint8_t proto, uint32_t generation) {
  sluice_service_key key{};
  const model::IpAddress a = ip(vip);
  std::memcpy(key.vip, a.bytes.data(), a.is_v4() ? 4 : 16);
  key.port = htons(port);
  key.proto = proto;
  key.family = a.is_v4() ? SLUICE_FAMILY_V4 : SLUICE_FAMILY_V6;
  key.generation = static_cast<uint8_t>(generation);
  return key;
}

class TableWriterTest : public ::testing::Test {
 protected:
  std::optional<sluice_service> service(const std::string& vip, uint16_t port, uint8_t proto = IPPROTO_TCP) {
    sluice_service value{};
    if (!tables_.lookup(MapRole::Services, as_bytes_of(service_key(vip, port, proto, tables_.load_generation() & 1)),
                        as_writable_bytes_of(value)))
      return std::nullopt;
    return value;
  }
  sluice_subset subset(uint32_t index) { return tables_.get<sluice_subset>(MapRole::Subsets, index); }
  std::set<std::string> member_addresses(const sluice_subset& s) {
    std::set<std::string> out;
    for (uint32_t i = 0; i < s.member_count; ++i) {
      const auto m = tables_.get<sluice_member>(MapRole::Members, s.member_first + i);
      out.insert(writer_.backends().at(m.backend_id).to_string());
    }
    return out;
  }

  FakeDatapathTables tables_;
  TableWriter writer_{tables_, TableWriterOptions{std::chrono::milliseconds(0)}};
};

TEST_F(TableWriterTest, RouteWeightsBecomeCumulativeBoundsOnTheRouteScale) {
  writer_.apply(productpage_snapshot({.v1_weight = 70, .v2_weight = 30}));
  const auto svc = service("10.96.0.10", 9081);
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc->route_count, 2);
  EXPECT_EQ(svc->route_bound[0], 70u * SLUICE_ROUTE_SCALE / 100);
  EXPECT_EQ(svc->route_bound[1], static_cast<uint32_t>(SLUICE_ROUTE_SCALE));
}

TEST_F(TableWriterTest, ZeroWeightRouteGetsAnEmptyRange) {
  writer_.apply(productpage_snapshot({.v1_weight = 0, .v2_weight = 100}));
  const auto svc = service("10.96.0.10", 9081);
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc->route_bound[0], 0u);
  EXPECT_EQ(svc->route_bound[1], static_cast<uint32_t>(SLUICE_ROUTE_SCALE));
}

TEST_F(TableWriterTest, EachFamilysSubsetHoldsOnlyItsOwnFamilysEndpoints) {
  writer_.apply(productpage_snapshot());
  const auto v4 = service("10.96.0.10", 9081);
  const auto v6 = service("fd00:96::10", 9081);
  ASSERT_TRUE(v4 && v6);
  EXPECT_EQ(member_addresses(subset(v4->route_subset[0])),
            (std::set<std::string>{"10.200.11.2:9081/tcp", "10.200.12.2:9081/tcp"}));
  EXPECT_EQ(member_addresses(subset(v6->route_subset[1])),
            (std::set<std::string>{"[fd00:200:13::2]:9081/tcp", "[fd00:200:14::2]:9081/tcp"}));
}

TEST_F(TableWriterTest, RoundRobinScheduleRepeatsEachBackendByItsWeight) {
  auto snap = productpage_snapshot();
  snap.services[0].endpoints[0].weight = 3;   // productpage-v1-a (IPv4)
  writer_.apply(snap);
  const sluice_subset v1 = subset(service("10.96.0.10", 9081)->route_subset[0]);
  ASSERT_EQ(v1.schedule_len, 4u);
  std::map<uint32_t, int> count;
  std::vector<uint32_t> order;
  for (uint32_t i = 0; i < v1.schedule_len; ++i) {
    order.push_back(tables_.get<uint32_t>(MapRole::Schedule, v1.schedule_first + i));
    count[order.back()]++;
  }
  const uint32_t a = *writer_.backend_id({ip("10.200.11.2"), 9081, IPPROTO_TCP});
  EXPECT_EQ(count[a], 3);
  // Smooth, not bursty: the weight-1 backend is not last after three a's in a row.
  EXPECT_NE(order, (std::vector<uint32_t>{a, a, a, order[3]}));
  EXPECT_EQ(v1.policy, SLUICE_POLICY_ROUND_ROBIN);
}

TEST_F(TableWriterTest, BackendIdsAreStableAcrossSnapshotsAndRemovalsRetireThem) {
  writer_.apply(productpage_snapshot({.v1_weight = 70, .v2_weight = 30}));
  const BackendIdentity v1b{ip("10.200.12.2"), 9081, IPPROTO_TCP};
  const uint32_t id = *writer_.backend_id(v1b);
  EXPECT_NE(id, 0u);   // 0 means "none"

  writer_.apply(productpage_snapshot({.v1_weight = 10, .v2_weight = 90, .version = 2}));
  EXPECT_EQ(*writer_.backend_id(v1b), id);

  const auto result = writer_.apply(productpage_snapshot({.include_v1b = false, .version = 3}));
  EXPECT_GT(result.retired_backends, 0u);
  EXPECT_FALSE(writer_.backend_live(id));
  EXPECT_EQ(tables_.get<sluice_backend>(MapRole::Backends, id).flags & SLUICE_BACKEND_F_LIVE, 0);

  writer_.apply(productpage_snapshot({.version = 4}));
  EXPECT_EQ(*writer_.backend_id(v1b), id);
  EXPECT_TRUE(writer_.backend_live(id));
}

TEST_F(TableWriterTest, EachApplyWritesTheInactiveHalfThenFlipsOnce) {
  const auto first = writer_.apply(productpage_snapshot());
  const auto second = writer_.apply(productpage_snapshot({.version = 2}));
  const auto third = writer_.apply(productpage_snapshot({.version = 3}));
  // The word counts flips (a reader outside the datapath sees two flips as a
  // change); its low bit is the half, which alternates.
  EXPECT_EQ(tables_.generation_history(), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(first.generation, 1u);
  EXPECT_EQ(second.generation, 0u);
  EXPECT_EQ(third.generation, 1u);
  const uint32_t half = tables_.max_entries(MapRole::Subsets) / 2;
  EXPECT_GE(service("10.96.0.10", 9081)->route_subset[0], half);   // half 1
}

TEST_F(TableWriterTest, KeysLeftInTheHalfBeingWrittenAreRemoved) {
  writer_.apply(productpage_snapshot());
  writer_.apply(productpage_snapshot({.version = 2}));
  auto snap = productpage_snapshot({.version = 3});
  snap.services[0].ports.pop_back();   // 9082/udp leaves
  snap.services[0].routes.pop_back();
  writer_.apply(snap);
  EXPECT_FALSE(service("10.96.0.10", 9082, IPPROTO_UDP));
  EXPECT_TRUE(service("10.96.0.10", 9081));
  size_t keys_in_active_half = 0;
  for (const Bytes& raw : tables_.keys(MapRole::Services)) {
    sluice_service_key key{};
    std::memcpy(&key, raw.data(), sizeof(key));
    if (key.generation == (tables_.load_generation() & 1)) ++keys_in_active_half;
  }
  EXPECT_EQ(keys_in_active_half, 4u);   // 9080 and 9081 on two VIPs
}

// docs/bpf-datapath.md, "Client views".
TEST_F(TableWriterTest, AClientViewGetsEntriesOfItsOwnAndItsAddressesTheirNamespace) {
  ProductpageOptions options{.v1_weight = 70, .v2_weight = 30};
  options.client_view = testing::ClientViewOptions{{"10.201.0.2", "fd00:201::2"}, 0, 100};
  const auto result = writer_.apply(productpage_snapshot(options));
  EXPECT_EQ(result.client_views, 4u);   // 9081/tcp, 9082/udp on two VIPs; 9080 is L7
  EXPECT_EQ(result.client_addresses, 2u);
  const uint32_t half = tables_.load_generation() & 1;

  const auto defaults = service("10.96.0.10", 9081);
  ASSERT_TRUE(defaults);
  EXPECT_TRUE(defaults->flags & SLUICE_SERVICE_F_VIEWS);
  EXPECT_FALSE(service("10.96.0.10", 9080)->flags & SLUICE_SERVICE_F_VIEWS);   // L7: the proxy applies views

  sluice_service_key key = service_key("10.96.0.10", 9081, IPPROTO_TCP, half);
  key.client_namespace = 1;
  sluice_service view{};
  ASSERT_TRUE(tables_.lookup(MapRole::Services, as_bytes_of(key), as_writable_bytes_of(view)));
  EXPECT_EQ(view.flags, 0u);
  EXPECT_EQ(view.stat_id, defaults->stat_id);   // one service, one set of service counters
  ASSERT_EQ(view.route_count, 2u);
  EXPECT_EQ(view.route_bound[0], 0u);           // v1 weight 0
  // The view's v2 is its DestinationRule's own subset, counted apart.
  const sluice_subset view_v2 = subset(view.route_subset[1]);
  EXPECT_NE(view.route_subset[1], defaults->route_subset[1]);
  EXPECT_NE(view_v2.stat_id, subset(defaults->route_subset[1]).stat_id);
  EXPECT_EQ(writer_.subset_slots().at(view_v2.stat_id).subset, "v2 (team-a/productpage)");
  // team-a's v1 is productpage-v1-a alone.
  EXPECT_EQ(member_addresses(subset(view.route_subset[0])), (std::set<std::string>{"10.200.11.2:9081/tcp"}));

  std::map<std::string, uint32_t> clients;
  for (const Bytes& raw : tables_.keys(MapRole::ClientNamespaces)) {
    sluice_client_key client{};
    std::memcpy(&client, raw.data(), sizeof(client));
    uint32_t id = 0;
    ASSERT_TRUE(tables_.lookup(MapRole::ClientNamespaces, raw, as_writable_bytes_of(id)));
    model::IpAddress a;
    a.family = client.family == SLUICE_FAMILY_V4 ? model::IpAddress::kV4 : model::IpAddress::kV6;
    std::memcpy(a.bytes.data(), client.addr, a.is_v4() ? 4 : 16);
    clients[a.to_string() + (client.generation == half ? "" : " (other half)")] = id;
  }
  EXPECT_EQ(clients, (std::map<std::string, uint32_t>{{"10.201.0.2", 1}, {"fd00:201::2", 1}}));

  // A view that routes like the default needs no entry, and its clients
  // leave the map at the next apply of that half.
  options.client_view->v1_weight = 70;
  options.client_view->v2_weight = 30;
  options.version = 2;
  auto same = productpage_snapshot(options);
  for (auto& routes : same.services[0].views[0].routes)
    for (auto& d : routes.l4) d.destination.subset -= 3;   // the default view's subsets
  EXPECT_EQ(writer_.apply(same).client_views, 0u);
  EXPECT_FALSE(service("10.96.0.10", 9081)->flags & SLUICE_SERVICE_F_VIEWS);
  options.version = 3;
  options.client_view.reset();
  writer_.apply(productpage_snapshot(options));
  EXPECT_TRUE(tables_.keys(MapRole::ClientNamespaces).empty());
}

TEST_F(TableWriterTest, ARestartedWriterRecoversBackendIdsAndCounterSlots) {
  writer_.apply(productpage_snapshot());
  const BackendIdentity v2a{ip("10.200.13.2"), 9081, IPPROTO_TCP};
  const uint32_t id = *writer_.backend_id(v2a);
  const uint32_t service_slot = service("10.96.0.10", 9081)->stat_id;
  const uint32_t subset_slot = subset(service("10.96.0.10", 9081)->route_subset[1]).stat_id;

  TableWriter restarted(tables_, TableWriterOptions{std::chrono::milliseconds(0)});
  restarted.recover();
  EXPECT_EQ(*restarted.backend_id(v2a), id);
  restarted.apply(productpage_snapshot({.version = 2}));
  EXPECT_EQ(service("10.96.0.10", 9081)->stat_id, service_slot);
  EXPECT_EQ(subset(service("10.96.0.10", 9081)->route_subset[1]).stat_id, subset_slot);
  EXPECT_EQ(*restarted.backend_id(v2a), id);
}

TEST_F(TableWriterTest, L7PortIsFlaggedForThePassAndListedForSkLookup) {
  writer_.apply(productpage_snapshot());
  const auto http = service("10.96.0.10", 9080);
  ASSERT_TRUE(http);
  EXPECT_EQ(http->flags & SLUICE_SERVICE_F_L7, SLUICE_SERVICE_F_L7);
  EXPECT_EQ(http->route_count, 0);
  const auto keys = tables_.keys(MapRole::L7Services);
  ASSERT_EQ(keys.size(), 2u);   // IPv4 and IPv6 VIP
  // Each VIP goes to the listener of its family (sk_assign refuses a socket
  // of the other family).
  for (const auto& key : keys) {
    sluice_l7_key k{};
    std::memcpy(&k, key.data(), sizeof k);
    uint32_t slot = 99;
    ASSERT_TRUE(tables_.lookup(MapRole::L7Services, key, as_writable_bytes_of(slot)));
    EXPECT_EQ(slot, k.family == SLUICE_FAMILY_V6 ? uint32_t{SLUICE_L7_LISTENER_V6} : uint32_t{SLUICE_L7_LISTENER_V4});
  }
}

TEST_F(TableWriterTest, MaglevTableMapsEverySlotToASubsetBackend) {
  writer_.apply(productpage_snapshot({.algorithm = model::LbAlgorithm::Maglev, .maglev_table_size = 251}));
  const sluice_subset v2 = subset(service("10.96.0.10", 9081)->route_subset[1]);
  ASSERT_EQ(v2.maglev_len, 251u);
  std::map<uint32_t, int> slots;
  for (uint32_t i = 0; i < v2.maglev_len; ++i) slots[tables_.get<uint32_t>(MapRole::Maglev, v2.maglev_first + i)]++;
  ASSERT_EQ(slots.size(), 2u);
  for (const auto& [id, n] : slots) {
    EXPECT_TRUE(writer_.backends().at(id).to_string().starts_with("10.200.1"));
    EXPECT_NEAR(n, 125, 2);   // equal weights: Maglev balances to within a slot or so
  }
}

TEST_F(TableWriterTest, MoreRouteDestinationsThanTheKernelTakesAreRefusedWithTheServicePort) {
  auto snap = productpage_snapshot();
  auto& l4 = snap.services[0].routes[1].l4;
  while (l4.size() <= SLUICE_MAX_ROUTES) l4.push_back(l4.front());
  try {
    writer_.apply(snap);
    FAIL() << "apply accepted " << l4.size() << " routes";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("service productpage port 9081"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(tables_.generation_history().empty());   // nothing was published
}

}  // namespace
}  // namespace sluice::bpfmaps

namespace sluice::bpfmaps {
namespace {

// The L7 proxy publishes active requests per backend into the shared load map
// by backend id, so the endpoints of an L7 port need ids too, though XDP
// builds no subsets for that port.
TEST(TableWriterL7, EndpointsOfAnL7PortGetLiveBackendIds) {
  FakeDatapathTables tables;
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  writer.apply(testing::productpage_snapshot());
  auto addr = *model::IpAddress::parse("10.200.11.2");
  auto l7 = writer.backend_id({addr, 9080, IPPROTO_TCP});
  auto l4 = writer.backend_id({addr, 9081, IPPROTO_TCP});
  ASSERT_TRUE(l7.has_value());
  ASSERT_TRUE(l4.has_value());
  EXPECT_NE(*l7, *l4);
  EXPECT_TRUE(writer.backend_live(*l7));
}

}  // namespace
}  // namespace sluice::bpfmaps

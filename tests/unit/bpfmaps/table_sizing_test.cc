// Runtime sizing of the XDP tables: what the sluiced flags make of every map,
// and how a snapshot that does not fit is refused (before anything is
// written, naming each short table and the flag that sizes it) while the
// serving table half keeps serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <set>
#include <string>

#include "bpf/productpage_snapshot.h"
#include "bpfmaps/fake_datapath_tables.h"
#include "bpfmaps/table_writer.h"
#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {
namespace {

using testing::ip;
using testing::productpage_snapshot;
using testing::productpage_copies;

// The productpage scenario per table half: 3 ports (9080 L7, 9081 TCP, 9082
// UDP) x 2 VIPs = 6 service ports; v1 and v2 of 9081 and 9082 per family = 8
// subsets; 4 workloads x 2 families x 3 ports = 24 backend ids.
constexpr uint32_t kProductpageServicePorts = 6;
constexpr uint32_t kProductpageSubsets = 8;
constexpr uint32_t kProductpageBackends = 24;

std::optional<sluice_service> find_service(const FakeDatapathTables& tables, const std::string& vip, uint16_t port) {
  sluice_service_key key{};
  const model::IpAddress a = ip(vip);
  std::memcpy(key.vip, a.bytes.data(), 4);
  key.port = htons(port);
  key.proto = IPPROTO_TCP;
  key.family = SLUICE_FAMILY_V4;
  key.generation = static_cast<uint8_t>(tables.load_generation() & 1);
  sluice_service value{};
  if (!tables.lookup(MapRole::Services, as_bytes_of(key), as_writable_bytes_of(value))) return std::nullopt;
  return value;
}

TableCapacityError refusal_of(TableWriter& writer, const model::Snapshot& snapshot) {
  try {
    writer.apply(snapshot);
  } catch (const TableCapacityError& e) {
    return e;
  }
  ADD_FAILURE() << "a snapshot larger than the tables was applied";
  return TableCapacityError({});
}

TEST(DatapathSizing, EachFlagCountsUsableEntriesAndHalvedTablesHoldTwoHalves) {
  DatapathSizing sizing;
  sizing.max_services = 100;
  sizing.max_subsets = 300;
  sizing.max_backends = 1000;
  sizing.maglev_slots = 5000;
  sizing.conntrack_flows = 7000;
  EXPECT_EQ(sized_max_entries(MapRole::Services, sizing), 200u);
  EXPECT_EQ(sized_max_entries(MapRole::Vips, sizing), 200u);
  EXPECT_EQ(sized_max_entries(MapRole::L7Services, sizing), 100u);
  EXPECT_EQ(sized_max_entries(MapRole::Subsets, sizing), 600u);
  EXPECT_EQ(sized_max_entries(MapRole::Members, sizing), 2000u);
  EXPECT_EQ(sized_max_entries(MapRole::Maglev, sizing), 10000u);
  EXPECT_EQ(sized_max_entries(MapRole::Conntrack, sizing), 7000u);
  EXPECT_EQ(sized_max_entries(MapRole::ReverseNat, sizing), 7000u);
  // Index 0 is "none" / "unattributed": one more entry than usable ids and slots.
  EXPECT_EQ(sized_max_entries(MapRole::Backends, sizing), 1001u);
  EXPECT_EQ(sized_max_entries(MapRole::BackendLoad, sizing), 1001u);
  EXPECT_EQ(sized_max_entries(MapRole::BackendStats, sizing), 1001u);
  EXPECT_EQ(sized_max_entries(MapRole::ServiceStats, sizing), 101u);
  EXPECT_EQ(sized_max_entries(MapRole::SubsetStats, sizing), 301u);
  EXPECT_EQ(sized_max_entries(MapRole::RrCursor, sizing), 301u);
  EXPECT_EQ(sizing_flag(MapRole::Members), "--max-backends");
  EXPECT_EQ(sizing_flag(MapRole::Ctrl), "");
}

TEST(DatapathSizing, ZeroOrHugeSizesAreRejectedNamingTheFlag) {
  DatapathSizing zero;
  zero.max_subsets = 0;
  EXPECT_NE(zero.check().find("--max-subsets 0"), std::string::npos) << zero.check();
  DatapathSizing huge;
  huge.max_backends = 1u << 30;
  EXPECT_NE(huge.check().find("--max-backends"), std::string::npos) << huge.check();
  EXPECT_EQ(DatapathSizing{}.check(), "");
}

TEST(TableSizing, ASnapshotThatFitsExactlyIsApplied) {
  DatapathSizing sizing;
  sizing.max_services = kProductpageServicePorts;
  sizing.max_subsets = kProductpageSubsets;
  sizing.max_backends = kProductpageBackends;
  FakeDatapathTables tables(sizing);
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  const auto result = writer.apply(productpage_snapshot());
  EXPECT_EQ(result.service_ports, kProductpageServicePorts);
  EXPECT_EQ(result.subsets, kProductpageSubsets);
  EXPECT_EQ(result.live_backends, kProductpageBackends);
  EXPECT_TRUE(find_service(tables, "10.96.0.10", 9081));
}

TEST(TableSizing, OneServicePortTooManyIsRefusedNamingTheMapTheNeedAndTheFlag) {
  DatapathSizing sizing;
  sizing.max_services = kProductpageServicePorts - 1;
  FakeDatapathTables tables(sizing);
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  const TableCapacityError e = refusal_of(writer, productpage_snapshot());
  ASSERT_EQ(e.shortfalls().size(), 1u) << e.what();
  EXPECT_EQ(e.shortfalls()[0].role, MapRole::Services);
  EXPECT_EQ(e.shortfalls()[0].needed, kProductpageServicePorts);
  EXPECT_EQ(e.shortfalls()[0].available, kProductpageServicePorts - 1);
  const std::string text = e.what();
  EXPECT_NE(text.find("sluice_services needs 6 service ports per table half, has 5 (raise sluiced --max-services)"),
            std::string::npos)
      << text;
  EXPECT_TRUE(tables.generation_history().empty());    // nothing published
  EXPECT_TRUE(tables.keys(MapRole::Services).empty()); // nothing written
  EXPECT_FALSE(writer.backend_id({ip("10.200.11.2"), 9081, IPPROTO_TCP}));   // no id handed out
}

TEST(TableSizing, EveryShortTableIsReportedInOneRefusal) {
  DatapathSizing sizing;
  sizing.max_subsets = kProductpageSubsets - 1;
  sizing.max_backends = kProductpageBackends - 1;
  FakeDatapathTables tables(sizing);
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  const std::string text = refusal_of(writer, productpage_snapshot()).what();
  EXPECT_NE(text.find("sluice_subsets needs 8 subsets per table half, has 7 (raise sluiced --max-subsets)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_backends needs 24 backend ids"), std::string::npos) << text;
  EXPECT_NE(text.find("--max-backends"), std::string::npos) << text;
}

TEST(TableSizing, ARefusedSnapshotLeavesTheServingHalfAndItsBackendsUntouched) {
  DatapathSizing sizing;
  sizing.max_services = 3 * kProductpageServicePorts;
  FakeDatapathTables tables(sizing);
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  writer.apply(productpage_copies(3));
  const auto serving = find_service(tables, "10.97.0.2", 9081);
  ASSERT_TRUE(serving);
  const uint32_t generation = tables.load_generation();
  const auto live_before = writer.backends().size();

  const TableCapacityError e = refusal_of(writer, productpage_copies(4, 2));
  ASSERT_FALSE(e.shortfalls().empty());
  EXPECT_EQ(e.shortfalls()[0].role, MapRole::Services);
  EXPECT_EQ(e.shortfalls()[0].needed, 4 * kProductpageServicePorts);

  EXPECT_EQ(tables.load_generation(), generation);
  EXPECT_EQ(tables.generation_history().size(), 1u);
  const auto still = find_service(tables, "10.97.0.2", 9081);
  ASSERT_TRUE(still);
  EXPECT_EQ(std::memcmp(&*still, &*serving, sizeof(sluice_service)), 0);
  EXPECT_FALSE(find_service(tables, "10.97.0.3", 9081));
  EXPECT_EQ(writer.backends().size(), live_before);

  // The tables still take the next snapshot that fits.
  writer.apply(productpage_copies(2, 3));
  EXPECT_TRUE(find_service(tables, "10.97.0.1", 9081));
  EXPECT_FALSE(find_service(tables, "10.97.0.2", 9081));
}

// Backend ids of the serving snapshot stay taken until the flip, so a
// snapshot that replaces every backend needs room for both sets.
TEST(TableSizing, BackendIdsCountTheServingSnapshotsUntilTheFlip) {
  DatapathSizing sizing;
  sizing.max_backends = kProductpageBackends;
  FakeDatapathTables tables(sizing);
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  writer.apply(productpage_snapshot());
  auto moved = productpage_snapshot({.version = 2});
  for (auto& e : moved.services[0].endpoints) e.address.bytes[1] ^= 1;   // 10.201.x / fd00:201:x: all new
  const TableCapacityError e = refusal_of(writer, moved);
  ASSERT_EQ(e.shortfalls().size(), 3u) << e.what();   // sluice_backends, _load, _stats share the size
  EXPECT_EQ(e.shortfalls()[0].needed, 2 * kProductpageBackends);
  EXPECT_EQ(e.shortfalls()[0].available, kProductpageBackends);
}

// Once ids run out, ids of backends that left (and are in neither the
// serving nor the new snapshot) are handed out again.
TEST(TableSizing, RetiredBackendIdsAreReusedWhenIdsRunOut) {
  DatapathSizing sizing;
  sizing.max_backends = kProductpageBackends;
  FakeDatapathTables tables(sizing);
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  writer.apply(productpage_snapshot());
  writer.apply(productpage_snapshot({.include_v1b = false, .version = 2}));   // 6 ids retire
  const uint32_t retired = *writer.backend_id({ip("10.200.12.2"), 9081, IPPROTO_TCP});
  EXPECT_FALSE(writer.backend_live(retired));

  auto replaced = productpage_snapshot({.include_v1b = false, .version = 3});
  model::Endpoint newcomer = replaced.services[0].endpoints[0];
  newcomer.name = "productpage-v1-c";
  newcomer.address = ip("10.200.15.2");
  replaced.services[0].endpoints.push_back(newcomer);
  replaced.services[0].subsets[1].endpoints.push_back(static_cast<uint32_t>(replaced.services[0].endpoints.size() - 1));
  writer.apply(replaced);
  const auto id = writer.backend_id({ip("10.200.15.2"), 9081, IPPROTO_TCP});
  ASSERT_TRUE(id);
  EXPECT_GE(*id, 1u);
  EXPECT_LE(*id, kProductpageBackends);
  EXPECT_TRUE(writer.backend_live(*id));
  const auto entry = tables.get<sluice_backend>(MapRole::Backends, *id);
  EXPECT_EQ(std::memcmp(entry.addr, ip("10.200.15.2").bytes.data(), 4), 0);
  EXPECT_EQ(entry.flags & SLUICE_BACKEND_F_LIVE, SLUICE_BACKEND_F_LIVE);
}

// productpage under another name (its VIPs and endpoints unchanged).
model::Snapshot renamed_productpage(const std::string& host, uint64_t version) {
  auto snap = productpage_snapshot({.version = version});
  snap.services[0].host = snap.services[0].name = host;
  snap.services[0].hosts = {host};
  snap.service_by_host = {{host, 0}};
  return snap;
}

// Counter slots are per name (service|port/proto). Once they are all used,
// names that left both the serving and the new snapshot give theirs up, so
// renames do not exhaust a full-sized table; the slot's counts start over.
TEST(TableSizing, CounterSlotsOfNamesThatLeftAreReusedWithTheirCountsZeroed) {
  DatapathSizing sizing;
  sizing.max_services = kProductpageServicePorts;   // 6 service slots: two sets of productpage's 3 names
  sizing.max_subsets = 2 * kProductpageSubsets;
  FakeDatapathTables tables(sizing);
  TableWriter writer(tables, TableWriterOptions{std::chrono::milliseconds(0)});
  writer.apply(renamed_productpage("first", 1));
  const uint32_t first_slot = find_service(tables, "10.96.0.10", 9081)->stat_id;
  Bytes counts(2 * sizeof(sluice_counters), 0x01);   // two CPUs of non-zero counts
  tables.update(MapRole::ServiceStats, as_bytes_of(first_slot), counts);
  writer.apply(renamed_productpage("second", 2));   // "first" still serving until this flip

  writer.apply(renamed_productpage("third", 3));    // needs "first"'s slots back
  std::set<uint32_t> slots;
  for (uint16_t port : {9080, 9081}) slots.insert(find_service(tables, "10.96.0.10", port)->stat_id);
  EXPECT_TRUE(slots.count(first_slot)) << "a slot of \"first\" was handed to \"third\"";
  const Bytes after = tables.lookup_per_cpu(MapRole::ServiceStats, as_bytes_of(first_slot));
  EXPECT_EQ(after, Bytes(counts.size(), 0));
  EXPECT_EQ(writer.service_slots().at(first_slot).service, "third");
}

}  // namespace
}  // namespace sluice::bpfmaps

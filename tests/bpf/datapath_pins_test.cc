// What BpfDatapath finds pinned and what it makes of it. Sizing: every map
// gets the size the sizing flags ask for, the program passes the verifier at
// those sizes and steers through entries past the compile-time defaults, and
// pins left by a run with other sizes are replaced (a layout change), never
// re-used at the wrong size. Links: a pinned XDP link whose interface was
// deleted is replaced, not a reason to fail.
#include <bpf/bpf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <memory>

#include "bpf/packet_builder.h"
#include "bpf/productpage_snapshot.h"
#include "bpf/xdp_steer_fixture.h"
#include "bpfmaps/bpf_datapath.h"
#include "bpfmaps/table_writer.h"
#include "common/privilege.h"

namespace sluice::testing {
namespace {

using bpfmaps::MapRole;

uint32_t pinned_max_entries(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return 0;
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  return info.max_entries;
}

class DatapathPinsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_REQUIRE_ROOT();
    SLUICE_REQUIRE(ensure_bpffs(), "bpffs at /sys/fs/bpf");
    options_.pin_dir = fmt::format("/sys/fs/bpf/slc-bpf-sizing-{}", getpid());
    options_.conntrack_flows = 4096;
    options_.skip_fib = true;
  }
  void TearDown() override {
    datapath_.reset();
    bpfmaps::BpfDatapath cleanup(options_);   // same sizes: re-uses, then removes every pin
    try {
      cleanup.load();
      cleanup.unpin_all();
    } catch (const std::exception&) {
    }
  }
  bpfmaps::BpfDatapath& load(const bpfmaps::DatapathOptions& options) {
    datapath_ = std::make_unique<bpfmaps::BpfDatapath>(options);
    datapath_->load();
    return *datapath_;
  }
  int verdict_of(const PacketSpec& spec) { return run_xdp(datapath_->xdp_program_fd(), build_packet(spec)).verdict; }

  bpfmaps::DatapathOptions options_;
  std::unique_ptr<bpfmaps::BpfDatapath> datapath_;
};

TEST_F(DatapathPinsTest, EveryPinnedMapHasTheSizeTheFlagsAskFor) {
  options_.max_services = 20000;
  options_.max_subsets = 40000;
  options_.max_backends = 200000;
  options_.maglev_slots = 65537;
  load(options_);
  for (size_t i = 0; i < static_cast<size_t>(MapRole::kCount); ++i) {
    const auto role = static_cast<MapRole>(i);
    const std::string path = options_.pin_dir + "/" + std::string(bpfmaps::map_name(role));
    EXPECT_EQ(pinned_max_entries(path), bpfmaps::sized_max_entries(role, options_.sizing())) << path;
    EXPECT_EQ(datapath_->max_entries(role), bpfmaps::sized_max_entries(role, options_.sizing())) << path;
  }
}

// 5,000 productpages: 30,000 service ports, 40,000 subsets and 120,000
// backend ids per half, all past the compile-time defaults (16384, 32768,
// 65536). The last service's VIP is steered like the first's.
TEST_F(DatapathPinsTest, ServicesPastTheCompileTimeDefaultsAreSteered) {
  constexpr uint32_t kServices = 5000;
  options_.max_services = 6 * kServices;
  options_.max_subsets = 8 * kServices;
  options_.max_backends = 24 * kServices;
  load(options_);
  bpfmaps::TableWriter writer(*datapath_, bpfmaps::TableWriterOptions{std::chrono::milliseconds(0)});
  const auto result = writer.apply(productpage_copies(kServices));
  EXPECT_EQ(result.service_ports, 6 * kServices);
  EXPECT_EQ(result.live_backends, 24 * kServices);

  for (const char* vip : {"10.97.0.0", "10.97.19.135"}) {   // services 0 and 4999
    PacketSpec syn;
    syn.dst = vip;
    EXPECT_EQ(verdict_of(syn), XDP_TX) << vip;
  }
  PacketSpec last_v6;
  last_v6.src = "fd00:200:1::2";
  last_v6.dst = fmt::format("fd00:97::{:x}", kServices);
  EXPECT_EQ(verdict_of(last_v6), XDP_TX);
  // One service more does not fit: refused, and the tables keep steering.
  EXPECT_THROW(writer.apply(productpage_copies(kServices + 1, 2)), bpfmaps::TableCapacityError);
  PacketSpec again;
  again.dst = "10.97.19.135";
  again.sport = 40001;
  EXPECT_EQ(verdict_of(again), XDP_TX);
}

TEST_F(DatapathPinsTest, SameSizesReuseThePinnedMapsAndTheirContents) {
  load(options_);
  bpfmaps::TableWriter(*datapath_, bpfmaps::TableWriterOptions{std::chrono::milliseconds(0)})
      .apply(productpage_snapshot());
  load(options_);
  EXPECT_TRUE(datapath_->reused_pinned_maps());
  EXPECT_TRUE(datapath_->replaced_pins().empty());
  EXPECT_EQ(verdict_of(PacketSpec{}), XDP_TX);   // the previous run's tables still steer
}

TEST_F(DatapathPinsTest, OtherSizesReplaceThePinnedMapsInsteadOfReusingThem) {
  load(options_);
  bpfmaps::TableWriter(*datapath_, bpfmaps::TableWriterOptions{std::chrono::milliseconds(0)})
      .apply(productpage_snapshot());
  auto bigger = options_;
  bigger.max_backends = 2 * options_.max_backends;
  load(bigger);
  const auto& replaced = datapath_->replaced_pins();
  for (const char* name : {"sluice_backends", "sluice_conntrack", "sluice_services", "sluice_ctrl"})   // the whole object
    EXPECT_NE(std::find(replaced.begin(), replaced.end(), options_.pin_dir + "/" + name), replaced.end()) << name;
  EXPECT_EQ(pinned_max_entries(options_.pin_dir + "/sluice_backends"), bigger.max_backends + 1);
  // New, empty maps: the old tables are gone, so the VIP is not a service yet.
  EXPECT_EQ(verdict_of(PacketSpec{}), XDP_PASS);
  bpfmaps::TableWriter writer(*datapath_, bpfmaps::TableWriterOptions{std::chrono::milliseconds(0)});
  writer.recover();
  EXPECT_TRUE(writer.backends().empty());
  writer.apply(productpage_snapshot());
  EXPECT_EQ(verdict_of(PacketSpec{}), XDP_TX);
  options_ = bigger;   // TearDown removes the pins at these sizes
}

// The L7 proxy finds the id of each backend it counts requests for through
// the pinned map, new backends included. (It used to scan the map per
// backend: at 10,000 services that never finished; this test's 10,080
// backends would run into the test timeout.)
TEST_F(DatapathPinsTest, TheProxysBackendLookupFindsEveryIdTheWriterGave) {
  load(options_);
  bpfmaps::TableWriter writer(*datapath_, bpfmaps::TableWriterOptions{std::chrono::milliseconds(0)});
  writer.apply(productpage_snapshot());
  bpfmaps::BackendLoadTable table(options_.pin_dir);
  const bpfmaps::BackendIdentity first{ip("10.200.11.2"), 9081, IPPROTO_TCP};
  EXPECT_EQ(table.find_backend(first.address, first.port, first.proto), writer.backend_id(first));

  writer.apply(productpage_copies(420, 2));   // 420 x 24 = 10,080 backends, all new
  size_t found = 0;
  for (const auto& [id, backend] : writer.backends())
    if (writer.backend_live(id) && table.find_backend(backend.address, backend.port, backend.proto) == id) ++found;
  EXPECT_EQ(found, writer.backends().size() - 24);   // the first snapshot's 24 retired, still found by id
  EXPECT_FALSE(table.find_backend(ip("10.1.2.3"), 80, IPPROTO_TCP));
}

// A veth pair of this test's own (root namespace, names with the pid).
class TestVeth {
 public:
  TestVeth() : name_(fmt::format("slcsv{}", getpid() % 100000)), peer_(name_ + "p") { create(); }
  ~TestVeth() { std::system(fmt::format("ip link del {} 2>/dev/null", name_).c_str()); }
  bool create() {
    return std::system(fmt::format("ip link add {} type veth peer name {} && ip link set {} up", name_, peer_,
                                   name_).c_str()) == 0;
  }
  bool remove() { return std::system(fmt::format("ip link del {}", name_).c_str()) == 0; }
  const std::string& name() const { return name_; }

 private:
  std::string name_, peer_;
};

TEST_F(DatapathPinsTest, APinnedXdpLinkWhoseInterfaceWasDeletedIsReplaced) {
  TestVeth veth;
  load(options_);
  datapath_->attach(veth.name(), bpfmaps::AttachMode::Generic);
  const std::string pin = options_.pin_dir + "/link_xdp_" + veth.name();
  ASSERT_EQ(access(pin.c_str(), F_OK), 0);

  // The interface goes (as when its network namespace is deleted) and comes
  // back under the same name; the agent restarts.
  datapath_.reset();
  ASSERT_TRUE(veth.remove());
  ASSERT_TRUE(veth.create());
  load(options_);
  const auto attached = datapath_->attach(veth.name(), bpfmaps::AttachMode::Generic);
  EXPECT_FALSE(attached.reused);
  EXPECT_EQ(attached.mode, "generic");

  LIBBPF_OPTS(bpf_xdp_query_opts, query);
  ASSERT_EQ(bpf_xdp_query(static_cast<int>(if_nametoindex(veth.name().c_str())), 0, &query), 0);
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(datapath_->xdp_program_fd(), &info, &len), 0);
  EXPECT_EQ(query.skb_prog_id, info.id);   // this run's program runs on the new interface
  datapath_->detach(veth.name());
  EXPECT_NE(access(pin.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace sluice::testing

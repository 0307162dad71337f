// The same packets and tables through the XDP program (BPF_PROG_TEST_RUN,
// the real verifier) and through the DPDK forwarder's decision code
// (userspace/dpdk: pinned maps copied per generation + sluice/steer_decide.h)
// must give the same verdict and the same backend, flow by flow.
//
// Deterministic policies (ROUND_ROBIN, Maglev on the 5-tuple and on the
// source IP, PASSTHROUGH) run through the production object and must agree
// exactly; both sides start from the same round-robin cursors. RANDOM and
// LEAST_REQUEST run through differential_random.bpf.o, the production
// program with bpf_get_prandom_u32() replaced by the forwarder's generator,
// seeded equally on both sides, so they must agree exactly too. LEAST_REQUEST
// reads loads that change under it: the test rewrites l7_active every 1,000
// flows and the XDP program adds every flow it steers to l4_opened; the
// forwarder decides each flow *before* XDP counts it, so both read the same
// figures. Weights change every 2,500 flows (a generation flip each time),
// which the forwarder side must follow. The sources of one flow in four are
// clients of namespace team-a, whose view of the service has its own
// subsets and the weights swapped (docs/bpf-datapath.md, "Client views"):
// both planes must pick the view's entry for exactly those flows.
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cstdlib>
#include <random>
#include <set>

#include "bpf/xdp_steer_fixture.h"
#include "dpdk/steer_tables.h"
#include "sluice/conntrack_rules.h"

namespace sluice::testing {
namespace {

using dpdk::NewFlowVerdict;

constexpr int kFlowsPerPolicy = 20000;
constexpr int kFlowsPerWeightStep = 2500;
constexpr uint64_t kRandomSeed = 0x0123456789abcdefULL;

struct WeightStep {
  uint32_t v1, v2;
};
// Canary shifts, including both single-subset extremes.
constexpr WeightStep kWeightSteps[] = {{70, 30}, {50, 50}, {0, 100}, {100, 0}, {99, 1}, {1, 99}, {30, 70}, {90, 10}};

int expected_xdp_verdict(NewFlowVerdict v) {
  switch (v) {
    case NewFlowVerdict::Forward: return XDP_TX;   // SKIP_FIB: DNAT then XDP_TX
    case NewFlowVerdict::Drop:
    case NewFlowVerdict::MidflowMiss: return XDP_DROP;
    default: return XDP_PASS;
  }
}

const char* verdict_name(int v) {
  switch (v) {
    case XDP_TX: return "XDP_TX";
    case XDP_PASS: return "XDP_PASS";
    case XDP_DROP: return "XDP_DROP";
    default: return "other";
  }
}

// Flow i of a run: unique 5-tuples over IPv4/IPv6, TCP 9081 and UDP 9082 (L4
// ports), TCP 9080 (L7) and a port that is no service. One TCP packet in ten
// is a spoofed ACK of no flow: both planes must refuse it on a tracked port
// without picking a backend, or their round-robin cursors drift apart and
// later flows disagree.
std::string source_v6(int i) { return fmt::format("fd00:1::{:x}:{:x}", (i >> 16) & 0xffff, i & 0xffff); }
std::string source_v4(int i) { return fmt::format("172.{}.{}.{}", 16 + ((i >> 16) & 0x0f), (i >> 8) & 0xff, i & 0xff); }

// team-a's client addresses: the sources of every fourth flow.
ClientViewOptions team_a_view(const WeightStep& step) {
  ClientViewOptions view;
  view.v1_weight = step.v2;
  view.v2_weight = step.v1;
  for (int i = 0; i < kFlowsPerPolicy; i += 4) {
    view.addresses.push_back(source_v4(i));
    view.addresses.push_back(source_v6(i));
  }
  return view;
}

PacketSpec flow_spec(int i, std::mt19937& rng) {
  PacketSpec spec;
  const uint32_t kind = rng() % 100;
  const bool v6 = rng() % 3 == 0;
  if (v6) {
    spec.src = source_v6(i);
    spec.dst = "fd00:96::10";
  } else {
    spec.src = source_v4(i);
    spec.dst = "10.96.0.10";
  }
  spec.sport = static_cast<uint16_t>(1024 + rng() % 60000);
  if (kind < 70) {
    spec.dport = 9081;
  } else if (kind < 90) {
    spec.dport = 9082;
    spec.proto = IPPROTO_UDP;
  } else if (kind < 95) {
    spec.dport = 9080;
  } else {
    spec.dport = 9555;
  }
  spec.tcp_flags = rng() % 10 == 0 ? kAck : kSyn;
  spec.partial_checksum = rng() % 2 == 0;
  return spec;
}

class DifferentialSteer : public XdpSteerFixture {
 protected:
  void TearDown() override {
    if (variant_) bpf_object__close(variant_);
    XdpSteerFixture::TearDown();
  }

  // differential_random.bpf.o, loaded onto this test's pinned maps (so it
  // reads the tables TableWriter wrote) plus its own random-state map.
  int load_random_variant() {
    const char* path = std::getenv("SLUICE_DIFFERENTIAL_BPF_OBJECT");
    if (path == nullptr) {
      ADD_FAILURE() << "SLUICE_DIFFERENTIAL_BPF_OBJECT is not set (run through meson test)";
      return -1;
    }
    variant_ = bpf_object__open_file(path, nullptr);
    if (!variant_) {
      ADD_FAILURE() << "open " << path << ": " << strerror(errno);
      return -1;
    }
    bpf_map* map;
    bpf_object__for_each_map(map, variant_) {
      const std::string name = bpf_map__name(map);
      if (name.starts_with(".") || name == "slc_test_random") continue;
      const std::string pin = datapath_->options().pin_dir + "/" + name;
      int fd = bpf_obj_get(pin.c_str());
      if (fd < 0 || bpf_map__reuse_fd(map, fd) != 0) {
        ADD_FAILURE() << "reuse pinned map " << pin << ": " << strerror(errno);
        return -1;
      }
      close(fd);
    }
    if (int err = bpf_object__load(variant_)) {
      ADD_FAILURE() << "load " << path << ": " << strerror(-err);
      return -1;
    }
    const uint32_t zero = 0;
    const uint64_t seed = kRandomSeed;
    int state_fd = bpf_map__fd(bpf_object__find_map_by_name(variant_, "slc_test_random"));
    EXPECT_EQ(bpf_map_update_elem(state_fd, &zero, &seed, BPF_ANY), 0);
    return bpf_program__fd(bpf_object__find_program_by_name(variant_, "sluice_steer"));
  }

  int run_program(int prog_fd, const Frame& in) {
    Frame out(in.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = in.data();
    opts.data_size_in = static_cast<uint32_t>(in.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<uint32_t>(out.size());
    opts.repeat = 1;
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
      ADD_FAILURE() << "BPF_PROG_TEST_RUN: " << strerror(errno);
      return -1;
    }
    return static_cast<int>(opts.retval);
  }

  struct Tally {
    int flows = 0, mismatches = 0, forwarded = 0, passed = 0, dropped = 0, team_a_forwarded = 0, view_mismatches = 0;
    std::set<uint32_t> backends;
  };

  // Runs kFlowsPerPolicy flows through both data planes under `options`,
  // shifting weights every kFlowsPerWeightStep flows.
  Tally run_differential(ProductpageOptions options, int prog_fd, bool seeded_random) {
    Tally tally;
    options.v1_weight = kWeightSteps[0].v1;
    options.v2_weight = kWeightSteps[0].v2;
    options.client_view = team_a_view(kWeightSteps[0]);
    apply(options);

    dpdk::PinnedSteerTables tables(datapath_->options().pin_dir);
    std::vector<uint32_t> cursors = tables.read_rr_cursors();
    sluice_user_steer_env env{};
    env.load = tables.backend_load();
    env.load_count = tables.backend_load_entries();
    env.rr_cursor = cursors.data();
    env.rr_count = static_cast<uint32_t>(cursors.size());
    env.random_state = kRandomSeed;
    auto snapshot = tables.read_snapshot();
    dpdk::bind_env(env, *snapshot);

    std::mt19937 rng(1234);
    std::vector<uint32_t> backend_ids;
    for (const auto& [id, identity] : writer_->backends()) backend_ids.push_back(id);

    for (int i = 0; i < kFlowsPerPolicy; i++) {
      if (i > 0 && i % kFlowsPerWeightStep == 0) {
        const WeightStep step = kWeightSteps[(i / kFlowsPerWeightStep) % std::size(kWeightSteps)];
        options.v1_weight = step.v1;
        options.v2_weight = step.v2;
        options.client_view->v1_weight = step.v2;
        options.client_view->v2_weight = step.v1;
        options.version++;
        apply(options);
      }
      if (i % 1000 == 0)
        for (uint32_t id : backend_ids) datapath_->backend_load()[id].l7_active = rng() % 8;
      if (tables.active_generation() != snapshot->generation) {
        snapshot = tables.read_snapshot();
        dpdk::bind_env(env, *snapshot);
      }

      const PacketSpec spec = flow_spec(i, rng);
      const sluice_flow_key key = flow_key_of(spec);
      // Forwarder first: it only reads loads; XDP then counts the flow.
      const bool may_create = sluice_ct_may_create(key.proto, spec.tcp_flags);
      const dpdk::NewFlowOutcome fwd = dpdk::decide_new_flow(*snapshot, env, key, nullptr, nullptr, may_create);
      const int verdict = run_program(prog_fd, build_packet(spec));
      const auto ct = conntrack_of(spec);
      const uint32_t xdp_backend = verdict == XDP_TX && ct ? ct->backend_id : 0;
      const uint32_t fwd_backend = fwd.verdict == NewFlowVerdict::Forward ? fwd.decision.backend_id : 0;

      tally.flows++;
      if (verdict == XDP_TX) tally.forwarded++, tally.backends.insert(xdp_backend);
      if (verdict == XDP_TX && i % 4 == 0) tally.team_a_forwarded++;
      // A forwarded flow's subset is team-a's view's exactly for team-a's clients.
      if (fwd.verdict == NewFlowVerdict::Forward) {
        bool in_view = false;
        for (const auto& [slot, name] : writer_->subset_slots())
          if (slot == fwd.decision.subset_stat) in_view = name.subset.find("(team-a/productpage)") != std::string::npos;
        if (in_view != (i % 4 == 0) && ++tally.view_mismatches <= 5)
          ADD_FAILURE() << "flow " << i << " from " << spec.src << (in_view ? " got" : " did not get")
                        << " team-a's view";
      }
      if (verdict == XDP_PASS) tally.passed++;
      if (verdict == XDP_DROP) tally.dropped++;
      const bool same = verdict == expected_xdp_verdict(fwd.verdict) && xdp_backend == fwd_backend;
      if (!same && ++tally.mismatches <= 5)
        ADD_FAILURE() << "flow " << i << " " << spec.src << ":" << spec.sport << " -> " << spec.dst << ":" << spec.dport
                      << (spec.proto == IPPROTO_UDP ? "/udp" : "/tcp") << " weights " << options.v1_weight << "/"
                      << options.v2_weight << ": XDP " << verdict_name(verdict) << " backend " << xdp_backend
                      << ", forwarder " << verdict_name(expected_xdp_verdict(fwd.verdict)) << " backend "
                      << fwd_backend << (seeded_random ? " (seeded random)" : "");
    }
    return tally;
  }

  bpf_object* variant_ = nullptr;
};


TEST_F(DifferentialSteer, RoundRobinAgreesFlowByFlow) {
  auto t = run_differential({.algorithm = model::LbAlgorithm::RoundRobin}, datapath_->xdp_program_fd(), false);
  EXPECT_EQ(t.mismatches, 0) << "of " << t.flows << " flows";
  EXPECT_EQ(t.view_mismatches, 0);
  EXPECT_GT(t.team_a_forwarded, t.forwarded / 8);
  EXPECT_GT(t.forwarded, t.flows / 2);
  EXPECT_GE(t.backends.size(), 8u) << "every workload x family is picked";
}

TEST_F(DifferentialSteer, MaglevFiveTupleAgreesFlowByFlow) {
  // 32749-slot tables (prime): team-a's view doubles the subsets, and eight
  // 65537-slot tables per half fill the fixture's default Maglev space.
  auto t = run_differential({.algorithm = model::LbAlgorithm::Maglev, .maglev_table_size = 32749},
                            datapath_->xdp_program_fd(), false);
  EXPECT_EQ(t.mismatches, 0) << "of " << t.flows << " flows";
  EXPECT_EQ(t.view_mismatches, 0);
  EXPECT_GT(t.team_a_forwarded, t.forwarded / 8);
  EXPECT_GT(t.forwarded, t.flows / 2);
  EXPECT_GE(t.backends.size(), 8u);
}

TEST_F(DifferentialSteer, MaglevSourceIpAgreesFlowByFlow) {
  auto t = run_differential({.algorithm = model::LbAlgorithm::Maglev,
                             .hash_source = model::HashKey::Source::SourceIp,
                             .maglev_table_size = 32749},
                            datapath_->xdp_program_fd(), false);
  EXPECT_EQ(t.mismatches, 0) << "of " << t.flows << " flows";
  EXPECT_EQ(t.view_mismatches, 0);
  EXPECT_GT(t.team_a_forwarded, t.forwarded / 8);
  EXPECT_GT(t.forwarded, t.flows / 2);
  EXPECT_GE(t.backends.size(), 8u);
}

TEST_F(DifferentialSteer, PassthroughAgreesFlowByFlow) {
  auto t = run_differential({.algorithm = model::LbAlgorithm::Passthrough}, datapath_->xdp_program_fd(), false);
  EXPECT_EQ(t.mismatches, 0) << "of " << t.flows << " flows";
  EXPECT_EQ(t.forwarded, 0);
  EXPECT_EQ(t.passed, t.flows);
}

TEST_F(DifferentialSteer, RandomWithSeededSourceAgreesFlowByFlow) {
  int prog = load_random_variant();
  ASSERT_GE(prog, 0);
  auto t = run_differential({.algorithm = model::LbAlgorithm::Random}, prog, true);
  EXPECT_EQ(t.mismatches, 0) << "of " << t.flows << " flows";
  EXPECT_EQ(t.view_mismatches, 0);
  EXPECT_GT(t.team_a_forwarded, t.forwarded / 8);
  EXPECT_GT(t.forwarded, t.flows / 2);
  EXPECT_GE(t.backends.size(), 8u);
}

TEST_F(DifferentialSteer, LeastRequestWithSeededSourceAndMovingLoadsAgreesFlowByFlow) {
  int prog = load_random_variant();
  ASSERT_GE(prog, 0);
  auto t = run_differential({.algorithm = model::LbAlgorithm::LeastRequest}, prog, true);
  EXPECT_EQ(t.mismatches, 0) << "of " << t.flows << " flows";
  EXPECT_EQ(t.view_mismatches, 0);
  EXPECT_GT(t.team_a_forwarded, t.forwarded / 8);
  EXPECT_GT(t.forwarded, t.flows / 2);
  EXPECT_GE(t.backends.size(), 8u);
}

}  // namespace
}  // namespace sluice::testing

// bpf_steer_bench: ns/packet of the XDP steering program with
// BPF_PROG_TEST_RUN `repeat`, as a ratio to the trivial MAC-swap XDP_TX
// program measured in the same run, plus the verifier's instruction counts.
//
// BPF_PROG_TEST_RUN re-runs the program on the packet the previous iteration
// left behind, so each case is built to stay on its path, and the global
// counters are checked to prove every iteration took it:
//   non-VIP      a TCP packet to a non-service address: XDP_PASS, unchanged;
//   tracked      a data packet of a tracked flow (opened by its SYN) whose backend address:port
//                equals the VIP:port, so the DNAT (with its checksum work)
//                leaves the packet as it was and the next iteration is the
//                same tracked-flow lookup + rewrite;
//   new flow     a SYN while the TCP timeouts are 0: every iteration finds
//                the previous entry expired and runs the full decision
//                (weighted route, round robin) and conntrack insert.
// Prints one JSON object. Needs root.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <nlohmann/json.hpp>

#include "bpf/packet_builder.h"
#include "bpf/productpage_snapshot.h"
#include "bpfmaps/bpf_datapath.h"
#include "bpfmaps/datapath_report.h"
#include "bpfmaps/table_writer.h"
#include "xdp_macswap.skel.h"

namespace {

using namespace sluice;
using sluice::testing::Frame;
using sluice::testing::PacketSpec;

struct Timing {
  double ns_per_packet = 0;
  uint32_t verdict = 0;
};

Timing time_program(int prog_fd, const Frame& packet, uint32_t repeat, int rounds) {
  std::vector<double> samples;
  Timing t;
  for (int r = 0; r < rounds; ++r) {
    Frame in = packet, out(packet.size() + 64);
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = in.data();
    opts.data_size_in = static_cast<uint32_t>(in.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<uint32_t>(out.size());
    opts.repeat = repeat;
    if (bpf_prog_test_run_opts(prog_fd, &opts))
      throw std::runtime_error(fmt::format("BPF_PROG_TEST_RUN: {}", strerror(errno)));
    samples.push_back(opts.duration);   // average ns per run, measured by the kernel
    t.verdict = opts.retval;
  }
  std::sort(samples.begin(), samples.end());
  t.ns_per_packet = samples[samples.size() / 2];
  return t;
}

uint32_t verified_insns(int prog_fd, uint32_t* xlated_insns) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  bpf_obj_get_info_by_fd(prog_fd, &info, &len);
  *xlated_insns = info.xlated_prog_len / 8;
  return info.verified_insns;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ns/packet of sluice_steer vs the MAC-swap baseline (BPF_PROG_TEST_RUN)"};
  uint32_t repeat = 1000000;
  int rounds = 5;
  std::string only;
  app.add_option("--repeat", repeat, "iterations per BPF_PROG_TEST_RUN")->capture_default_str();
  app.add_option("--rounds", rounds, "runs per case; the median is reported")->capture_default_str();
  app.add_option("--case", only, "time only this case (to profile it, e.g. under perf record)")
      ->check(CLI::IsMember({"non_vip", "tracked_flow", "new_flow"}));
  CLI11_PARSE(app, argc, argv);
  if (geteuid() != 0) {
    std::cerr << "bpf_steer_bench: needs root (BPF_PROG_TEST_RUN)\n";
    return 77;
  }
  try {
    bpfmaps::DatapathOptions options;
    options.pin_dir = fmt::format("/sys/fs/bpf/slc-bpf-bench-{}", getpid());
    options.skip_fib = true;
    bpfmaps::BpfDatapath datapath(options);
    datapath.load();
    bpfmaps::TableWriter writer(datapath, bpfmaps::TableWriterOptions{std::chrono::milliseconds(0)});

    // Backends of v1 listen on the VIP's own address:port (see header).
    auto snap = sluice::testing::productpage_snapshot({.v1_weight = 100, .v2_weight = 0});
    for (auto& e : snap.services[0].endpoints)
      if (e.labels["version"] == "v1" && e.address.is_v4()) e.address = sluice::testing::ip("10.96.0.10");
    writer.apply(snap);

    xdp_macswap* baseline = xdp_macswap__open_and_load();
    if (!baseline) throw std::runtime_error("load xdp_macswap");
    const int steer_fd = datapath.xdp_program_fd();

    PacketSpec non_vip;
    non_vip.dst = "10.200.99.9";
    non_vip.tcp_flags = testing::kAck;
    PacketSpec tracked;
    tracked.tcp_flags = testing::kAck;
    tracked.payload = std::vector<uint8_t>(64, 0x42);
    PacketSpec syn;
    syn.sport = 50000;

    nlohmann::json out;
    out["repeat"] = repeat;
    out["rounds"] = rounds;
    const Timing base = time_program(bpf_program__fd(baseline->progs.sluice_xdp_macswap),
                                     testing::build_packet(tracked), repeat, rounds);
    out["macswap_ns"] = base.ns_per_packet;

    struct Case {
      const char* name;
      PacketSpec spec;
      uint32_t counter;
      uint32_t verdict;
    };
    // The tracked flow's entry: its SYN (only a SYN creates state), marked
    // answered by the backend as a reply would, so the TCP idle timeout
    // applies.
    {
      PacketSpec open = tracked;
      open.tcp_flags = testing::kSyn;
      open.payload.clear();
      time_program(steer_fd, testing::build_packet(open), 1, 1);
      const sluice_flow_key key = testing::flow_key_of(tracked);
      sluice_ct_entry entry{};
      if (!datapath.lookup(bpfmaps::MapRole::Conntrack, bpfmaps::as_bytes_of(key), bpfmaps::as_writable_bytes_of(entry)))
        throw std::runtime_error("the tracked flow's SYN created no conntrack entry");
      entry.flags |= SLUICE_CT_F_REPLIED;
      datapath.update(bpfmaps::MapRole::Conntrack, bpfmaps::as_bytes_of(key), bpfmaps::as_bytes_of(entry));
    }
    const Case cases[] = {
        {"non_vip", non_vip, SLUICE_G_PASS_NOT_SERVICE, XDP_PASS},
        {"tracked_flow", tracked, SLUICE_G_FORWARDED, XDP_TX},
    };
    for (const Case& c : cases) {
      if (!only.empty() && only != c.name) continue;
      const uint64_t before = bpfmaps::global_counter(datapath, c.counter);
      const Timing t = time_program(steer_fd, testing::build_packet(c.spec), repeat, rounds);
      const uint64_t took = bpfmaps::global_counter(datapath, c.counter) - before;
      out[c.name] = {{"ns", t.ns_per_packet}, {"ratio_to_macswap", t.ns_per_packet / base.ns_per_packet},
                     {"verdict", t.verdict}, {"iterations_on_path", took},
                     {"all_on_path", took == uint64_t(repeat) * rounds && t.verdict == c.verdict}};
    }
    // New flows: timeouts 0 expire the previous iteration's entry (a SYN's
    // entry, unanswered, has the closing timeout).
    {
      sluice_ctrl ctrl{};
      const uint32_t key = 0;
      datapath.lookup(bpfmaps::MapRole::Ctrl, bpfmaps::as_bytes_of(key), bpfmaps::as_writable_bytes_of(ctrl));
      ctrl.tcp_idle_ns = 0;
      ctrl.closing_ns = 0;
      datapath.update(bpfmaps::MapRole::Ctrl, bpfmaps::as_bytes_of(key), bpfmaps::as_bytes_of(ctrl));
    }
    if (only.empty() || only == "new_flow") {
      const uint64_t before = bpfmaps::global_counter(datapath, SLUICE_G_NEW_FLOWS);
      const Timing t = time_program(steer_fd, testing::build_packet(syn), repeat, rounds);
      const uint64_t took = bpfmaps::global_counter(datapath, SLUICE_G_NEW_FLOWS) - before;
      out["new_flow"] = {{"ns", t.ns_per_packet}, {"ratio_to_macswap", t.ns_per_packet / base.ns_per_packet},
                         {"verdict", t.verdict}, {"iterations_on_path", took},
                         {"all_on_path", took == uint64_t(repeat) * rounds && t.verdict == XDP_TX}};
    }

    uint32_t xlated = 0;
    out["verifier"] = {
        {"sluice_steer", {{"verified_insns", verified_insns(steer_fd, &xlated)}, {"xlated_insns", xlated}}}};
    const uint32_t skl = verified_insns(datapath.sk_lookup_program_fd(), &xlated);
    out["verifier"]["sluice_sklookup"] = {{"verified_insns", skl}, {"xlated_insns", xlated}};
    const uint32_t base_insns = verified_insns(bpf_program__fd(baseline->progs.sluice_xdp_macswap), &xlated);
    out["verifier"]["xdp_macswap"] = {{"verified_insns", base_insns}, {"xlated_insns", xlated}};
    std::cout << out.dump(2) << "\n";
    xdp_macswap__destroy(baseline);
    datapath.unpin_all();
  } catch (const std::exception& e) {
    std::cerr << "bpf_steer_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

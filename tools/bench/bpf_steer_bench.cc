// bpf_steer_bench: ns/packet of the XDP steering program with
// BPF_PROG_TEST_RUN `repeat`, as a ratio to the trivial MAC-swap XDP_TX
// program measured in the same run, plus the verifier's instruction counts.
// Each round times every case once and, next to it, the MAC-swap program on
// the same packet with the same repeat count (so the test-run loop's own
// per-iteration cost is in both figures alike); medians and the lowest and
// highest round are reported.
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
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
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

// One BPF_PROG_TEST_RUN of `repeat` iterations: the kernel's average ns per
// iteration and the program's verdict.
struct Run {
  double ns = 0;
  uint32_t verdict = 0;
};

Run run_program(int prog_fd, const Frame& packet, uint32_t repeat) {
  Frame in = packet, out(packet.size() + 64);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = in.data();
  opts.data_size_in = static_cast<uint32_t>(in.size());
  opts.data_out = out.data();
  opts.data_size_out = static_cast<uint32_t>(out.size());
  opts.repeat = repeat;
  if (bpf_prog_test_run_opts(prog_fd, &opts))
    throw std::runtime_error(fmt::format("BPF_PROG_TEST_RUN: {}", strerror(errno)));
  return {static_cast<double>(opts.duration), opts.retval};
}

// Median, lowest and highest of a set of samples.
nlohmann::json spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {{"median", v[v.size() / 2]}, {"min", v.front()}, {"max", v.back()}};
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
  // The datapath's log lines go to stderr: stdout is the JSON result alone.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("bpf_steer_bench"));
  CLI::App app{"ns/packet of sluice_steer vs the MAC-swap baseline (BPF_PROG_TEST_RUN)"};
  uint32_t repeat = 1000000;
  int rounds = 5;
  std::string only;
  app.add_option("--repeat", repeat, "iterations per BPF_PROG_TEST_RUN")->capture_default_str();
  app.add_option("--rounds", rounds, "interleaved rounds; the median and spread are reported")->capture_default_str();
  app.add_option("--case", only, "time only this case (to profile it, e.g. under perf record)")
      ->check(CLI::IsMember({"non_vip", "tracked_flow", "new_flow"}));
  bool no_baseline = false;
  app.add_flag("--no-baseline", no_baseline, "skip the MAC-swap runs (to profile the case alone)");
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
    const int base_fd = bpf_program__fd(baseline->progs.sluice_xdp_macswap);

    // The tracked flow's entry: its SYN (only a SYN creates state), marked
    // answered by the backend as a reply would, so the TCP idle timeout
    // applies.
    {
      PacketSpec open = tracked;
      open.tcp_flags = testing::kSyn;
      open.payload.clear();
      run_program(steer_fd, testing::build_packet(open), 1);
      const sluice_flow_key key = testing::flow_key_of(tracked);
      sluice_ct_entry entry{};
      if (!datapath.lookup(bpfmaps::MapRole::Conntrack, bpfmaps::as_bytes_of(key), bpfmaps::as_writable_bytes_of(entry)))
        throw std::runtime_error("the tracked flow's SYN created no conntrack entry");
      entry.flags |= SLUICE_CT_F_REPLIED;
      datapath.update(bpfmaps::MapRole::Conntrack, bpfmaps::as_bytes_of(key), bpfmaps::as_bytes_of(entry));
    }

    // New flows run with both TCP timeouts at 0, which expires the previous
    // iteration's entry (a SYN's entry, unanswered, has the closing
    // timeout); the other cases with the loader's timeouts.
    const uint32_t ctrl_key = 0;
    sluice_ctrl normal_ctrl{};
    datapath.lookup(bpfmaps::MapRole::Ctrl, bpfmaps::as_bytes_of(ctrl_key), bpfmaps::as_writable_bytes_of(normal_ctrl));
    sluice_ctrl expiring_ctrl = normal_ctrl;
    expiring_ctrl.tcp_idle_ns = 0;
    expiring_ctrl.closing_ns = 0;

    struct Case {
      const char* name;
      PacketSpec spec;
      uint32_t counter;   // counted once by every iteration on the path
      uint32_t verdict;
      bool expiring;
      std::vector<double> ns, base_ns, ratio;
      uint64_t on_path = 0;
      bool verdicts_ok = true;
    };
    std::vector<Case> cases = {
        {"non_vip", non_vip, SLUICE_G_PASS_NOT_SERVICE, XDP_PASS, false},
        {"tracked_flow", tracked, SLUICE_G_FORWARDED, XDP_TX, false},
        {"new_flow", syn, SLUICE_G_NEW_FLOWS, XDP_TX, true},
    };
    // Rounds outermost, so every case and its baseline see the same
    // moments of a shared machine; inside a round the baseline runs on the
    // case's own packet with the same repeat count, before the case in
    // even rounds and after it in odd ones.
    for (int r = 0; r < rounds; ++r) {
      for (Case& c : cases) {
        if (!only.empty() && only != c.name) continue;
        const sluice_ctrl& ctrl = c.expiring ? expiring_ctrl : normal_ctrl;
        datapath.update(bpfmaps::MapRole::Ctrl, bpfmaps::as_bytes_of(ctrl_key), bpfmaps::as_bytes_of(ctrl));
        const Frame frame = testing::build_packet(c.spec);
        Run base, t;
        if (r % 2 == 0 && !no_baseline) base = run_program(base_fd, frame, repeat);
        const uint64_t before = bpfmaps::global_counter(datapath, c.counter);
        t = run_program(steer_fd, frame, repeat);
        c.on_path += bpfmaps::global_counter(datapath, c.counter) - before;
        if (r % 2 == 1 && !no_baseline) base = run_program(base_fd, frame, repeat);
        c.verdicts_ok = c.verdicts_ok && t.verdict == c.verdict;
        c.ns.push_back(t.ns);
        c.base_ns.push_back(base.ns);
        c.ratio.push_back(base.ns > 0 ? t.ns / base.ns : 0);
      }
    }
    for (const Case& c : cases) {
      if (c.ns.empty()) continue;
      const nlohmann::json ns = spread(c.ns);
      out[c.name] = {{"ns", ns["median"]}, {"ns_spread", ns}, {"macswap_ns", spread(c.base_ns)},
                     {"ratio_to_macswap", spread(c.ratio)["median"]}, {"ratio_spread", spread(c.ratio)},
                     {"frame_bytes", testing::build_packet(c.spec).size()},
                     {"iterations_on_path", c.on_path},
                     {"all_on_path", c.on_path == uint64_t(repeat) * rounds && c.verdicts_ok}};
    }
    datapath.update(bpfmaps::MapRole::Ctrl, bpfmaps::as_bytes_of(ctrl_key), bpfmaps::as_bytes_of(normal_ctrl));

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

// xdp_harness: the L4 datapath driven from an Istio config directory, for the
// XDP integration tests and benchmarks (the agent, sluiced, does the same
// inside its control loop).
//
//   xdp_harness --config-dir DIR [--pin-dir DIR] [--iface IF]... [--mode auto|native|generic]
//               [--conntrack-flows N] [--status-file F] [--stats-file F] [--sk-lookup-netns PATH]
//   xdp_harness --pin-dir DIR --iface IF... --detach      # remove programs and pins
//
// Runs until SIGTERM/SIGINT and then exits leaving programs and maps pinned,
// so traffic keeps flowing while it is away; a new instance re-uses them.
// SIGHUP re-compiles DIR and applies it; SIGUSR1 writes the counters as JSON
// to --stats-file. After every apply --status-file holds
// {"applies", "generation", "snapshot_version", "interfaces", "reused_maps"}.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bpfmaps/bpf_datapath.h"
#include "bpfmaps/datapath_report.h"
#include "bpfmaps/redirect_targets.h"
#include "bpfmaps/table_writer.h"
#include "config/compiler.h"

namespace {

using namespace sluice;

void write_atomically(const std::string& path, const std::string& text) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text << "\n";
  }
  std::filesystem::rename(tmp, path);
}

// Compiles DIR; on errors prints them (file:line:col) and returns null.
model::SnapshotPtr compile_dir(const std::string& dir, uint64_t version) {
  config::CompileResult result = config::compile_paths({dir}, version);
  for (const auto& d : result.diagnostics) std::cerr << model::format_diagnostic(d) << "\n";
  return result.snapshot;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Drive the sluice XDP datapath from an Istio config directory"};
  std::string config_dir, status_file, stats_file, sk_lookup_netns, mode_name = "auto";
  std::vector<std::string> ifaces;
  bpfmaps::DatapathOptions options;
  bool detach = false;
  app.add_option("--config-dir", config_dir, "Istio YAML directory");
  app.add_option("--pin-dir", options.pin_dir, "bpffs directory for maps and links")->capture_default_str();
  app.add_option("--iface", ifaces, "interface to attach XDP to (repeatable)");
  app.add_option("--mode", mode_name, "XDP mode")->check(CLI::IsMember({"auto", "native", "generic"}))
      ->capture_default_str();
  app.add_option("--conntrack-flows", options.conntrack_flows, "conntrack LRU size")->capture_default_str();
  app.add_option("--maglev-slots", options.maglev_slots, "Maglev slots per table half")->capture_default_str();
  app.add_option("--status-file", status_file, "JSON status written after every apply");
  app.add_option("--stats-file", stats_file, "JSON counters written on SIGUSR1");
  app.add_option("--sk-lookup-netns", sk_lookup_netns, "attach sk_lookup to this netns (e.g. /proc/self/ns/net)");
  app.add_flag("--detach", detach, "detach from --iface, remove every pin, exit");
  CLI11_PARSE(app, argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT}) sigaddset(&signals, s);
  sigprocmask(SIG_BLOCK, &signals, nullptr);

  try {
    bpfmaps::BpfDatapath datapath(options);
    datapath.load();
    if (detach) {
      for (const auto& iface : ifaces) datapath.detach(iface);
      datapath.unpin_all();
      spdlog::info("detached and unpinned {}", options.pin_dir);
      return 0;
    }
    if (config_dir.empty()) {
      std::cerr << "xdp_harness: --config-dir is required (or --detach)\n";
      return 2;
    }
    const bpfmaps::AttachMode mode = mode_name == "native"    ? bpfmaps::AttachMode::Native
                                     : mode_name == "generic" ? bpfmaps::AttachMode::Generic
                                                              : bpfmaps::AttachMode::Auto;
    bpfmaps::TableWriter writer(datapath);
    writer.recover();
    uint64_t version = 1, applies = 0;
    auto apply_dir = [&]() -> bool {
      model::SnapshotPtr snapshot = compile_dir(config_dir, version++);
      if (!snapshot) {
        spdlog::error("{}: invalid configuration, tables unchanged", config_dir);
        return false;
      }
      const bpfmaps::ApplyResult r = writer.apply(*snapshot);
      ++applies;
      spdlog::info("applied snapshot {}: generation {}, {} service ports, {} subsets, {} live backends",
                   r.snapshot_version, r.generation, r.service_ports, r.subsets, r.live_backends);
      nlohmann::json status = {{"applies", applies},
                               {"generation", r.generation},
                               {"snapshot_version", r.snapshot_version},
                               {"reused_maps", datapath.reused_pinned_maps()},
                               {"interfaces", nlohmann::json::array()}};
      for (const auto& a : datapath.attached())
        status["interfaces"].push_back({{"name", a.name}, {"ifindex", a.ifindex}, {"mode", a.mode}, {"reused", a.reused}});
      write_atomically(status_file, status.dump());
      return true;
    };
    // Tables first, then traffic: a fresh attach never sees empty tables.
    if (!apply_dir()) return 1;
    for (const auto& iface : ifaces) datapath.attach(iface, mode);
    if (!sk_lookup_netns.empty()) datapath.attach_sk_lookup(sk_lookup_netns);
    // As sluiced does: only devices that take native redirects get them.
    auto mark_targets = [&] {
      if (auto targets = bpfmaps::probe_redirect_targets()) bpfmaps::mark_redirect_targets(datapath, *targets);
    };
    mark_targets();
    apply_dir();   // re-written so the status file lists the interfaces

    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        try {
          mark_targets();
          apply_dir();
        } catch (const std::exception& e) {
          spdlog::error("apply failed, previous tables keep serving: {}", e.what());
        }
      } else if (sig == SIGUSR1) {
        write_atomically(stats_file, bpfmaps::datapath_stats_json(datapath, writer).dump());
      } else {
        spdlog::info("exiting; programs and maps stay pinned in {}", options.pin_dir);
        return 0;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "xdp_harness: " << e.what() << "\n";
    return 1;
  }
}

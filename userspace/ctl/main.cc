#include <CLI/CLI.hpp>

#include <vector>

#include "ctl/commands.h"

namespace sluice::ctl {

std::span<const Command> command_table() {
  static const Command kCommands[] = {
      {"validate", "check configuration files; print file:line:col diagnostics", define_validate},
      {"explain", "show the compiled snapshot: VIPs, ports, planes, routes, subsets, endpoints, policies",
       define_explain},
      {"status", "the running agent: serving version, overrides in force, the last refused change",
       define_status},
      {"routes", "the running agent's routes per VIP:port with destination shares", define_routes},
      {"clusters", "the running agent's subsets and endpoints with their load", define_clusters},
      {"stats", "the running agent's metrics (non-zero samples; --all for every one)", define_stats},
      {"weights", "shift a service's route weights at run time, on both planes at once", define_weights},
      {"top", "live view: each subset's configured vs observed share, rates, errors, latency (refreshes every second)",
       define_top},
  };
  return kCommands;
}

}  // namespace sluice::ctl

int main(int argc, char** argv) {
  using namespace sluice::ctl;
  CLI::App app{"sluicectl: check, explain and operate sluice's Istio traffic configuration",
               "sluicectl"};
  app.require_subcommand(1, 1);
  app.footer(
      "Exit status: 0 success; 1 the configuration has errors; 2 usage error or unreadable input.\n"
      "Run 'sluicectl COMMAND --help' for a command's options.");
  std::vector<std::pair<CLI::App*, CommandBody>> commands;
  for (const auto& c : command_table()) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    commands.emplace_back(sub, c.define(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  for (auto& [sub, body] : commands) {
    if (sub->parsed()) return body();
  }
  return kExitUsage;
}

// sluicectl's command table. Each command is one entry: its name, a one-line
// summary for --help, and a function that declares its options on the
// subcommand and returns the body to run after parsing. Adding a command is
// adding one entry and one define_* function.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <span>
#include <string>

#include "admin/admin_client.h"

namespace sluice::ctl {

using CommandBody = std::function<int()>;

struct Command {
  const char* name;
  const char* summary;
  CommandBody (*define)(CLI::App& command);
};

// Commands that read configuration files (no agent needed).
CommandBody define_validate(CLI::App& command);
CommandBody define_explain(CLI::App& command);

// Commands that ask a running agent through its admin API.
CommandBody define_status(CLI::App& command);
CommandBody define_routes(CLI::App& command);
CommandBody define_clusters(CLI::App& command);
CommandBody define_stats(CLI::App& command);
CommandBody define_weights(CLI::App& command);
CommandBody define_top(CLI::App& command);

// The options every command that talks to a running agent shares
// (status, routes, clusters, stats, weights, top). Reads go to the TCP listener
// (--admin), or to the Unix socket when --admin-socket is given and --admin
// is not; weights goes to the Unix socket (--admin-socket), or to the TCP
// listener with a bearer token when --admin-token-file is given.
struct AdminOptions {
  std::string admin = "127.0.0.1:15000";
  std::string socket = "/run/sluice/admin.sock";
  std::string token_file;
  bool json = false;
  bool admin_given = false;    // --admin on the command line
  bool socket_given = false;   // --admin-socket on the command line
};
void add_admin_options(CLI::App& command, AdminOptions& options);
// Where reads go: "--admin-socket PATH" alone means that socket, as a user
// who passes only the socket (say, sluiced runs without --admin) expects.
admin::AdminTarget read_target(const AdminOptions& options);
// "is sluiced running with --admin HOST:PORT?" (or the socket), for errors.
std::string running_with(const admin::AdminTarget& target);

std::span<const Command> command_table();

// Exit codes, documented in --help.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;   // the configuration has errors
inline constexpr int kExitUsage = 2;     // bad command line or unreachable input

}  // namespace sluice::ctl

// `sluiced --supervise`: a small parent that owns the L7 listening sockets
// and runs sluiced as its child, passing them by socket activation
// (LISTEN_FDS, listen_sockets.h) — systemd's .socket unit with
// Restart=always, for nodes without systemd (containers, the DaemonSet).
// When the child dies, however it dies, the sockets stay open here: the
// sk_lookup program keeps handing new L7 connections to them, the kernel
// queues them in the accept backlog, and the next child accepts them. No new
// connection is refused while sluiced restarts (docs/operations.md).
#pragma once

#include <string>
#include <vector>

namespace sluice::agent {

struct SupervisorOptions {
  std::vector<std::string> listen_addresses;   // opened here, passed in this order
  std::string program;                         // the sluiced to run (re-read at each start: upgrades)
  std::vector<std::string> child_args;         // argv of the child, argv[0] included
};

// Runs until SIGTERM or SIGINT, which it forwards to the child, returning
// the child's exit status once the child has drained; or until the child
// exits with status 2 (bad usage, which a restart cannot fix). Any other end
// of the child (a crash, SIGKILL, or a SIGTERM sent to the child alone: a
// graceful restart) starts a new child at once, or after a backoff (0.1 s
// doubling to 5 s) while children keep ending within 10 s of their start.
// SIGHUP and SIGUSR1 are forwarded (reload, reopen the access log).
int supervise(const SupervisorOptions& options);

}  // namespace sluice::agent

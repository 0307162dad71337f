// The proxy's listening sockets: opened here, or inherited from a process
// that outlives sluiced (systemd socket activation, `sluiced --supervise`).
// A listening socket held by such a keeper survives a crash of sluiced: the
// sk_lookup program keeps handing L7 VIP connections to it, the kernel
// completes their handshakes into its accept backlog, and the next sluiced
// accepts them (docs/operations.md, "Crash and restart").
#pragma once

#include <string>
#include <vector>

namespace sluice::proxy {

// A TCP socket listening on "ADDR:PORT" ("[v6]:PORT"), SO_REUSEPORT so each
// proxy worker can add its own socket to the group. Throws with the address.
int open_listen_socket(const std::string& address);

// sd_listen_fds(3) semantics, without libsystemd: the descriptors 3..3+N-1
// when LISTEN_PID is this process and LISTEN_FDS is N; empty otherwise. The
// variables are removed and the descriptors made close-on-exec, so children
// inherit neither.
std::vector<int> take_inherited_sockets();

// The first of `inherited` that is a TCP socket listening on `address`
// (compared as addresses: "[::1]:15001" matches ::1 port 15001); it is
// removed from `inherited`. -1 when none is.
int claim_inherited_listener(std::vector<int>& inherited, const std::string& address);

// "127.0.0.1:15001" for a socket's local address (for messages); "fd N" if unknown.
std::string describe_local_address(int fd);

}  // namespace sluice::proxy

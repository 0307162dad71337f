# shellcheck shell=bash
# The team brief's test topology, as functions for integration tests, the demo
# and benchmarks. Source this file, then:
#
#   topo_require_root                    # exit 77 (skip) unless root; CI=true: exit 1
#   topo_require_cmd curl nc             # same convention for missing tools
#   topo_create slc-lb-smoke 4           # client ns, node ns, 4 backend namespaces
#   topo_exec "$(topo_ns node)" curl ...
#   topo_spawn "$(topo_ns backend 1)" sluice-test-backend --name b1 --http 9080
#   pid=$TOPO_LAST_PID
#   ...                                  # topo_destroy runs on EXIT (trap)
#
# Layout (backend i = 1..N; the brief's plan for N <= 9, continued beyond):
#   PREFIX-client  eth0 10.200.1.2/24  fd00:200:1::2/64   default via the node
#   PREFIX-node    c0   10.200.1.1/24  fd00:200:1::1/64   forwarding on (v4, v6)
#                  bI   10.200.(10+I).1/24 fd00:200:(10+I)::1/64 (hex group "1I" for I <= 9)
#   PREFIX-beI     eth0 10.200.(10+I).2/24 fd00:200:(10+I)::2/64 default via the node
#
# Only namespace names carry the prefix: each veth pair is created directly
# inside its two namespaces, so link names never meet in the root namespace
# and parallel tests with distinct prefixes cannot collide. Everything this
# file creates is recorded and removed by exact name or pid, never by pattern.
#
# Hooks, for the data plane's needs (docs/bpf-datapath.md, "Native redirects into veths: deliver or say why"):
#   TOPO_LINK_HOOK   name of a function called as `HOOK NETNS IFNAME ROLE` for
#                    every veth end once it is up; ROLE is one of client,
#                    node-client, node-backend, backend. E.g. attach an XDP_PASS
#                    program to the peers, or `ethtool -K IFNAME gro on`.
# The default attaches nothing.

TOPO_PREFIX=""
TOPO_BACKENDS=0
TOPO_LINK_HOOK="${TOPO_LINK_HOOK:-}"
_topo_namespaces=()
_topo_pids=()
_topo_cleanups=()
_topo_trap_set=0

_topo_fail_or_skip() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: missing in CI: $*" >&2
    exit 1
  fi
  echo "SKIP: missing: $*" >&2
  exit 77
}

topo_require_root() {
  [[ $EUID -eq 0 ]] || _topo_fail_or_skip "root (network namespaces need CAP_NET_ADMIN)"
}

topo_require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || _topo_fail_or_skip "command '$c'"
  done
}

# topo_ns client|node|backend I
topo_ns() {
  case "$1" in
    client) echo "${TOPO_PREFIX}-client" ;;
    node) echo "${TOPO_PREFIX}-node" ;;
    backend) echo "${TOPO_PREFIX}-be$2" ;;
    *) echo "topo_ns: unknown role '$1' (client, node, backend I)" >&2; return 1 ;;
  esac
}

# The third octet / v6 group of backend I's link: 11..19 as in the brief, then 20, 21, ...
_topo_subnet() { echo $((10 + $1)); }

# topo_addr client|node-client|backend I|node-backend I [4|6]
topo_addr() {
  local role=$1 i="" family
  if [[ $role == backend || $role == node-backend ]]; then i=$2; shift; fi
  family=${2:-4}
  local net host
  case "$role" in
    client) net=1; host=2 ;;
    node-client) net=1; host=1 ;;
    backend) net=$(_topo_subnet "$i"); host=2 ;;
    node-backend) net=$(_topo_subnet "$i"); host=1 ;;
    *) echo "topo_addr: unknown role '$role'" >&2; return 1 ;;
  esac
  if [[ $family == 6 ]]; then echo "fd00:200:${net}::${host}"; else echo "10.200.${net}.${host}"; fi
}

topo_exec() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# Starts a command in a namespace in the background, sets TOPO_LAST_PID and
# remembers the pid for topo_destroy (not via $(...): that would be a subshell
# and the pid would be forgotten). Output goes to a file under $TOPO_LOG_DIR if
# set, else /dev/null.
topo_spawn() {
  local ns=$1
  shift
  local log=/dev/null
  if [[ -n "${TOPO_LOG_DIR:-}" ]]; then log="$TOPO_LOG_DIR/$ns.$(basename "$1").$$.$RANDOM.log"; fi
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  TOPO_LAST_PID=$!
  _topo_pids+=("$TOPO_LAST_PID")
}

# Registers a command (a string, eval'd) to run at teardown, before namespaces go.
topo_on_cleanup() { _topo_cleanups+=("$1"); }

_topo_add_ns() {
  local ns=$1
  if ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
    echo "topo: namespace $ns already exists (a previous run's leftover?); delete it with: ip netns del $ns" >&2
    return 1
  fi
  ip netns add "$ns" || return 1
  _topo_namespaces+=("$ns")
  ip -n "$ns" link set lo up
  # Duplicate address detection would hold v6 addresses "tentative" for a second.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

_topo_run_hook() {
  [[ -n "$TOPO_LINK_HOOK" ]] || return 0
  "$TOPO_LINK_HOOK" "$@"
}

# _topo_link NS_A IF_A NS_B IF_B: a veth pair between two namespaces.
_topo_link() {
  ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" || return 1
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

# topo_create PREFIX N_BACKENDS
topo_create() {
  TOPO_PREFIX=$1
  TOPO_BACKENDS=${2:-4}
  if [[ -z "$TOPO_PREFIX" || ${#TOPO_PREFIX} -gt 20 ]]; then
    echo "topo_create: prefix '$TOPO_PREFIX' must be 1-20 characters" >&2
    return 1
  fi
  if ((_topo_trap_set == 0)); then
    trap topo_destroy EXIT
    trap 'exit 130' INT TERM
    _topo_trap_set=1
  fi
  local client node i be
  client=$(topo_ns client)
  node=$(topo_ns node)
  _topo_add_ns "$client" || return 1
  _topo_add_ns "$node" || return 1
  ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  # Clients here open tens of thousands of short connections to one VIP:port
  # (agent_canary: ~400/s for minutes). With the default 28k ephemeral ports
  # and 60 s of TIME_WAIT that runs out (connect: EADDRNOTAVAIL), so the
  # client and the node (the proxy dials upstream) get the whole range and
  # may reuse a TIME_WAIT port, as a load generator's host would be tuned.
  # A reused 4-tuple is safe for the steering: a SYN on a closing conntrack
  # entry is steered afresh.
  local ns_
  for ns_ in "$client" "$node"; do
    ip netns exec "$ns_" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
  done

  _topo_link "$client" eth0 "$node" c0 || return 1
  ip -n "$client" addr add "$(topo_addr client)/24" dev eth0
  ip -n "$client" addr add "$(topo_addr client 6)/64" dev eth0 nodad
  ip -n "$node" addr add "$(topo_addr node-client)/24" dev c0
  ip -n "$node" addr add "$(topo_addr node-client 6)/64" dev c0 nodad
  ip -n "$client" route add default via "$(topo_addr node-client)"
  ip -n "$client" -6 route add default via "$(topo_addr node-client 6)"
  _topo_run_hook "$client" eth0 client || return 1
  _topo_run_hook "$node" c0 node-client || return 1

  for ((i = 1; i <= TOPO_BACKENDS; i++)); do
    be=$(topo_ns backend "$i")
    _topo_add_ns "$be" || return 1
    _topo_link "$node" "b$i" "$be" eth0 || return 1
    ip -n "$node" addr add "$(topo_addr node-backend "$i")/24" dev "b$i"
    ip -n "$node" addr add "$(topo_addr node-backend "$i" 6)/64" dev "b$i" nodad
    ip -n "$be" addr add "$(topo_addr backend "$i")/24" dev eth0
    ip -n "$be" addr add "$(topo_addr backend "$i" 6)/64" dev eth0 nodad
    ip -n "$be" route add default via "$(topo_addr node-backend "$i")"
    ip -n "$be" -6 route add default via "$(topo_addr node-backend "$i" 6)"
    _topo_run_hook "$node" "b$i" node-backend || return 1
    _topo_run_hook "$be" eth0 backend || return 1
  done
}

# Stops what topo_spawn started, runs registered cleanups, deletes the
# namespaces (which deletes their veths). Safe to call twice.
topo_destroy() {
  local pid ns i
  for pid in "${_topo_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${_topo_pids[@]}"; do
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  _topo_pids=()
  for ((i = ${#_topo_cleanups[@]} - 1; i >= 0; i--)); do eval "${_topo_cleanups[$i]}" || true; done
  _topo_cleanups=()
  for ((i = ${#_topo_namespaces[@]} - 1; i >= 0; i--)); do
    ip netns del "${_topo_namespaces[$i]}" 2>/dev/null
  done
  _topo_namespaces=()
}

# Waits until a TCP port answers inside a namespace (a spawned server is up).
# topo_wait_port NS ADDR PORT [TIMEOUT_S]
topo_wait_port() {
  local ns=$1 addr=$2 port=$3 deadline=$((SECONDS + ${4:-5}))
  while ((SECONDS < deadline)); do
    if ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "topo_wait_port: nothing listening on $addr:$port in $ns after ${4:-5}s" >&2
  return 1
}

# shellcheck shell=bash
# Shared by tools/bench/l7_proxy.sh (HTTP/1.1) and tools/bench/h2_proxy.sh
# (HTTP/2): the nginx backends, sluice's Istio config for them, CPU counters,
# h2load's per-request log, and medians over rounds. The caller sets TMP (its
# temporary directory), PIDS (pids to stop on exit), BACKENDS (NAME:ADDR:WEIGHT
# entries; NAME is SUBSET-INSTANCE, e.g. v1-a), the command prefix IN_CLIENT
# and the function in_backend N, which sets the prefix IN_BACKEND for the Nth
# backend (empty arrays on the loopback path).

wait_port() {   # wait_port ADDR PORT, from the client's side
  for _ in $(seq 1 100); do "${IN_CLIENT[@]}" bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on $1:$2" >&2; cat "$TMP"/*.stderr "$TMP"/*.log >&2 2>/dev/null; exit 1
}
temp_paths() { echo "client_body_temp_path $1/b; proxy_temp_path $1/p; fastcgi_temp_path $1/f; uwsgi_temp_path $1/u; scgi_temp_path $1/s;"; }

# start_backends PORT [LISTEN_FLAGS]: one nginx per BACKENDS entry on
# ADDR:PORT, answering 200 "NAME\n" with an x-backend header. LISTEN_FLAGS
# (e.g. "http2" for h2c) go on the listen line. A request carrying
# `x-bench-probe: TAG` is logged as "TAG PROTOCOL" to $TMP/NAME/probe.log and
# nothing else is logged, so a sanity check can count requests per backend
# and per protocol without logging the measured traffic.
start_backends() {
  local port=$1 flags=${2:-} b name addr i=0
  for b in "${BACKENDS[@]}"; do
    IFS=: read -r name addr _ <<<"$b"
    i=$((i + 1))
    mkdir -p "$TMP/$name"
    cat >"$TMP/$name/nginx.conf" <<NGX
worker_processes 1; daemon off; master_process off; pid $TMP/$name/pid; error_log $TMP/$name/err;
events { worker_connections 4096; }
http { keepalive_requests 1000000; $(temp_paths "$TMP/$name")
  map \$http_x_bench_probe \$probe { "" 0; default 1; }
  log_format probe '\$http_x_bench_probe \$server_protocol';
  access_log $TMP/$name/probe.log probe if=\$probe;
  server { listen $addr:$port $flags; location / { add_header x-backend $name; return 200 "$name\n"; } } }
NGX
    in_backend "$i"   # not a function call in the background: $! must be nginx's own pid
    "${IN_BACKEND[@]}" nginx -c "$TMP/$name/nginx.conf" -p "$TMP/$name" >"$TMP/$name.stderr" 2>&1 & PIDS+=($!)
    wait_port "$addr" "$port"
  done
}

# probe_split TAG: "TAG N v1-share-% protocols" from the backends' probe logs.
probe_split() {
  local tag=$1 b name
  for b in "${BACKENDS[@]}"; do
    IFS=: read -r name _ <<<"$b"
    awk -v tag="$tag" -v subset="${name%-*}" '$1 == tag { print subset, $2 }' "$TMP/$name/probe.log" 2>/dev/null
  done | awk -v tag="$tag" '{ n++; if ($1 == "v1") v1++; proto[$2]++ }
    END { for (p in proto) protos = protos (protos ? "," : "") p "=" proto[p]
          printf "%s %d %.1f %s\n", tag, n, n ? 100 * v1 / n : 0, protos ? protos : "-" }'
}

# sluice_config ADDR PORT PROTOCOL: the productpage service (ServiceEntry on
# ADDR:PORT, declared PROTOCOL), its 70/30 v1/v2 route, round robin inside a
# subset, one WorkloadEntry per backend; into $TMP/sluice/productpage.yaml.
sluice_config() {
  local addr=$1 port=$2 protocol=$3 b name baddr
  mkdir -p "$TMP/sluice"
  {
    cat <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage}
spec:
  hosts: [productpage]
  addresses: [$addr]
  ports: [{number: $port, name: ${protocol,,}, protocol: $protocol}]
  resolution: STATIC
  workloadSelector: {labels: {app: productpage}}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - {destination: {host: productpage, subset: v1}, weight: 70}
    - {destination: {host: productpage, subset: v2}, weight: 30}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: productpage}
spec:
  host: productpage
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
YAML
    for b in "${BACKENDS[@]}"; do
      IFS=: read -r name baddr _ <<<"$b"
      printf -- '---\napiVersion: networking.istio.io/v1beta1\nkind: WorkloadEntry\nmetadata: {name: %s}\nspec: {address: %s, labels: {app: productpage, version: %s}}\n' \
        "$name" "$baddr" "${name%-*}"
    done
  } >"$TMP/sluice/productpage.yaml"
}

stop_pids() {   # every process in PIDS: TERM, then reaped
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# cap_cpu NAME PID SHARE: process PID (all its threads) may use at most SHARE of one
# CPU (e.g. 0.5), enforced by the kernel's CFS bandwidth control in a cgroup
# of its own, "$(basename "$TMP")-NAME", under the cgroup v2 root (cpu.max)
# or else the v1 cpu hierarchy (cpu.cfs_quota_us). The period is
# CPU_CAP_PERIOD_US (default 10000 µs; 2000 cost every proxy ~15-20% more
# CPU per request in one run, the throttling itself). uncap_cpu (on exit) removes the
# groups once their processes are gone. Every proxy capped alike makes each
# one the bottleneck of its own run: requests/s is then what the proxy does
# with that much CPU, whatever the load generator and the backends cost.
CPU_CGROUPS=()
# check_proxy_cpu: PROXY_CPU, when set, is a share of one CPU in (0, 1].
check_proxy_cpu() {
  [[ -z ${PROXY_CPU:-} ]] && return 0
  awk -v s="$PROXY_CPU" 'BEGIN { exit !(s ~ /^[0-9]*\.?[0-9]+$/ && s > 0 && s <= 1) }' && return 0
  echo "PROXY_CPU=$PROXY_CPU: give the share of one CPU each proxy may use, above 0 and at most 1 (e.g. 0.5)" >&2
  exit 1
}
cap_cpu() {
  local name=$1 pid=$2 share=$3 period=${CPU_CAP_PERIOD_US:-10000} quota dir
  quota=$(awk -v s="$share" -v p="$period" 'BEGIN { printf "%d", s * p }')
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
    grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
    dir=/sys/fs/cgroup/$(basename "$TMP")-$name
    mkdir "$dir" && echo "$quota $period" >"$dir/cpu.max"
  elif [[ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
    dir=/sys/fs/cgroup/cpu/$(basename "$TMP")-$name
    mkdir "$dir" && echo "$period" >"$dir/cpu.cfs_period_us" && echo "$quota" >"$dir/cpu.cfs_quota_us"
  else
    echo "cap_cpu: no cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us) to cap $name with" >&2
    exit 1
  fi
  CPU_CGROUPS+=("$dir")
  echo "$pid" >"$dir/cgroup.procs"   # every thread of the process, and those it starts later
}
uncap_cpu() {   # after the capped processes have exited
  local dir
  for dir in "${CPU_CGROUPS[@]}"; do rmdir "$dir" 2>/dev/null || echo "could not remove cgroup $dir" >&2; done
}
# The whole machine's CPU outside `nice` (user, system, irq, softirq): the
# proxy, the load generator, the backends and the kernel's veth/TCP work
# wherever it runs. Other users' niced builds are left out; their un-niced
# work is not.
node_ticks() { awk '$1 == "cpu" {print $2 + $4 + $7 + $8}' /proc/stat; }

# h2load_log_row NAME SECONDS LOG: "NAME requests/s p50-ms p99-ms non-200"
# from h2load's --log-file (one line per request: start µs, status, µs taken).
h2load_log_row() {
  local name=$1 seconds=$2 log=$3 bad
  bad=$(awk '$2 != 200' "$log" | wc -l)
  awk '$2 == 200 { print $3 / 1000 }' "$log" | sort -n |
    awk -v name="$name" -v d="$seconds" -v bad="$bad" '{ t[NR] = $1 }
      END { printf "%s %.0f %.3f %.3f %d\n", name, NR / d, t[int(NR * 0.50) + 1], t[int(NR * 0.99) + 1], bad }'
}

# medians FILE: per name (column 1, first-seen order), the median of every
# column over the rounds, except the last (errors), which is summed.
medians() {
  awk '{ n[$1]++; cols = NF; for (i = 2; i <= NF; i++) v[$1, i, n[$1]] = $i; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
    function median(name, col,   m, i, j, t, a) {
      m = n[name]; for (i = 1; i <= m; i++) a[i] = v[name, col, i]
      for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
    END { for (x = 1; x <= k; x++) { p = order[x]; line = p
            for (c = 2; c < cols; c++) line = line " " median(p, c)
            errors = 0; for (r = 1; r <= n[p]; r++) errors += v[p, cols, r]
            print line, errors } }' "$1"
}

# perf_top PERF_DATA NAME: where NAME's time went (self time): the top
# symbols, then the split by object (kernel, NAME, libraries).
perf_top() {
  echo "where $2's time goes (perf record -g, last sluice round; self time, top symbols):"
  perf report -i "$1" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n < 30 { sub(/( +-)* *$/, ""); print; n++ }'
  echo "by object (kernel, $2, libraries):"
  perf report -i "$1" --no-children --sort dso -g none --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n < 8 { sub(/( +-)* *$/, ""); print; n++ }'
}

# report TITLE FIXED_TITLE PERF_COMM [GOAL]: the closing report of a proxy
# benchmark from $TMP/results, $TMP/medians and $TMP/fixed (ROUNDS rounds,
# LOAD_BEFORE): per-round rows, the table of medians, ratios against HAProxy,
# nginx and the no-proxy ceiling, the fixed-rate table (skipped when
# FIXED_TITLE is empty) and, if $TMP/perf.data exists, PERF_COMM's profile.
# GOAL "met" or "not met" is printed for >= 1.3x HAProxy's requests/s at p99
# <= HAProxy's when GOAL is set, with a line saying so when that rate is above
# the no-proxy ceiling (unless PROXY_CPU capped the proxies).
report() {
  local title=$1 fixed_title=$2 comm=$3 goal=${4:-}
  if ((ROUNDS > 1)); then
    echo "per round (closed loop: name rps p50 p99 cpu node-cpu errors; fixed rate: name achieved p50 p99 errors):"
    cat "$TMP/results"
    if [[ -f $TMP/fixed ]]; then cat "$TMP/fixed"; fi   # absent with FIXED_RATE_SHARE=0
  fi
  echo "$title"
  echo "load average before/after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kernel $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
  printf '%-8s %12s %9s %9s %14s %15s %7s\n' proxy "requests/s" "p50 ms" "p99 ms" "CPU µs/req" "node µs/req" errors
  local name rps p50 p99 cpu node errors
  # With PROXY_CPU the node's CPU per request is left out of the capped
  # rows: /proc/stat samples the running task at each tick, and a task
  # throttled in step with the tick is mostly missed (HAProxy's came out
  # below its own CPU per request).
  while read -r name rps p50 p99 cpu node errors; do
    printf '%-8s %12.0f %9.3f %9.3f %14s %15s %7d\n' "$name" "$rps" "$p50" "$p99" \
      "$([[ $name == direct ]] && echo - || printf '%.2f' "$cpu")" \
      "$([[ -n ${PROXY_CPU:-} && $name != direct ]] && echo - || printf '%.2f' "$node")" "$errors"
  done <"$TMP/medians"
  awk -v goal="$goal" -v cap="${PROXY_CPU:-}" '{rps[$1] = $2; p99[$1] = $4; cpu[$1] = $5}
    END {
      printf "sluice/haproxy: throughput %.2fx, p99 %.2fx, CPU/req %.2fx\n", rps["sluice"] / rps["haproxy"], p99["sluice"] / p99["haproxy"], cpu["sluice"] / cpu["haproxy"]
      printf "sluice/nginx:   throughput %.2fx, p99 %.2fx, CPU/req %.2fx\n", rps["sluice"] / rps["nginx"], p99["sluice"] / p99["nginx"], cpu["sluice"] / cpu["nginx"]
      printf "sluice/direct:  throughput %.2fx of the no-proxy ceiling\n", rps["sluice"] / rps["direct"]
      if (goal != "") {
        printf "goal (>= 1.3x HAProxy requests/s at p99 <= HAProxy p99): %s\n", \
          (rps["sluice"] >= 1.3 * rps["haproxy"] && p99["sluice"] <= p99["haproxy"]) ? "met" : "not met"
        # Uncapped, every process shares the machine: a proxy cannot pass
        # the no-proxy ceiling, whatever it costs.
        if (cap == "" && 1.3 * rps["haproxy"] > rps["direct"])
          printf "  1.3x HAProxy is %.0f requests/s, above the no-proxy ceiling of %.0f in this run: no proxy reaches it on this machine (PROXY_CPU caps each proxy alike)\n", 1.3 * rps["haproxy"], rps["direct"]
      }
    }' "$TMP/medians"
  if [[ -n $fixed_title ]]; then
    echo "$fixed_title"
    printf '%-8s %12s %9s %9s %7s\n' proxy "achieved/s" "p50 ms" "p99 ms" errors
    medians "$TMP/fixed" | awk '{ printf "%-8s %12.0f %9.3f %9.3f %7d\n", $1, $2, $3, $4, $5; p99[$1] = $4 }
      END { printf "sluice/haproxy at equal load: p99 %.2fx\n", p99["sluice"] / p99["haproxy"] }'
  fi
  if [[ -f $TMP/perf.data ]]; then
    [[ -n ${PERF_KEEP:-} ]] && cp "$TMP/perf.data" "$PERF_KEEP"
    perf_top "$TMP/perf.data" "$comm"
  fi
}

# node_path NAME: the path users have (tests/integration/lib/topology.sh): a
# client namespace, a node namespace and four backend namespaces behind
# their own veths, named "NAME-$$"; the EXIT trap removes them, after the
# caller's `cleanup`. Sets IN_CLIENT, IN_NODE (nsenter, not `ip netns exec`,
# which mounts a fresh /sys without the bpffs sluiced pins in), in_backend,
# PIN (sluiced's pin dir), BACKENDS and the proxies' addresses: sluice on the
# service VIP 10.96.0.10:PORT, HAProxy and nginx on the node's client-side
# address, ports PORT+1 and PORT+2. Needs PORT.
node_path() {
  # shellcheck source=../../tests/integration/lib/topology.sh
  source tests/integration/lib/topology.sh
  topo_on_cleanup cleanup            # topo_destroy (the EXIT trap) runs it before deleting the namespaces
  topo_create "$1-$$" 4 || { echo "topology setup failed" >&2; exit 1; }
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf   # sluiced pins its maps there
  PIN=/sys/fs/bpf/$1-$$
  IN_CLIENT=(ip netns exec "$(topo_ns client)")
  IN_NODE=(nsenter --net="/run/netns/$(topo_ns node)")
  in_backend() { IN_BACKEND=(ip netns exec "$(topo_ns backend "$1")"); }
  BACKENDS=("v1-a:$(topo_addr backend 1):35" "v1-b:$(topo_addr backend 2):35"
            "v2-a:$(topo_addr backend 3):15" "v2-b:$(topo_addr backend 4):15")
  SLUICE_ADDR=10.96.0.10 HAPROXY_ADDR=$(topo_addr node-client) NGINX_ADDR=$(topo_addr node-client) DIRECT_ADDR=$(topo_addr backend 1)
  HAPROXY_PORT=$((PORT + 1)) NGINX_PORT=$((PORT + 2))
}

# start_sluiced: sluiced ($SLUICE) as a node runs it, in the node namespace:
# XDP on the node's veths (SLUICE_XDP=0: none; the L7 VIP needs only
# sk_lookup and the local route sluiced adds), the VIP through sk_lookup, one
# proxy worker, its admin API on the node's loopback; config from
# $TMP/sluice, log in $TMP/sluice.log. Run it in the caller's shell (not in a
# subshell) and take $! after it: the pid is sluiced's own.
start_sluiced() {
  local ifaces=() i
  if [[ ${SLUICE_XDP:-1} != 0 ]]; then
    ifaces=(--iface c0)
    for i in 1 2 3 4; do ifaces+=(--iface "b$i"); done
  fi
  "${IN_NODE[@]}" "$SLUICE" --config-dir "$TMP/sluice" --pin-dir "$PIN" "${ifaces[@]}" --admin 127.0.0.1:15000 \
    --admin-socket "$TMP/admin.sock" --workers 1 >"$TMP/sluice.log" 2>&1 &
}

# Shared setup for the L7 integration tests (sourced). Everything runs on
# loopback addresses 127.77.0.0/16 so it cannot collide with other suites;
# every process started here is tracked by pid and stopped on exit.
set -euo pipefail

L7_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
L7_BUILD=${MESON_BUILD_ROOT:-$L7_SRC/../../build}
L7_PROXY_BIN=${SLUICE_L7_PROXY:-$L7_BUILD/userspace/proxy/sluice-l7-proxy}
L7_TMP=$(mktemp -d /tmp/slc-l7.XXXXXX)
L7_PIDS=()
L7_PROXY_PID=

l7_skip_or_fail() {   # a missing tool: skip (77) outside CI, fail in CI
  echo "SKIP: $*" >&2
  if [[ ${CI:-} == true ]]; then exit 1; fi
  exit 77
}

l7_cleanup() {
  local pid
  for pid in "${L7_PIDS[@]}" $L7_PROXY_PID; do kill "$pid" 2>/dev/null || true; done
  for pid in "${L7_PIDS[@]}" $L7_PROXY_PID; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$L7_TMP"
}
trap l7_cleanup EXIT

for tool in curl nginx python3; do command -v "$tool" >/dev/null || l7_skip_or_fail "$tool not installed"; done
[[ -x $L7_PROXY_BIN ]] || { echo "FAIL: $L7_PROXY_BIN not built" >&2; exit 1; }

l7_wait_port() {   # ADDR PORT: wait up to 5 s for a listener
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "FAIL: nothing listens on $1:$2" >&2
  exit 1
}

# l7_nginx NAME ADDR PORT [LISTEN_OPTIONS]: an nginx answering 200 "NAME"
# with x-backend: NAME, and at /connection its connection's serial number
# ($connection). LISTEN_OPTIONS: e.g. `http2` for an h2c backend.
l7_nginx() {
  local name=$1 addr=$2 port=$3 options=${4:-} dir=$L7_TMP/nginx-$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<NGX
worker_processes 1;
master_process off;   # one process: SIGKILL takes the backend down at once
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  server {
    listen $addr:$port $options;
    location / { add_header x-backend $name always; return 200 "$name\n"; }
    location = /connection { add_header x-backend $name always; return 200 "\$connection\n"; }
    location /status/503 { add_header x-backend $name always; return 503 "$name\n"; }
  }
}
NGX
  nginx -c "$dir/nginx.conf" -p "$dir" 2>"$dir/stderr" &
  L7_PIDS+=($!)
  eval "L7_PID_${name//-/_}=$!"
  l7_wait_port "$addr" "$port"
}

# l7_pybackend NAME ADDR PORT [l7_backend.py options]: the recording backend.
l7_pybackend() {
  local name=$1 addr=$2 port=$3
  shift 3
  python3 "$L7_SRC/l7_backend.py" --name "$name" --listen "$addr:$port" "$@" 2>"$L7_TMP/py-$name.log" &
  L7_PIDS+=($!)
  eval "L7_PID_${name//-/_}=$!"
  l7_wait_port "$addr" "$port"
}

# l7_test_backend NAME ADDR PORT: the project's sluice-test-backend
# (SLUICE_TEST_BACKEND, else the build's), answering HTTP on ADDR:PORT; its
# /echo reports each request's connection (peer, serial) and ?delay_ms=N
# holds the answer.
l7_test_backend() {
  local bin=${SLUICE_TEST_BACKEND:-$L7_BUILD/tools/sluice-test-backend}
  [[ -x $bin ]] || l7_fail "$bin not built"
  "$bin" --name "$1" --http "$3" --bind "$2" 2>"$L7_TMP/backend-$1.log" &
  L7_PIDS+=($!)
  l7_wait_port "$2" "$3"
}

# l7_productpage_config DIR PORT: ServiceEntry productpage on PORT with four
# WorkloadEntries (v1-a, v1-b, v2-a, v2-b at 127.77.1{1..4}.2) and a
# DestinationRule with subsets v1/v2; the test appends its VirtualService
# and any trafficPolicy to DIR/*.yaml.
l7_productpage_config() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/service.yaml" <<YAML
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  addresses: [10.96.0.10]
  ports:
  - {number: $port, name: http, protocol: HTTP}
  resolution: STATIC
  workloadSelector:
    labels: {app: productpage}
YAML
  local n i=11
  for n in v1-a v1-b v2-a v2-b; do
    cat >>"$dir/service.yaml" <<YAML
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: productpage-$n, namespace: default}
spec:
  address: 127.77.$i.2
  labels: {app: productpage, version: ${n%-*}}
YAML
    i=$((i + 1))
  done
}

# l7_virtual_service < HTTP_ROUTES: the VirtualService for productpage whose
# `http:` list is read from stdin (already indented by two spaces).
l7_virtual_service() {
  printf 'apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: productpage}\n'
  printf 'spec:\n  hosts: [productpage]\n  http:\n'
  cat
}

# l7_subsets_rule [--policy FLOW_YAML] VERSION...: a DestinationRule for
# productpage with one subset per VERSION (named after it, selecting label
# version: VERSION) and, with --policy, that trafficPolicy (in YAML flow
# style), as a YAML document to append after a VirtualService.
l7_subsets_rule() {
  printf -- '---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: productpage}\n'
  printf 'spec:\n  host: productpage\n'
  if [[ ${1:-} == --policy ]]; then
    printf '  trafficPolicy: %s\n' "$2"
    shift 2
  fi
  printf '  subsets:\n'
  local v
  for v in "$@"; do printf '  - {name: %s, labels: {version: %s}}\n' "$v" "$v"; done
}

# l7_proxy CONFIG_DIR LISTEN_ADDR:PORT SERVICE_PORT [extra flags]
l7_proxy() {
  local dir=$1 listen=$2 sport=$3
  shift 3
  "$L7_PROXY_BIN" --config-dir "$dir" --listen "$listen=productpage:$sport" --metrics-out "$L7_TMP/metrics.txt" \
    "$@" 2>"$L7_TMP/proxy.log" &
  L7_PROXY_PID=$!
  l7_wait_port "${listen%:*}" "${listen##*:}"
}

l7_stop_proxy() {   # drains; metrics land in $L7_TMP/metrics.txt
  kill -TERM "$L7_PROXY_PID"
  wait "$L7_PROXY_PID" || true
  L7_PROXY_PID=
}

l7_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

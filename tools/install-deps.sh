#!/usr/bin/env bash
# Installs what sluice needs from Debian 12's archive. Safe to run again: it
# only calls apt when a package is missing. docs/dependencies.md says why each
# one is here.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config g++ clang llvm bpftool
  # libraries
  libbpf-dev libelf-dev zlib1g-dev libmnl-dev liburing-dev libyaml-cpp-dev libre2-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libboost-dev
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev
  libdpdk-dev dpdk
  libnghttp2-dev   # HTTP/2 framing, HPACK and flow control for the L7 proxy's h2c clients
  libh2o-evloop0.13   # picohttpparser's phr_* tokenizer for userspace/http (docs/dependencies.md)
  libcurl4-openssl-dev   # userspace/k8s: the Kubernetes API server client
  # tests, demo and benchmarks: real network tools, clients and servers
  iproute2 iptables nftables ethtool curl wrk nghttp2-client nginx-light haproxy
  procps psmisc python3
  python3-yaml openssl   # the Kubernetes tests: manifest checks, the fake API server's TLS certificate
  python3-grpcio   # real gRPC clients and servers for the gRPC tests (agent_grpc, agent_http2_upstream, agent_grpc_streaming)
  # tests of the operator views: sluicectl top in a terminal, /ui in a headless browser
  tmux chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "sluice: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Debian nginx/haproxy services are not ours; tests start their own.
for svc in nginx haproxy; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

# Debian's kubectl (kubernetes-client) for the Kubernetes tests. Where another
# package owns /usr/bin/kubectl (a Google Cloud SDK image ships one), unpack
# Debian's package beside it instead of replacing that one; the tests look in
# both places for kubectl 1.20.
kubectl_dir=/usr/local/lib/sluice/kubernetes-client
if ! dpkg-query -W -f='${Status}' kubernetes-client 2>/dev/null | grep -q "install ok installed" &&
  [[ ! -x "$kubectl_dir/usr/bin/kubectl" ]]; then
  owner=$(dpkg-query -S /usr/bin/kubectl 2>/dev/null | cut -d: -f1 || true)
  if [[ -z "$owner" ]]; then
    echo "sluice: installing kubernetes-client"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client
  else
    echo "sluice: /usr/bin/kubectl belongs to $owner; unpacking kubernetes-client into $kubectl_dir"
    tmp=$(mktemp -d)
    chmod 755 "$tmp"   # apt's download user must be able to write there
    apt-get update -q
    (cd "$tmp" && apt-get download -q kubernetes-client)
    mkdir -p "$kubectl_dir"
    dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$kubectl_dir"
    rm -rf -- "$tmp"
  fi
fi

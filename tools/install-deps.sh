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
  libh2o-evloop0.13   # picohttpparser's phr_* tokenizer for userspace/http (docs/dependencies.md)
  # tests, demo and benchmarks: real network tools, clients and servers
  iproute2 iptables nftables ethtool curl wrk nghttp2-client nginx-light haproxy
  procps psmisc python3
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

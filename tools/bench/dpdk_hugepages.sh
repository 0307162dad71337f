#!/usr/bin/env bash
# Reserves and mounts the 2 MB hugepages sluice-fwd needs, or releases them.
#
#   tools/bench/dpdk_hugepages.sh reserve [PAGES]   # default 256 (512 MB)
#   tools/bench/dpdk_hugepages.sh release
#
# Reserving only ever raises nr_hugepages (other users' pages are kept);
# release returns the pages this script added (recorded in a state file).
# Small test runs need none of this: sluice-fwd --no-huge -m 256 ...
set -euo pipefail
state=/run/sluice/dpdk-hugepages.added
nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
mnt=/dev/hugepages

[[ $EUID -eq 0 ]] || { echo "dpdk_hugepages: needs root (writes $nr, mounts $mnt)" >&2; exit 1; }
[[ -w $nr ]] || { echo "dpdk_hugepages: $nr missing: kernel without 2 MB hugepages" >&2; exit 1; }

case "${1:-}" in
  reserve)
    want=${2:-256}
    have=$(cat "$nr")
    if ((have < want)); then
      echo "$want" >"$nr"
      got=$(cat "$nr")
      mkdir -p "$(dirname "$state")"
      echo $((got - have)) >"$state"
      ((got >= want)) || echo "dpdk_hugepages: asked for $want pages, the kernel gave $got (memory fragmented?)" >&2
    fi
    mountpoint -q "$mnt" || { mkdir -p "$mnt" && mount -t hugetlbfs -o pagesize=2M nodev "$mnt"; }
    echo "hugepages: $(cat "$nr") x 2 MB, mounted at $mnt"
    ;;
  release)
    if [[ -f $state ]]; then
      added=$(cat "$state")
      echo $(($(cat "$nr") - added)) >"$nr"
      rm -f "$state"
    fi
    echo "hugepages: $(cat "$nr") x 2 MB"
    ;;
  *)
    echo "usage: $0 reserve [PAGES] | release" >&2
    exit 2
    ;;
esac

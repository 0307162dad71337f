#include "bpfmaps/conntrack_reaper.h"

#include <bpf/bpf.h>
#include <netinet/in.h>
#include <time.h>

#include <cerrno>
#include <vector>

#include "bpfmaps/bpf_datapath.h"
#include "sluice/datapath_structs.h"

namespace sluice::bpfmaps {
namespace {

uint64_t monotonic_ns() {   // the program stamps last_seen with CLOCK_MONOTONIC (coarse: at most a tick behind this)
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// The XDP program's rule (bpf/conntrack.h, conntrack_timeout).
bool expired(const DatapathOptions& o, const sluice_flow_key& key, const sluice_ct_entry& ct, uint64_t now) {
  const bool tcp = key.proto == IPPROTO_TCP;
  const uint64_t limit = (ct.flags & SLUICE_CT_F_CLOSING) || (tcp && !(ct.flags & SLUICE_CT_F_REPLIED))
                             ? o.closing_ns
                             : (tcp ? o.tcp_idle_ns : o.udp_idle_ns);
  return now > ct.last_seen_ns && now - ct.last_seen_ns > limit;
}

struct LoadCounts {
  uint64_t opened, closed, reaped;
};

std::vector<LoadCounts> read_loads(const sluice_backend_load* load, uint32_t n) {
  std::vector<LoadCounts> out(n);
  for (uint32_t i = 0; i < n; ++i)
    out[i] = {__atomic_load_n(&load[i].l4_opened, __ATOMIC_RELAXED),
              __atomic_load_n(&load[i].l4_closed, __ATOMIC_RELAXED),
              __atomic_load_n(&load[i].l4_reaped, __ATOMIC_RELAXED)};
  return out;
}

}  // namespace

ReapResult reap_conntrack(BpfDatapath& datapath, bool reconcile_evictions) {
  ReapResult result;
  sluice_backend_load* load = datapath.backend_load();
  const uint32_t backends = datapath.max_entries(MapRole::BackendLoad);
  const int fd = datapath.fd_of(MapRole::Conntrack);
  const DatapathOptions& options = datapath.options();
  const std::vector<LoadCounts> before = reconcile_evictions ? read_loads(load, backends) : std::vector<LoadCounts>{};
  std::vector<uint64_t> live(backends, 0);
  std::vector<sluice_flow_key> stale;

  constexpr uint32_t kBatch = 4096;
  std::vector<sluice_flow_key> keys(kBatch);
  std::vector<sluice_ct_entry> values(kBatch);
  sluice_flow_key out_batch{};
  void* in_batch = nullptr;
  const uint64_t now = monotonic_ns();
  for (;;) {
    uint32_t count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int rc = bpf_map_lookup_batch(fd, in_batch, &out_batch, keys.data(), values.data(), &count, &opts);
    for (uint32_t i = 0; i < count; ++i) {
      ++result.walked;
      if (expired(options, keys[i], values[i], now)) stale.push_back(keys[i]);
      else if (!(values[i].flags & SLUICE_CT_F_CLOSING) && values[i].backend_id < backends) ++live[values[i].backend_id];
    }
    if (rc) break;   // ENOENT: the walk is complete (count valid); another error: stop here
    in_batch = &out_batch;
  }

  for (const sluice_flow_key& key : stale) {
    sluice_ct_entry last{};
    if (bpf_map_lookup_and_delete_elem(fd, &key, &last) != 0) continue;   // gone meanwhile
    if (!expired(options, key, last, monotonic_ns())) {
      // A packet refreshed it between the walk and the delete: put it back.
      bpf_map_update_elem(fd, &key, &last, BPF_NOEXIST);
      if (!(last.flags & SLUICE_CT_F_CLOSING) && last.backend_id < backends) ++live[last.backend_id];
      continue;
    }
    ++result.expired;
    if (last.flags & SLUICE_CT_F_CLOSING || last.backend_id >= backends) continue;
    __atomic_fetch_add(&load[last.backend_id].l4_reaped, 1, __ATOMIC_RELAXED);
    ++result.reaped;
  }

  if (reconcile_evictions) {
    const std::vector<LoadCounts> after = read_loads(load, backends);
    for (uint32_t id = 1; id < backends; ++id) {
      // opened before the walk, minus every close counted up to its end,
      // minus the flows seen live: what is left ended unseen (evicted).
      const uint64_t gone = after[id].closed + after[id].reaped + live[id];
      if (before[id].opened <= gone) continue;
      const uint64_t evicted = before[id].opened - gone;
      __atomic_fetch_add(&load[id].l4_reaped, evicted, __ATOMIC_RELAXED);
      result.evicted += evicted;
    }
  }
  return result;
}

}  // namespace sluice::bpfmaps

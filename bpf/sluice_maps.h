/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps of the XDP steering program. All pinned by name under the pin
 * directory by the loader (userspace/bpfmaps), so a restarted agent re-uses
 * them. Every max_entries below is a default: the loader sets the real size
 * before load (userspace/bpfmaps/datapath_tables.h, sized_max_entries), so no
 * code here may treat a SLUICE_MAX_* constant as a map's bound. */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "sluice/datapath_structs.h"

/* Generation word and knobs; mmapable so the generation flips with one store. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_ctrl);
} sluice_ctrl SEC(".maps");

/* {VIP, port, proto, half} -> service port routes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * SLUICE_MAX_SERVICES);
	__type(key, struct sluice_service_key);
	__type(value, struct sluice_service);
} sluice_services SEC(".maps");

/* {VIP, half} -> 1: tells fragments/options/extension headers to a VIP apart. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * SLUICE_MAX_VIPS);
	__type(key, struct sluice_vip_key);
	__type(value, __u32);
} sluice_vips SEC(".maps");

/* {client address, half} -> client namespace id: read for a new flow to a
 * service port whose default entry has SLUICE_SERVICE_F_VIEWS. Sized like
 * the backends (--max-backends per half). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * SLUICE_MAX_BACKENDS);
	__type(key, struct sluice_client_key);
	__type(value, __u32);
} sluice_client_namespaces SEC(".maps");

/* The config arrays below (subsets, members, schedule, Maglev, backends) are
 * mmapable so the DPDK forwarder reads them in place, with no syscall; the
 * program's lookups are the same either way. */

/* Subsets of both halves (absolute index). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * SLUICE_MAX_SUBSETS);
	__type(key, __u32);
	__type(value, struct sluice_subset);
} sluice_subsets SEC(".maps");

/* Subset members (backend id + weight) of both halves. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * SLUICE_MAX_MEMBERS);
	__type(key, __u32);
	__type(value, struct sluice_member);
} sluice_members SEC(".maps");

/* Smooth WRR cycles (backend ids) of both halves. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * SLUICE_MAX_SCHEDULE);
	__type(key, __u32);
	__type(value, __u32);
} sluice_schedule SEC(".maps");

/* Maglev lookup tables (backend ids) of both halves; size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * SLUICE_MAGLEV_DEFAULT_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} sluice_maglev SEC(".maps");

/* Round-robin cursors, one per subset slot, advanced atomically. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} sluice_rr_cursor SEC(".maps");

/* Backend id -> address, port, liveness (id 0 unused). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sluice_backend);
} sluice_backends SEC(".maps");

/* Backend id -> load figures shared with the L7 agent (mmapable). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sluice_backend_load);
} sluice_backend_load SEC(".maps");

/* Client -> VIP flow -> chosen backend; size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_DEFAULT_FLOWS);
	__type(key, struct sluice_flow_key);
	__type(value, struct sluice_ct_entry);
} sluice_conntrack SEC(".maps");

/* Backend -> client flow -> VIP to restore; size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_DEFAULT_FLOWS);
	__type(key, struct sluice_flow_key);
	__type(value, struct sluice_rnat_entry);
} sluice_reverse_nat SEC(".maps");

/* ifindex -> attach facts (generic mode changes checksum handling). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct sluice_iface);
} sluice_ifaces SEC(".maps");

/* Addresses that may be a service's (VIPs, backend address:ports): a bitmap
 * tested before the hash lookups (datapath_structs.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_addr_filter);
} sluice_addr_filter SEC(".maps");

/* Per-CPU counters per service stat slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_STAT_SLOTS);
	__type(key, __u32);
	__type(value, struct sluice_counters);
} sluice_service_stats SEC(".maps");

/* Per-CPU counters per subset stat slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_STAT_SLOTS);
	__type(key, __u32);
	__type(value, struct sluice_counters);
} sluice_subset_stats SEC(".maps");

/* Per-CPU counters per backend id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sluice_counters);
} sluice_backend_stats SEC(".maps");

/* Per-CPU global counters, SLUICE_G_* index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_G_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} sluice_global_stats SEC(".maps");

#endif

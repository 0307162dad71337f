/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Keys and values of the L4 datapath maps. Plain C on <linux/types.h>: no
 * bool, enums or pointers; padding is explicit so BPF, C and C++ agree on
 * every byte (userspace/bpfmaps/abi_checks.cc static_asserts sizes and
 * offsets). Addresses and ports are in network byte order; an IPv4 address
 * lives in addr[0] with addr[1..3] zero.
 *
 * Backend id 0 is reserved as "none": BPF arrays start zeroed, so a zero id
 * read from an unwritten schedule, Maglev or member slot can never be taken
 * for a real backend. Real ids start at 1.
 *
 * Table halves: every table the per-packet decision reads exists twice.
 * Service keys carry the half they belong to (generation 0 or 1); subset,
 * member, schedule and Maglev entries live in the index range of their half,
 * and the indices stored in a half only point into the same half. Userspace
 * writes the inactive half, then adds one to sluice_ctrl.generation (a
 * counter: its low bit is the active half, and a reader that copies tables
 * outside the datapath, like the DPDK forwarder, sees any flip as a new
 * value); the program reads the generation once per packet. Backends (by stable id), conntrack
 * and counters are not halved.
 */
#ifndef SLUICE_DATAPATH_STRUCTS_H
#define SLUICE_DATAPATH_STRUCTS_H

#include <linux/types.h>

#include "sluice/datapath_consts.h"

/* sluice_services key: one service port in one table half. */
struct sluice_service_key {
	__u32 vip[4];
	__u16 port;
	__u8 proto;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;      /* SLUICE_FAMILY_V4 / _V6 */
	__u8 generation;  /* table half, 0 or 1 */
	__u8 pad;
	/* 0: the service's default view, which every client gets unless the
	 * default entry has SLUICE_SERVICE_F_VIEWS and the client's source
	 * address maps to a client namespace (sluice_client_namespaces) with an
	 * entry of its own here (docs/bpf-datapath.md, "Client views"). */
	__u16 client_namespace;
};

/* sluice_services value: the weighted route destinations of a service port. */
struct sluice_service {
	__u32 stat_id;    /* index into sluice_service_stats */
	__u16 flags;      /* SLUICE_SERVICE_F_* */
	__u8 route_count; /* valid entries in route_bound/route_subset */
	__u8 pad;
	__u64 identity;   /* hash of "service|port/proto": re-maps stat ids after a restart */
	/* Cumulative upper bounds on SLUICE_ROUTE_SCALE: route i is picked when
	 * the route hash slice h satisfies bound[i-1] <= h < bound[i]. A
	 * zero-weight route has bound equal to its predecessor. */
	__u32 route_bound[SLUICE_MAX_ROUTES];
	__u32 route_subset[SLUICE_MAX_ROUTES];  /* absolute index into sluice_subsets */
};

/* sluice_vips key: a VIP address in one table half (classifies fragments). */
struct sluice_vip_key {
	__u32 addr[4];
	__u8 family;
	__u8 generation;
	__u8 pad[2];
};

/* sluice_client_namespaces key: a client (source) address in one table
 * half. Value: its client namespace id (__u32, 1..65535), valid in that half
 * only. Only the addresses of namespaces that some service port routes
 * otherwise than its default view are written. */
struct sluice_client_key {
	__u32 addr[4];
	__u8 family;
	__u8 generation;
	__u8 pad[2];
};

/* sluice_subsets value: one subset of one service port and its policy. */
struct sluice_subset {
	__u32 stat_id;         /* index into sluice_subset_stats */
	__u8 policy;           /* SLUICE_POLICY_* */
	__u8 hash_source;      /* SLUICE_HASH_* (Maglev) */
	__u16 pad0;
	__u32 member_first;    /* absolute index into sluice_members */
	__u32 member_count;
	__u32 schedule_first;  /* absolute index into sluice_schedule */
	__u32 schedule_len;    /* one smooth WRR cycle */
	__u32 maglev_first;    /* absolute index into sluice_maglev */
	__u32 maglev_len;      /* prime table size, 0 unless policy is MAGLEV */
	__u32 rr_slot;         /* index into sluice_rr_cursor */
	__u32 pad1;
	__u64 identity;        /* hash of "service|port|subset": re-maps stat ids after a restart */
};

/* sluice_members value: one backend of a subset. */
struct sluice_member {
	__u32 backend_id;
	__u32 weight;          /* WorkloadEntry weight, >= 1 */
};

/* sluice_backends value, indexed by backend id. */
struct sluice_backend {
	__u32 addr[4];
	__u16 port;            /* port the backend listens on */
	__u8 family;
	__u8 proto;
	__u8 flags;            /* SLUICE_BACKEND_F_* */
	__u8 pad[3];
};

/* sluice_backend_load value, indexed by backend id; mmapable and shared with
 * the L7 agent. Monotonic counters only (Cilium lb_lc style): active L4
 * connections are l4_opened - l4_closed - l4_reaped (sluice_l4_active), so
 * nobody ever decrements. */
struct sluice_backend_load {
	__u64 l7_active;       /* active L7 requests, written by the agent */
	__u64 l4_opened;       /* flows XDP steered to this backend */
	__u64 l4_closed;       /* of those, flows that saw FIN/RST, expired or re-steered */
	__u64 l4_reaped;       /* flows the agent found expired or evicted without a close (agent only) */
};

/* Open L4 flows of a backend from its monotonic counters. Read without a
 * lock, the sum of the closes may momentarily pass the opens: 0 then. */
static inline __u64 sluice_l4_active(__u64 opened, __u64 closed, __u64 reaped)
{
	return opened > closed + reaped ? opened - closed - reaped : 0;
}

/* Conntrack key (both sluice_conntrack and sluice_reverse_nat): a flow as seen
 * on the wire in the direction the map describes. */
struct sluice_flow_key {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

/* sluice_conntrack value: client -> VIP flow and the backend it was given. */
struct sluice_ct_entry {
	__u64 last_seen_ns;    /* CLOCK_MONOTONIC (XDP: bpf_ktime_get_coarse_ns()), refreshed at most once per SLUICE_CT_REFRESH_NS */
	__u32 backend_id;
	__u32 service_stat;
	__u32 subset_stat;
	__u16 flags;           /* SLUICE_CT_F_* */
	__u16 pad;
};

/* sluice_reverse_nat value: backend -> client flow and the VIP to restore. */
struct sluice_rnat_entry {
	__u64 last_seen_ns;
	__u32 vip[4];
	__u16 vip_port;
	__u16 flags;           /* SLUICE_CT_F_REPLIED once the backend answered */
	__u32 backend_id;
	__u32 service_stat;
	__u32 subset_stat;
};

/* sluice_ctrl value: the generation word and run-time knobs (mmapable). */
struct sluice_ctrl {
	__u32 generation;      /* flip counter, low bit = active half; one store by userspace */
	__u32 flags;           /* SLUICE_CTRL_F_* */
	__u32 hash_seed;       /* seed of every flow hash (same in every data plane) */
	__u32 steer_prog_id;   /* id of the loaded sluice_steer program (its redirect failures are counted) */
	__u64 tcp_idle_ns;
	__u64 udp_idle_ns;
	__u64 closing_ns;      /* timeout once FIN/RST was seen */
};

/* sluice_addr_filter value (one entry): a quick "certainly not ours" test
 * before the hash lookups, so traffic that is no service's costs little.
 * vips has the bit of every VIP address of either table half; replies the
 * bit of every backend address:port with an id (flows may still be tracked
 * to it). A clear bit for the destination and for the source:port means no
 * service and no reverse-NAT entry can match: XDP_PASS. A set bit proves
 * nothing (other addresses share it): the lookups decide. */
struct sluice_addr_filter {
	__u64 vips[SLUICE_ADDR_FILTER_BITS / 64];
	__u64 replies[SLUICE_ADDR_FILTER_BITS / 64];
};

/* The filter bit of an address (four words, network order as in the keys)
 * and a salt (0 for VIPs, the port as stored for backends). */
static inline __u32 sluice_addr_filter_bit(const __u32 *addr, __u32 salt)
{
	/* Fibonacci hashing: one multiply, the top bits (the XDP program's
	 * non-service path is a few ns; see docs/benchmarks.md). */
	__u32 h = (addr[0] ^ addr[1] ^ addr[2] ^ addr[3] ^ (salt << 16)) * 0x9e3779b1u;

	return h >> (32 - __builtin_ctz(SLUICE_ADDR_FILTER_BITS));
}

/* sluice_ifaces value, keyed by ifindex. */
struct sluice_iface {
	__u32 flags;           /* SLUICE_IFACE_F_* */
	__u32 pad;
};

/* Per-CPU counters per service, subset and backend. Active flows are
 * new_flows - closed_flows summed over CPUs. */
struct sluice_counters {
	__u64 packets_in;      /* client -> backend after DNAT */
	__u64 bytes_in;
	__u64 packets_out;     /* backend -> client after reverse NAT */
	__u64 bytes_out;
	__u64 new_flows;
	__u64 closed_flows;
	__u64 passthrough;     /* L7 or PASSTHROUGH packets handed to the kernel */
	__u64 resteered;       /* tracked flows moved because their backend left or expired */
	__u64 drop_no_backend;
	__u64 pad;
};

/* sluice_l7_services key (sk_lookup): an L7 VIP port. Value: listener slot. */
struct sluice_l7_key {
	__u32 vip[4];
	__u16 port;
	__u8 proto;
	__u8 family;
};

#endif

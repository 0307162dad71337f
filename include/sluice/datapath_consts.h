/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Limits, flags and codes of the L4 datapath ABI, shared by the BPF programs
 * (bpf/), the userspace table writer (userspace/bpfmaps/) and the DPDK
 * forwarder. Every limit can be overridden with -D at build time; the BPF
 * objects and userspace must then be built with the same value.
 */
#ifndef SLUICE_DATAPATH_CONSTS_H
#define SLUICE_DATAPATH_CONSTS_H

/* Default pin directory for maps and links (bpffs). Tests use their own. */
#ifndef SLUICE_DEFAULT_PIN_DIR
#define SLUICE_DEFAULT_PIN_DIR "/sys/fs/bpf/sluice"
#endif

/* Weighted route destinations per service port (VirtualService route entries). */
#ifndef SLUICE_MAX_ROUTES
#define SLUICE_MAX_ROUTES 8
#endif

/* Route weights are cumulative bounds on this scale; a 16-bit hash slice picks. */
#ifndef SLUICE_ROUTE_SCALE
#define SLUICE_ROUTE_SCALE 65536
#endif

/*
 * Map sizes. The values below are only the defaults: the loader sets every
 * size before load from sluiced's --max-services, --max-subsets,
 * --max-backends, --maglev-slots and --conntrack-flows
 * (userspace/bpfmaps/datapath_tables.h: sized_max_entries). The BPF code never
 * uses them as bounds: every index it follows goes through a map lookup,
 * which the kernel checks against the map's real size (NULL past the end).
 */

/* Service ports (VIP x port x protocol) per table half: --max-services. */
#ifndef SLUICE_MAX_SERVICES
#define SLUICE_MAX_SERVICES 16384
#endif

/* Distinct VIP addresses per table half (sized as --max-services). */
#ifndef SLUICE_MAX_VIPS
#define SLUICE_MAX_VIPS SLUICE_MAX_SERVICES
#endif

/* Subset entries per table half (one per service port x subset x family): --max-subsets. */
#ifndef SLUICE_MAX_SUBSETS
#define SLUICE_MAX_SUBSETS 32768
#endif

/* Subset member slots (backend id + weight) per table half (sized as --max-backends). */
#ifndef SLUICE_MAX_MEMBERS
#define SLUICE_MAX_MEMBERS 65536
#endif

/* Smooth weighted round-robin schedule slots per table half (4 x --max-backends). */
#ifndef SLUICE_MAX_SCHEDULE
#define SLUICE_MAX_SCHEDULE (4 * SLUICE_MAX_MEMBERS)
#endif

/* Longest smooth WRR cycle of one subset; larger weight sums are scaled down. */
#ifndef SLUICE_MAX_SCHEDULE_PER_SUBSET
#define SLUICE_MAX_SCHEDULE_PER_SUBSET 4096
#endif

/* Default Maglev table size per subset (prime, as Envoy's default). */
#ifndef SLUICE_MAGLEV_DEFAULT_SIZE
#define SLUICE_MAGLEV_DEFAULT_SIZE 65537
#endif

/* Default Maglev slots per table half: room for 8 default-size tables (--maglev-slots). */
#ifndef SLUICE_MAGLEV_DEFAULT_SLOTS
#define SLUICE_MAGLEV_DEFAULT_SLOTS (8 * SLUICE_MAGLEV_DEFAULT_SIZE)
#endif

/* Backend ids (id 0 is reserved as "none", see datapath_structs.h): --max-backends. */
#ifndef SLUICE_MAX_BACKENDS
#define SLUICE_MAX_BACKENDS 65536
#endif

/* Default conntrack size in flows (forward and reverse-NAT maps each): --conntrack-flows. */
#ifndef SLUICE_CT_DEFAULT_FLOWS
#define SLUICE_CT_DEFAULT_FLOWS 262144
#endif

/* Counter slots the BPF object declares for services and subsets (slot 0
 * collects unattributed counts); the loader sizes them as --max-services + 1
 * and --max-subsets + 1. Readers of pinned maps take the pinned size. */
#ifndef SLUICE_MAX_STAT_SLOTS
#define SLUICE_MAX_STAT_SLOTS (SLUICE_MAX_SUBSETS + 1)
#endif

/* Bits in each half of sluice_addr_filter (a power of two, at most 65536). */
#ifndef SLUICE_ADDR_FILTER_BITS
#define SLUICE_ADDR_FILTER_BITS 32768
#endif

/* Listener sockets the sk_lookup program can hand L7 traffic to. */
#ifndef SLUICE_MAX_L7_LISTENERS
#define SLUICE_MAX_L7_LISTENERS 16
#endif

/* Listener slots by address family: the sk_lookup program can only hand a
 * connection to a socket of its own family, so IPv4 VIPs go to the agent's
 * IPv4 listener and IPv6 VIPs to its IPv6 one. */
#define SLUICE_L7_LISTENER_V4 0
#define SLUICE_L7_LISTENER_V6 1

/* Interfaces the XDP program is attached to. */
#ifndef SLUICE_MAX_IFACES
#define SLUICE_MAX_IFACES 64
#endif

/* Default idle timeouts (nanoseconds). */
#ifndef SLUICE_DEFAULT_TCP_IDLE_NS
#define SLUICE_DEFAULT_TCP_IDLE_NS (3600ULL * 1000000000ULL)
#endif
#ifndef SLUICE_DEFAULT_UDP_IDLE_NS
#define SLUICE_DEFAULT_UDP_IDLE_NS (60ULL * 1000000000ULL)
#endif
#ifndef SLUICE_DEFAULT_CLOSING_NS
#define SLUICE_DEFAULT_CLOSING_NS (10ULL * 1000000000ULL)
#endif

/* Conntrack last_seen is refreshed at most this often per flow. */
#ifndef SLUICE_CT_REFRESH_NS
#define SLUICE_CT_REFRESH_NS 1000000000ULL
#endif

/* Longest L4 segment (header + payload) whose checksum the program can recompute. */
#ifndef SLUICE_MAX_CSUM_BYTES
#define SLUICE_MAX_CSUM_BYTES 4096
#endif

/* Address families as stored in keys (not AF_*: the same on every platform). */
#define SLUICE_FAMILY_V4 4
#define SLUICE_FAMILY_V6 6

/* sluice_subset.policy */
#define SLUICE_POLICY_ROUND_ROBIN   1
#define SLUICE_POLICY_RANDOM        2
#define SLUICE_POLICY_LEAST_REQUEST 3
#define SLUICE_POLICY_MAGLEV        4
#define SLUICE_POLICY_PASSTHROUGH   5

/* sluice_subset.hash_source (Maglev only) */
#define SLUICE_HASH_FIVE_TUPLE 0
#define SLUICE_HASH_SOURCE_IP  1

/* sluice_service.flags */
#define SLUICE_SERVICE_F_L7 0x0001   /* the L7 agent serves this port: XDP_PASS */
#define SLUICE_SERVICE_F_VIEWS 0x0002   /* some client namespaces have an entry of their own (a view) */

/* sluice_backend.flags */
#define SLUICE_BACKEND_F_LIVE 0x01   /* in the current snapshot; else tracked flows re-steer */

/* sluice_ct_entry.flags */
#define SLUICE_CT_F_CLOSING 0x0001   /* FIN or RST seen: short timeout, counted closed */
/* The backend answered. A TCP flow without it (a SYN to a dead or silent
 * backend) times out after closing_ns instead of the idle timeout, so it
 * stops counting toward least-request load within seconds. */
#define SLUICE_CT_F_REPLIED 0x0002

/* sluice_ctrl.flags */
#define SLUICE_CTRL_F_SKIP_FIB 0x0001   /* tests: XDP_TX after NAT, no bpf_fib_lookup */

/* sluice_iface.flags */
#define SLUICE_IFACE_F_GENERIC 0x0001   /* attached in generic (skb) mode */
/* A native XDP_REDIRECT into this device is delivered (its xdp-features
 * have NDO_XMIT: for a veth, the peer has an XDP program or GRO on). Set by
 * the agent's probe; a redirect target without it gets the rewritten packet
 * XDP_PASSed for the kernel to forward instead (docs/bpf-datapath.md). */
#define SLUICE_IFACE_F_REDIRECT_OK 0x0002

/* sluice_decision.action */
#define SLUICE_ACT_FORWARD          1
#define SLUICE_ACT_PASS_L7          2
#define SLUICE_ACT_PASS_PASSTHROUGH 3
#define SLUICE_ACT_DROP_NO_BACKEND  4

/* Salts that make the route pick and the in-subset pick independent. */
#define SLUICE_HASH_SALT_ROUTE  0x9e3779b9u
#define SLUICE_HASH_SALT_SUBSET 0x85ebca6bu

/* Global per-CPU counters (sluice_global_stats index). */
#define SLUICE_G_PACKETS             0   /* every packet seen */
#define SLUICE_G_PASS_NOT_IP         1   /* not IPv4/IPv6 (ARP, LLDP, ...) */
#define SLUICE_G_PASS_NOT_L4         2   /* IP but not TCP/UDP */
#define SLUICE_G_PASS_TRUNCATED      3   /* a header runs past the frame */
#define SLUICE_G_PASS_MALFORMED      4   /* IHL<5, doff<5, bad lengths */
#define SLUICE_G_PASS_NOT_SERVICE    5   /* no VIP:port and no reverse-NAT entry */
#define SLUICE_G_PASS_IP_OPTIONS     6   /* IPv4 with options to a VIP */
#define SLUICE_G_PASS_FRAGMENT       7   /* IPv4 fragment to a VIP */
#define SLUICE_G_PASS_IPV6_EXT       8   /* IPv6 extension header to a VIP */
#define SLUICE_G_PASS_L7             9   /* L7-plane port, handed to the local stack */
#define SLUICE_G_PASS_PASSTHROUGH   10   /* PASSTHROUGH subset, kernel LB decides */
#define SLUICE_G_NEW_FLOWS          11   /* conntrack entries created */
#define SLUICE_G_CT_MIDFLOW_MISS    12   /* TCP non-SYN without entry: dropped, creates no state */
#define SLUICE_G_CT_INSERT_FAILED   13   /* conntrack update returned an error */
#define SLUICE_G_CT_EXPIRED         14   /* entry older than its idle timeout, re-steered */
#define SLUICE_G_RESTEER_BACKEND_GONE 15 /* tracked backend left the snapshot, re-steered */
#define SLUICE_G_FORWARDED          16   /* DNAT to a backend */
#define SLUICE_G_REVERSE_NAT        17   /* reply rewritten back to the VIP */
#define SLUICE_G_REDIRECT           18   /* XDP_REDIRECT to another interface */
#define SLUICE_G_TX                 19   /* XDP_TX out of the ingress interface */
#define SLUICE_G_FIB_NO_NEIGH       20   /* next hop unresolved: rewritten, XDP_PASS */
#define SLUICE_G_FIB_PASS           21   /* fib lookup other failure: rewritten, XDP_PASS */
#define SLUICE_G_DROP_NO_BACKEND    22   /* subset has no backend */
#define SLUICE_G_CSUM_FULL          23   /* partial L4 checksum completed after NAT */
#define SLUICE_G_DROP_TOO_BIG       24   /* partial checksum over SLUICE_MAX_CSUM_BYTES */
#define SLUICE_G_CT_REPLY_CONFLICT  25   /* new flow's reply tuple held by another live flow: dropped */
#define SLUICE_G_PASS_NO_REDIRECT   26   /* next hop's device cannot take native redirects: rewritten, XDP_PASS */
#define SLUICE_G_REDIRECT_ERR       27   /* XDP_REDIRECT of this program the kernel failed (tracepoint xdp_redirect_err) */
/* A packet the XDP program's first test found no service's (untagged IPv4
 * TCP/UDP, clear address-filter bits): it counts only here, so the exit
 * updates one counter; readers add it to packets and pass_not_service
 * (userspace/bpfmaps/datapath_report.cc, global_counter). */
#define SLUICE_G_PASS_FILTERED      28
#define SLUICE_G_CT_GIVEN_UP        29   /* a tracked tuple re-used by a flow the kernel owns (L7, PASSTHROUGH): its entries deleted */
#define SLUICE_G_PASS_STALE_REPLY   30   /* reply whose reverse entry's flow is gone or re-steered: entry deleted, XDP_PASS */
#define SLUICE_G_COUNT              32

#endif

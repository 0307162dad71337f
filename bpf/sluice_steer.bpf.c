// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// XDP L4 steering: service VIP:port -> weighted subset -> backend by policy,
// conntrack so established flows keep their backend, DNAT toward the backend
// and reverse NAT of its replies, forwarded with bpf_fib_lookup. Anything that
// is not a service's traffic, or that cannot be parsed, goes on unchanged.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "checksum.h"
#include "conntrack.h"
#include "nat.h"
#include "packet_parse.h"
#include "sluice_maps.h"
#include "steer_env.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define CSUM_CHUNK 64

// Writes the complete L4 checksum of a packet whose field held only the
// pseudo-header sum (see checksum.h). A global function, so the verifier
// checks its bounded loops once instead of once per caller path. `seed` is
// the pseudo-header sum of the rewritten packet; the field must be zero.
__attribute__((noinline)) int sluice_l4_checksum_complete(struct xdp_md *ctx, __u32 l4_off, __u32 l4_len,
							    __u32 is_udp, __u32 seed)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 sum = seed, off = 0, rem, i;
	__u8 tail[4] = {};
	__u16 check, *field;
	void *l4;

	if (l4_off > 64 || l4_len > SLUICE_MAX_CSUM_BYTES)
		return -1;
	l4 = data + l4_off;
	for (i = 0; i < SLUICE_MAX_CSUM_BYTES / CSUM_CHUNK; i++) {
		void *p = l4 + off;

		if (off + CSUM_CHUNK > l4_len)
			break;
		if (p + CSUM_CHUNK > data_end)
			return -1;
		sum = (__u32)bpf_csum_diff(0, 0, p, CSUM_CHUNK, sum);
		off += CSUM_CHUNK;
	}
	for (i = 0; i < CSUM_CHUNK / 4; i++) {
		void *p = l4 + off;

		if (off + 4 > l4_len)
			break;
		if (p + 4 > data_end)
			return -1;
		sum = (__u32)bpf_csum_diff(0, 0, p, 4, sum);
		off += 4;
	}
	rem = l4_len - off;
	for (i = 0; i < 3; i++) {
		__u8 *p = l4 + off + i;

		if (i >= rem)
			break;
		if ((void *)(p + 1) > data_end)
			return -1;
		tail[i] = *p;
	}
	if (rem)
		sum = (__u32)bpf_csum_diff(0, 0, (__be32 *)tail, 4, sum);

	check = (__u16)~csum_fold_sum(sum);
	if (is_udp && check == 0)
		check = 0xffff;
	field = l4 + (is_udp ? 6 : 16);
	if ((void *)(field + 1) > data_end)
		return -1;
	*field = check;
	return 0;
}

static __always_inline int iface_is_generic(struct xdp_md *ctx)
{
	return iface_flags(ctx->ingress_ifindex) & SLUICE_IFACE_F_GENERIC;
}

// Rewrites one endpoint and leaves a valid checksum; 0 on success.
static __always_inline int rewrite_endpoint(struct xdp_md *ctx, struct packet *pkt, int which,
					    const __u32 *addr, __be16 port)
{
	int rc = nat_rewrite(pkt, which, addr, port, ctx->ingress_ifindex);

	if (rc == NAT_NEEDS_FULL) {
		__u32 seed = pseudo_header_sum(pkt->key.src, pkt->key.dst, pkt->key.proto, pkt->l4_len);

		count_global(SLUICE_G_CSUM_FULL);
		rc = sluice_l4_checksum_complete(ctx, pkt->l4_off, pkt->l4_len,
						 pkt->key.proto == IPPROTO_UDP, seed);
	}
	return rc;
}

// Decrements TTL / hop limit as a router does; 0 when the packet may go on.
static __always_inline int decrement_ttl(void *data, void *data_end, __u32 l3_off, __u8 family)
{
	if (l3_off > 18)
		return -1;
	if (family == SLUICE_FAMILY_V4) {
		struct iphdr *ip = data + l3_off;
		__u32 sum;

		if ((void *)(ip + 1) > data_end || ip->ttl <= 1)
			return -1;
		ip->ttl--;
		sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);
		ip->check = (__u16)(sum + (sum >> 16));
		return 0;
	}
	{
		struct ipv6hdr *ip6 = data + l3_off;

		if ((void *)(ip6 + 1) > data_end || ip6->hop_limit <= 1)
			return -1;
		ip6->hop_limit--;
		return 0;
	}
}

// Sends the rewritten packet to its next hop: XDP_TX or XDP_REDIRECT when the
// fib knows it, XDP_PASS (already rewritten) so the kernel resolves the
// neighbour or routes it otherwise.
static __always_inline int forward_packet(struct xdp_md *ctx, const struct packet *pkt,
					  const struct sluice_ctrl *ctrl)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth = data;
	int rc;

	if (ctrl->flags & SLUICE_CTRL_F_SKIP_FIB) {
		count_global(SLUICE_G_TX);
		return XDP_TX;
	}
	// A tagged frame egresses through a VLAN device, which has no XDP
	// transmit: the kernel forwards it.
	if (pkt->vlan) {
		count_global(SLUICE_G_FIB_PASS);
		return XDP_PASS;
	}
	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = pkt->key.proto;
	fib.sport = pkt->key.sport;
	fib.dport = pkt->key.dport;
	if (pkt->key.family == SLUICE_FAMILY_V4) {
		fib.family = AF_INET;
		fib.tot_len = (__u16)(pkt->l4_len + sizeof(struct iphdr));
		fib.ipv4_src = pkt->key.src[0];
		fib.ipv4_dst = pkt->key.dst[0];
	} else {
		fib.family = AF_INET6;
		fib.tot_len = (__u16)(pkt->l4_len + sizeof(struct ipv6hdr));
		__builtin_memcpy(fib.ipv6_src, pkt->key.src, 16);
		__builtin_memcpy(fib.ipv6_dst, pkt->key.dst, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		count_global(SLUICE_G_FIB_NO_NEIGH);
		return XDP_PASS;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count_global(SLUICE_G_FIB_PASS);
		return XDP_PASS;
	}
	// A native redirect into a device that cannot transmit XDP frames (a
	// veth whose peer has no XDP program and no GRO, a device without
	// ndo_xdp_xmit) is dropped by the kernel after XDP_REDIRECT "succeeded".
	// Unless the agent's probe found the target able to take it, the kernel
	// forwards the rewritten packet. Generic mode redirects through the skb
	// path, which every device takes.
	if (fib.ifindex != ctx->ingress_ifindex && !(iface_flags(fib.ifindex) & SLUICE_IFACE_F_REDIRECT_OK) &&
	    !iface_is_generic(ctx)) {
		count_global(SLUICE_G_PASS_NO_REDIRECT);
		return XDP_PASS;
	}
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (decrement_ttl(data, data_end, pkt->l3_off, pkt->key.family)) {
		count_global(SLUICE_G_FIB_PASS);
		return XDP_PASS;   // the kernel answers with ICMP time exceeded
	}
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	if (fib.ifindex == ctx->ingress_ifindex) {
		count_global(SLUICE_G_TX);
		return XDP_TX;
	}
	count_global(SLUICE_G_REDIRECT);
	return bpf_redirect(fib.ifindex, 0);
}

static __always_inline void count_packet_in(const struct sluice_ct_entry *ct, __u32 bytes)
{
	struct sluice_counters *c;

	c = counters_of(&sluice_service_stats, ct->service_stat);
	if (c) {
		c->packets_in++;
		c->bytes_in += bytes;
	}
	c = counters_of(&sluice_subset_stats, ct->subset_stat);
	if (c) {
		c->packets_in++;
		c->bytes_in += bytes;
	}
	c = counters_of(&sluice_backend_stats, ct->backend_id);
	if (c) {
		c->packets_in++;
		c->bytes_in += bytes;
	}
}

static __always_inline void count_packet_out(const struct sluice_rnat_entry *rn, __u32 bytes)
{
	struct sluice_counters *c;

	c = counters_of(&sluice_service_stats, rn->service_stat);
	if (c) {
		c->packets_out++;
		c->bytes_out += bytes;
	}
	c = counters_of(&sluice_subset_stats, rn->subset_stat);
	if (c) {
		c->packets_out++;
		c->bytes_out += bytes;
	}
	c = counters_of(&sluice_backend_stats, rn->backend_id);
	if (c) {
		c->packets_out++;
		c->bytes_out += bytes;
	}
}

// The backend of tracked flow `ct` when its entry is still usable; NULL
// when the entry must be replaced (a SYN re-using a closing tuple, expired,
// or the backend left: counted by reason).
static __always_inline struct sluice_backend *conntrack_usable_backend(const struct sluice_ctrl *ctrl,
									const struct sluice_ct_entry *ct,
									const struct packet *pkt, __u64 now)
{
	struct sluice_backend *backend;
	struct sluice_counters *c;
	__u32 backend_id;

	if (sluice_ct_is_syn(pkt->key.proto, pkt->tcp_flags) && (ct->flags & SLUICE_CT_F_CLOSING))
		return 0;   // the tuple is re-used by a new connection
	if (conntrack_expired(ctrl, ct, pkt->key.proto, now)) {
		count_global(SLUICE_G_CT_EXPIRED);
		return 0;
	}
	backend_id = ct->backend_id;
	backend = bpf_map_lookup_elem(&sluice_backends, &backend_id);
	if (!backend || !(backend->flags & SLUICE_BACKEND_F_LIVE)) {
		count_global(SLUICE_G_RESTEER_BACKEND_GONE);
		c = counters_of(&sluice_service_stats, ct->service_stat);
		if (c)
			c->resteered++;
		return 0;
	}
	return backend;
}

// DNAT toward `backend`, then forward.
static __always_inline int dnat_and_forward(struct xdp_md *ctx, struct packet *pkt, const struct sluice_ctrl *ctrl,
					    const struct sluice_backend *backend)
{
	__u32 addr[4];
	__be16 port = backend->port;

	__builtin_memcpy(addr, backend->addr, 16);
	if (rewrite_endpoint(ctx, pkt, NAT_REWRITE_DST, addr, port))
		return XDP_DROP;   // rewritten in part: cannot pass it on
	count_global(SLUICE_G_FORWARDED);
	return forward_packet(ctx, pkt, ctrl);
}

// Client -> VIP:port of a flow with a usable conntrack entry: the fast path,
// which needs no service lookup.
static __always_inline int steer_tracked_packet(struct xdp_md *ctx, struct packet *pkt,
						const struct sluice_ctrl *ctrl, struct sluice_ct_entry *ct,
						const struct sluice_backend *backend, __u64 now)
{
	if (now - ct->last_seen_ns > SLUICE_CT_REFRESH_NS)
		ct->last_seen_ns = now;
	if (pkt->key.proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)))
		conntrack_mark_closing(ct);
	count_packet_in(ct, pkt->frame_len);
	return dnat_and_forward(ctx, pkt, ctrl, backend);
}

// The entry of the client's view of a service port whose default entry
// has SLUICE_SERVICE_F_VIEWS: the source address's client namespace, then
// the entry keyed by it (docs/bpf-datapath.md, "Client views"). A client
// whose address or namespace has no entry of its own gets the default.
static __always_inline struct sluice_service *client_view(struct sluice_service *svc,
								struct sluice_service_key *skey,
								const struct packet *pkt)
{
	struct sluice_client_key ckey = {};
	struct sluice_service *view;
	__u32 *client_namespace;

	__builtin_memcpy(ckey.addr, pkt->key.src, 16);
	ckey.family = pkt->key.family;
	ckey.generation = skey->generation;
	client_namespace = bpf_map_lookup_elem(&sluice_client_namespaces, &ckey);
	if (!client_namespace)
		return svc;
	skey->client_namespace = (__u16)*client_namespace;
	view = bpf_map_lookup_elem(&sluice_services, skey);
	return view ? view : svc;
}

// Client -> VIP:port of a known service port without a usable entry: `ct`
// is NULL or the entry this flow replaces.
static __always_inline int steer_service_packet(struct xdp_md *ctx, struct packet *pkt,
						const struct sluice_ctrl *ctrl,
						const struct sluice_service *svc, struct sluice_ct_entry *ct,
						__u64 now)
{
	struct bpf_steer_env env = {};
	struct sluice_decision decision;
	const struct sluice_subset *sub;
	struct sluice_backend *backend = 0;
	struct sluice_counters *c;
	__u32 backend_id;

	// An L7 or PASSTHROUGH flow has no conntrack state: an unusable entry
	// of the tuple's earlier flow goes, or the rest of this one would
	// follow it (conntrack_give_up).
	if (svc->flags & SLUICE_SERVICE_F_L7) {
		if (ct)
			conntrack_give_up(&pkt->key, ct);
		c = counters_of(&sluice_service_stats, svc->stat_id);
		if (c)
			c->passthrough++;
		count_global(SLUICE_G_PASS_L7);
		return XDP_PASS;
	}

	// The subset is chosen before the SYN-only rule below: a PASSTHROUGH
	// flow never has conntrack state, and every packet of it, not only its
	// SYN, is the kernel's. The backend is picked after it, so that a
	// refused packet moves no round-robin cursor (steer_decide.h).
	sub = sluice_steer_choose_subset(&env, svc, &pkt->key, ctrl->hash_seed, &decision);
	if (decision.action == SLUICE_ACT_PASS_PASSTHROUGH) {
		if (ct)
			conntrack_give_up(&pkt->key, ct);
		c = counters_of(&sluice_service_stats, svc->stat_id);
		if (c)
			c->passthrough++;
		c = counters_of(&sluice_subset_stats, decision.subset_stat);
		if (c)
			c->passthrough++;
		count_global(SLUICE_G_PASS_PASSTHROUGH);
		return XDP_PASS;
	}

	if (ct) {
		// The entry is replaced: its flow ends here if it had not already.
		// Replacing a tracked key creates no new one, so any packet of
		// the flow may do it.
		conntrack_mark_closing(ct);
	} else if (!sluice_ct_may_create(pkt->key.proto, pkt->tcp_flags)) {
		// Only a SYN creates TCP state (include/sluice/conntrack_rules.h):
		// a spoofed ACK flood must not evict live flows. An evicted or
		// reaped flow's packets end here too.
		count_global(SLUICE_G_CT_MIDFLOW_MISS);
		return XDP_DROP;
	}
	if (sub)
		sluice_steer_pick_backend(&env, sub, &pkt->key, ctrl->hash_seed, &decision);
	backend_id = decision.backend_id;
	if (decision.action == SLUICE_ACT_FORWARD)
		backend = bpf_map_lookup_elem(&sluice_backends, &backend_id);
	if (!backend || !(backend->flags & SLUICE_BACKEND_F_LIVE)) {
		c = counters_of(&sluice_service_stats, svc->stat_id);
		if (c)
			c->drop_no_backend++;
		c = counters_of(&sluice_subset_stats, decision.subset_stat);
		if (c)
			c->drop_no_backend++;
		count_global(SLUICE_G_DROP_NO_BACKEND);
		return XDP_DROP;
	}
	if (conntrack_insert(ctrl, &pkt->key, backend, backend_id, svc->stat_id, decision.subset_stat, now, ct))
		return XDP_DROP;
	conntrack_count_opened(svc->stat_id, decision.subset_stat, backend_id, pkt->frame_len);
	return dnat_and_forward(ctx, pkt, ctrl, backend);
}

// Backend -> client reply of a tracked flow: restore the VIP as the source.
static __always_inline int reverse_nat_packet(struct xdp_md *ctx, struct packet *pkt,
					      const struct sluice_ctrl *ctrl, struct sluice_rnat_entry *rn)
{
	__u64 now = conntrack_now();
	__u8 flags = pkt->tcp_flags;
	int closes = pkt->key.proto == IPPROTO_TCP && (flags & (TCP_FLAG_FIN | TCP_FLAG_RST));
	__u32 vip[4];
	__be16 vip_port = rn->vip_port;

	if (closes || !(rn->flags & SLUICE_CT_F_REPLIED) || now - rn->last_seen_ns > SLUICE_CT_REFRESH_NS) {
		// The forward entry's clock and closing state follow the replies
		// too. A reply whose flow has no forward entry with this backend
		// (reaped, evicted, re-steered) belongs to no flow of ours: a flow
		// the kernel now owns on the same tuple (PASSTHROUGH, L7) would be
		// broken by a rewrite behind its NAT. The entry goes and the
		// packet is the kernel's (docs/bpf-datapath.md, "A tuple handed
		// to the kernel"). Checked on a flow's first reply and then at
		// most once a second, so a stale entry lives at most that long.
		struct sluice_flow_key fwd = {
			.sport = pkt->key.dport,
			.dport = rn->vip_port,
			.proto = pkt->key.proto,
			.family = pkt->key.family,
		};
		struct sluice_ct_entry *ct;

		__builtin_memcpy(fwd.src, pkt->key.dst, 16);
		__builtin_memcpy(fwd.dst, rn->vip, 16);
		ct = bpf_map_lookup_elem(&sluice_conntrack, &fwd);
		if (!ct || ct->backend_id != rn->backend_id) {
			bpf_map_delete_elem(&sluice_reverse_nat, &pkt->key);
			count_global(SLUICE_G_PASS_STALE_REPLY);
			return XDP_PASS;
		}
		ct->last_seen_ns = now;
		ct->flags |= SLUICE_CT_F_REPLIED;
		if (closes)
			conntrack_mark_closing(ct);
		rn->flags |= SLUICE_CT_F_REPLIED;
		rn->last_seen_ns = now;
	}
	count_packet_out(rn, pkt->frame_len);
	__builtin_memcpy(vip, rn->vip, 16);
	if (rewrite_endpoint(ctx, pkt, NAT_REWRITE_SRC, vip, vip_port))
		return XDP_DROP;
	count_global(SLUICE_G_REVERSE_NAT);
	return forward_packet(ctx, pkt, ctrl);
}

static __always_inline int addr_filter_has(const __u64 *words, __u32 bit)
{
	return (words[(bit >> 6) & (SLUICE_ADDR_FILTER_BITS / 64 - 1)] >> (bit & 63)) & 1;
}

static __always_inline int is_vip(const struct packet *pkt, __u32 generation)
{
	struct sluice_vip_key key = {
		.family = pkt->key.family,
		.generation = (__u8)generation,
	};

	__builtin_memcpy(key.addr, pkt->key.dst, 16);
	return bpf_map_lookup_elem(&sluice_vips, &key) != 0;
}

// Whether the frame is certainly no service's traffic, decided from the
// first 38 bytes: an untagged IPv4 TCP or UDP packet, without options, not
// a fragment, whose destination has a clear VIP bit and whose source:port a
// clear reply bit in the address filter. This is the whole path of most of
// a node's packets, so it reads only the headers' fixed fields and stores
// nothing (docs/benchmarks.md: within 1.3x of a MAC-swap XDP_TX). Anything
// else (IPv6, a VLAN tag, a set bit, a frame too short) takes the full
// parse; lengths and TCP/UDP header fields are only checked there, so a
// malformed packet of no service's is counted as not a service's.
static __always_inline int surely_not_service(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__be16 *ports = (void *)(ip + 1);
	struct sluice_addr_filter *filter;
	__u32 dst[4] = {}, src[4] = {};
	__u32 zero = 0;

	if ((void *)(ports + 1) > data_end)
		return 0;
	// h_proto as one load: struct ethhdr is packed, which makes the
	// compiler read it byte by byte.
	if (*(__be16 *)(data + 12) != bpf_htons(ETH_P_IP) || *(__u8 *)ip != 0x45 ||
	    (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) ||
	    (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return 0;
	filter = bpf_map_lookup_elem(&sluice_addr_filter, &zero);
	if (!filter)
		return 0;
	dst[0] = ip->daddr;
	src[0] = ip->saddr;
	return !addr_filter_has(filter->vips, sluice_addr_filter_bit(dst, 0)) &&
	       !addr_filter_has(filter->replies, sluice_addr_filter_bit(src, ports[0]));
}

// Everything but the non-service exit above. Not inlined: the exit then
// runs with a small frame that saves two registers instead of four.
static __attribute__((noinline)) int steer_packet(struct xdp_md *ctx)
{
	struct packet pkt = {};
	struct sluice_service *svc;
	struct sluice_rnat_entry *rn;
	struct sluice_ctrl *ctrl;
	struct sluice_addr_filter *filter;
	struct sluice_ct_entry *ct = 0;
	struct sluice_backend *backend;
	__u32 zero = 0;
	int maybe_vip, maybe_reply;
	__u64 now = 0;
	int rc;

	count_global(SLUICE_G_PACKETS);
	rc = parse_packet(ctx, &pkt);
	switch (rc) {
	case PARSE_OK:
	case PARSE_IP_OPTIONS:
	case PARSE_FRAGMENT:
	case PARSE_IPV6_EXT:
		break;
	case PARSE_NOT_IP:
		count_global(SLUICE_G_PASS_NOT_IP);
		return XDP_PASS;
	case PARSE_NOT_L4:
		count_global(SLUICE_G_PASS_NOT_L4);
		return XDP_PASS;
	case PARSE_TRUNCATED:
		count_global(SLUICE_G_PASS_TRUNCATED);
		return XDP_PASS;
	default:
		count_global(SLUICE_G_PASS_MALFORMED);
		return XDP_PASS;
	}

	if (rc != PARSE_OK) {
		ctrl = bpf_map_lookup_elem(&sluice_ctrl, &zero);
		if (!ctrl)
			return XDP_PASS;
		// The one read of the generation for this packet (see datapath_structs.h).
		if (!is_vip(&pkt, *(volatile __u32 *)&ctrl->generation & 1)) {
			count_global(SLUICE_G_PASS_NOT_SERVICE);
			return XDP_PASS;
		}
		count_global(rc == PARSE_IP_OPTIONS ? SLUICE_G_PASS_IP_OPTIONS
			     : rc == PARSE_FRAGMENT ? SLUICE_G_PASS_FRAGMENT
						    : SLUICE_G_PASS_IPV6_EXT);
		return XDP_PASS;
	}

	// The address filter tells which lookups can match at all: a clear VIP
	// bit for the destination rules out services and conntrack (whose keys
	// have a VIP destination), a clear reply bit for source:port rules out
	// reverse NAT. Traffic that is no service's stops here, before anything
	// else is read.
	filter = bpf_map_lookup_elem(&sluice_addr_filter, &zero);
	maybe_vip = !filter || addr_filter_has(filter->vips, sluice_addr_filter_bit(pkt.key.dst, 0));
	maybe_reply = !filter || addr_filter_has(filter->replies, sluice_addr_filter_bit(pkt.key.src, pkt.key.sport));
	if (!maybe_vip && !maybe_reply) {
		count_global(SLUICE_G_PASS_NOT_SERVICE);
		return XDP_PASS;
	}

	ctrl = bpf_map_lookup_elem(&sluice_ctrl, &zero);
	if (!ctrl)
		return XDP_PASS;
	if (maybe_vip) {
		struct sluice_service_key skey = {};

		// Tracked flows first: they need no service lookup.
		ct = bpf_map_lookup_elem(&sluice_conntrack, &pkt.key);
		now = conntrack_now();
		if (ct) {
			backend = conntrack_usable_backend(ctrl, ct, &pkt, now);
			if (backend)
				return steer_tracked_packet(ctx, &pkt, ctrl, ct, backend, now);
		}
		__builtin_memcpy(skey.vip, pkt.key.dst, 16);
		skey.port = pkt.key.dport;
		skey.proto = pkt.key.proto;
		skey.family = pkt.key.family;
		// The one read of the generation for this packet (see datapath_structs.h).
		skey.generation = (__u8)(*(volatile __u32 *)&ctrl->generation & 1);
		svc = bpf_map_lookup_elem(&sluice_services, &skey);
		if (svc && (svc->flags & SLUICE_SERVICE_F_VIEWS))
			svc = client_view(svc, &skey, &pkt);
		if (svc)
			return steer_service_packet(ctx, &pkt, ctrl, svc, ct, now);
	}
	if (!maybe_reply) {
		count_global(SLUICE_G_PASS_NOT_SERVICE);
		return XDP_PASS;
	}

	rn = bpf_map_lookup_elem(&sluice_reverse_nat, &pkt.key);
	if (rn)
		return reverse_nat_packet(ctx, &pkt, ctrl, rn);

	count_global(SLUICE_G_PASS_NOT_SERVICE);
	return XDP_PASS;
}

SEC("xdp")
int sluice_steer(struct xdp_md *ctx)
{
	if (surely_not_service(ctx)) {
		// One counter: readers count these in packets and
		// pass_not_service too (SLUICE_G_PASS_FILTERED).
		count_global(SLUICE_G_PASS_FILTERED);
		return XDP_PASS;
	}
	return steer_packet(ctx);
}

// The kernel's side of a failed XDP_REDIRECT: the program returned
// XDP_REDIRECT, the kernel could not deliver (a device without XDP transmit,
// a full queue). Only the tracepoint sees it; it fires for every XDP program
// of the host, so it counts the ones of the program whose id the loader
// wrote in sluice_ctrl. Attached where the kernel has BTF.
struct bpf_prog_aux {
	__u32 id;
} __attribute__((preserve_access_index));
struct bpf_prog {
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

SEC("tp_btf/xdp_redirect_err")
int BPF_PROG(sluice_redirect_err, const void *dev, const struct bpf_prog *xdp, const void *tgt, int err)
{
	__u32 zero = 0;
	struct sluice_ctrl *ctrl = bpf_map_lookup_elem(&sluice_ctrl, &zero);

	if (ctrl && xdp->aux->id == ctrl->steer_prog_id)
		count_global(SLUICE_G_REDIRECT_ERR);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

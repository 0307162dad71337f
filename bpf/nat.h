/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address and port rewriting (DNAT toward a backend, reverse NAT back to the
 * VIP) with the checksum fix-ups of checksum.h. IPv4 and IPv6 share one
 * function: the flow key holds both as four words. */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include "checksum.h"
#include "packet_parse.h"
#include "sluice_maps.h"

#define NAT_REWRITE_DST 0   /* DNAT: client -> VIP becomes client -> backend */
#define NAT_REWRITE_SRC 1   /* reverse NAT: backend -> client becomes VIP -> client */

#define NAT_OK            0
#define NAT_NEEDS_FULL    1   /* partial checksum in native mode: caller completes it */
#define NAT_ERROR        -1

struct nat_words {
	__u32 addr[4];
	__u32 port;           /* the 16-bit port in the first two bytes, wire order */
};

/* sluice_ifaces flags of an interface (0 when it has no entry). */
static __always_inline __u32 iface_flags(__u32 ifindex)
{
	struct sluice_iface *iface = bpf_map_lookup_elem(&sluice_ifaces, &ifindex);

	return iface ? iface->flags : 0;
}

/* Rewrites one endpoint of the flow. Returns NAT_NEEDS_FULL when the L4 field
 * held a pseudo-header sum and the ingress interface (`ifindex`, looked up
 * only then) is native: the field then holds zero and the caller must write
 * the complete checksum (the rest is already rewritten). */
static __always_inline int nat_rewrite(struct packet *pkt, int which, const __u32 *new_addr,
				       __be16 new_port, __u32 ifindex)
{
	struct nat_words from = {}, to = {};
	__u16 *check;
	__u16 pseudo_old;
	int partial;

	if (which == NAT_REWRITE_DST) {
		__builtin_memcpy(from.addr, pkt->key.dst, 16);
		*(__be16 *)&from.port = pkt->key.dport;
	} else {
		__builtin_memcpy(from.addr, pkt->key.src, 16);
		*(__be16 *)&from.port = pkt->key.sport;
	}
	__builtin_memcpy(to.addr, new_addr, 16);
	*(__be16 *)&to.port = new_port;

	if (pkt->key.proto == IPPROTO_TCP) {
		struct tcphdr *tcp = pkt->l4;

		if ((void *)(tcp + 1) > pkt->data_end)
			return NAT_ERROR;
		check = &tcp->check;
	} else {
		struct udphdr *udp = pkt->l4;

		if ((void *)(udp + 1) > pkt->data_end)
			return NAT_ERROR;
		check = &udp->check;
	}

	pseudo_old = csum_fold_sum(pseudo_header_sum(pkt->key.src, pkt->key.dst, pkt->key.proto, pkt->l4_len));
	partial = *check == pseudo_old;

	/* Layer 3 */
	if (pkt->ip4) {
		struct iphdr *ip = pkt->ip4;

		ip->check = csum_replace_words(ip->check, from.addr, to.addr, 4);
		if (which == NAT_REWRITE_DST)
			ip->daddr = to.addr[0];
		else
			ip->saddr = to.addr[0];
	} else if (pkt->ip6) {
		struct ipv6hdr *ip6 = pkt->ip6;

		if (which == NAT_REWRITE_DST)
			__builtin_memcpy(&ip6->daddr, to.addr, 16);
		else
			__builtin_memcpy(&ip6->saddr, to.addr, 16);
	} else {
		return NAT_ERROR;
	}

	/* Layer 4 ports: tcphdr and udphdr both start with source, dest. */
	if (which == NAT_REWRITE_DST)
		((struct udphdr *)pkt->l4)->dest = new_port;
	else
		((struct udphdr *)pkt->l4)->source = new_port;

	/* The flow key now describes the rewritten packet. */
	if (which == NAT_REWRITE_DST) {
		__builtin_memcpy(pkt->key.dst, to.addr, 16);
		pkt->key.dport = new_port;
	} else {
		__builtin_memcpy(pkt->key.src, to.addr, 16);
		pkt->key.sport = new_port;
	}

	/* IPv4 UDP without checksum stays without one. */
	if (pkt->key.proto == IPPROTO_UDP && pkt->ip4 && *check == 0)
		return NAT_OK;

	if (!partial) {
		__u16 c = csum_replace_words(*check, (__be32 *)&from, (__be32 *)&to, sizeof(from));

		if (pkt->key.proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
		return NAT_OK;
	}
	if (iface_flags(ifindex) & SLUICE_IFACE_F_GENERIC) {
		/* Still a pseudo-header sum: fold in the address change, not inverted. */
		__u32 sum = (__u32)bpf_csum_diff(from.addr, 16, to.addr, 16, *check);

		*check = csum_fold_sum(sum);
		return NAT_OK;
	}
	*check = 0;
	return NAT_NEEDS_FULL;
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ethernet (one 802.1Q tag) / IPv4 / IPv6 / TCP / UDP parsing with a bounds
 * check before every header read. The result says what the packet is; the
 * caller passes anything that is not a plain TCP/UDP packet to the kernel. */
#ifndef SLUICE_BPF_PACKET_PARSE_H
#define SLUICE_BPF_PACKET_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sluice/datapath_structs.h"

#define PARSE_OK          0
#define PARSE_NOT_IP      1
#define PARSE_NOT_L4      2
#define PARSE_TRUNCATED   3
#define PARSE_MALFORMED   4
#define PARSE_IP_OPTIONS  5   /* key.dst/family valid: caller checks for a VIP */
#define PARSE_FRAGMENT    6   /* key.dst/family valid */
#define PARSE_IPV6_EXT    7   /* key.dst/family valid */

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

#define IP_MF     0x2000
#define IP_OFFSET 0x1fff

struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct packet {
	struct sluice_flow_key key;
	struct ethhdr *eth;
	struct iphdr *ip4;        /* one of ip4/ip6 is set */
	struct ipv6hdr *ip6;
	void *l4;                 /* struct tcphdr or struct udphdr */
	void *data_end;
	__u32 l3_off;             /* offset of the IP header from the frame start */
	__u32 l4_off;             /* offset of l4 from the frame start */
	__u32 l4_len;             /* L4 header + payload, from the IP header */
	__u32 frame_len;
	__u8 tcp_flags;
	__u8 vlan;                /* carries one 802.1Q tag */
	__u8 pad[2];
};

static __always_inline int parse_l4(struct packet *pkt, void *data, void *data_end, void *l4)
{
	pkt->l4 = l4;
	pkt->l4_off = (__u32)(l4 - data);
	if (pkt->key.proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if (pkt->l4_len < sizeof(*tcp))
			return PARSE_MALFORMED;
		if ((void *)(tcp + 1) > data_end)
			return PARSE_TRUNCATED;
		if (tcp->doff < 5 || tcp->doff * 4u > pkt->l4_len)
			return PARSE_MALFORMED;
		pkt->key.sport = tcp->source;
		pkt->key.dport = tcp->dest;
		pkt->tcp_flags = ((__u8 *)tcp)[13];
		return PARSE_OK;
	}
	if (pkt->key.proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if (pkt->l4_len < sizeof(*udp))
			return PARSE_MALFORMED;
		if ((void *)(udp + 1) > data_end)
			return PARSE_TRUNCATED;
		if (bpf_ntohs(udp->len) < sizeof(*udp) || bpf_ntohs(udp->len) > pkt->l4_len)
			return PARSE_MALFORMED;
		pkt->key.sport = udp->source;
		pkt->key.dport = udp->dest;
		return PARSE_OK;
	}
	return PARSE_NOT_L4;
}

static __always_inline int parse_ipv4(struct packet *pkt, void *data, void *data_end, struct iphdr *ip)
{
	__u32 hdr_len, tot_len;

	if ((void *)(ip + 1) > data_end)
		return PARSE_TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	hdr_len = ip->ihl * 4u;
	if ((void *)ip + hdr_len > data_end)
		return PARSE_TRUNCATED;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hdr_len)
		return PARSE_MALFORMED;
	if ((void *)ip + tot_len > data_end)
		return PARSE_TRUNCATED;
	pkt->ip4 = ip;
	pkt->key.family = SLUICE_FAMILY_V4;
	pkt->key.proto = ip->protocol;
	pkt->key.src[0] = ip->saddr;
	pkt->key.dst[0] = ip->daddr;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return PARSE_FRAGMENT;
	if (hdr_len != sizeof(*ip))
		return PARSE_IP_OPTIONS;
	pkt->l4_len = tot_len - sizeof(*ip);
	return parse_l4(pkt, data, data_end, ip + 1);
}

static __always_inline int is_ipv6_extension(__u8 nexthdr)
{
	switch (nexthdr) {
	case 0:    /* hop-by-hop */
	case 43:   /* routing */
	case 44:   /* fragment */
	case 50:   /* ESP */
	case 51:   /* AH */
	case 60:   /* destination options */
	case 135:  /* mobility */
	case 139:  /* HIP */
	case 140:  /* shim6 */
		return 1;
	}
	return 0;
}

static __always_inline int parse_ipv6(struct packet *pkt, void *data, void *data_end, struct ipv6hdr *ip6)
{
	__u32 payload_len;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_TRUNCATED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	payload_len = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + payload_len > data_end)
		return PARSE_TRUNCATED;
	pkt->ip6 = ip6;
	pkt->key.family = SLUICE_FAMILY_V6;
	pkt->key.proto = ip6->nexthdr;
	__builtin_memcpy(pkt->key.src, &ip6->saddr, 16);
	__builtin_memcpy(pkt->key.dst, &ip6->daddr, 16);
	if (is_ipv6_extension(ip6->nexthdr))
		return PARSE_IPV6_EXT;
	pkt->l4_len = payload_len;
	return parse_l4(pkt, data, data_end, ip6 + 1);
}

/* Fills pkt; returns PARSE_*. */
static __always_inline int parse_packet(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__be16 proto;

	pkt->frame_len = (__u32)(data_end - data);
	pkt->data_end = data_end;
	if (l3 > data_end)
		return PARSE_TRUNCATED;
	pkt->eth = eth;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_tag *tag = l3;

		if ((void *)(tag + 1) > data_end)
			return PARSE_TRUNCATED;
		proto = tag->encapsulated_proto;
		l3 = tag + 1;
		pkt->vlan = 1;
	}
	pkt->l3_off = (__u32)(l3 - data);
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(pkt, data, data_end, l3);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(pkt, data, data_end, l3);
	return PARSE_NOT_IP;
}

#endif

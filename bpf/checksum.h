/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internet checksums after NAT. Three cases (see docs/bpf-datapath.md):
 *  - the L4 field holds a full checksum (RSTs, TIME_WAIT ACKs, traffic from
 *    other hosts): RFC 1624 incremental update over the changed words;
 *  - it holds only the pseudo-header sum (CHECKSUM_PARTIAL from a local stack
 *    over veth) and we run in native mode: the redirect loses the skb's
 *    offload state, so the program writes a complete checksum;
 *  - partial, generic mode: the skb keeps its offload state, so the field
 *    must stay a pseudo-header sum; only the address change is folded in.
 * All sums run over memory in wire order, as bpf_csum_diff does. */
#ifndef SLUICE_BPF_CHECKSUM_H
#define SLUICE_BPF_CHECKSUM_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Pseudo-header as summed: for IPv4 the upper address words are zero, which
 * adds nothing, so one layout serves both families. */
struct pseudo_header {
	__u32 src[4];
	__u32 dst[4];
	__u8 zero;
	__u8 proto;
	__be16 len;
};

/* 32-bit ones' complement sum folded to 16 bits, not inverted. */
static __always_inline __u16 csum_fold_sum(__u64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

static __always_inline __u32 pseudo_header_sum(const __u32 *src, const __u32 *dst, __u8 proto, __u32 l4_len)
{
	struct pseudo_header ph = {};

	__builtin_memcpy(ph.src, src, 16);
	__builtin_memcpy(ph.dst, dst, 16);
	ph.proto = proto;
	ph.len = bpf_htons((__u16)l4_len);
	return (__u32)bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
}

/* RFC 1624: checksum field after `from` words became `to` words. */
static __always_inline __u16 csum_replace_words(__u16 check, __be32 *from, __be32 *to, __u32 size)
{
	__u32 sum = (__u32)bpf_csum_diff(from, size, to, size, (__u16)~check);

	return (__u16)~csum_fold_sum(sum);
}

#endif

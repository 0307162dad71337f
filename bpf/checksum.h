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
#include <bpf/bpf_endian.h>
#ifndef SLUICE_BPF_CHECKSUM_H
#define SLUICE_BPF_CHECKSUM_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* The sums below are over a few words of the stack, so they are plain
 * arithmetic instead of bpf_csum_diff calls (a helper call and csum_partial
 * each, a quarter of a tracked packet's time; see docs/benchmarks.md). A
 * ones' complement sum of 32-bit words folded to 16 bits equals the sum of
 * the 16-bit words, and ~w of a 32-bit word is -w in that arithmetic, so the
 * results are those of bpf_csum_diff. */

/* 64-bit accumulator folded to a 32-bit ones' complement sum. */
static __always_inline __u32 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffffULL) + (sum >> 32);
	sum = (sum & 0xffffffffULL) + (sum >> 32);
	return (__u32)sum;
}

/* 32-bit ones' complement sum folded to 16 bits, not inverted. */
static __always_inline __u16 csum_fold_sum(__u64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* Sum of the pseudo-header (addresses as four words each, zero, protocol,
 * L4 length), unfolded; for IPv4 the upper address words are zero. */
static __always_inline __u32 pseudo_header_sum(const __u32 *src, const __u32 *dst, __u8 proto, __u32 l4_len)
{
	__u64 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++)
		sum += (__u64)src[i] + dst[i];
	/* bytes 0, proto, length (network order), read as a host word */
	sum += ((__u32)proto << 8) | ((__u32)bpf_htons((__u16)l4_len) << 16);
	return csum_fold64(sum);
}

/* RFC 1624: checksum field after `from` words became `to` words (`size`
 * bytes, a multiple of 4, at most 20). */
static __always_inline __u16 csum_replace_words(__u16 check, const __be32 *from, const __be32 *to, __u32 size)
{
	__u64 sum = (__u16)~check;
	__u32 i;

#pragma unroll
	for (i = 0; i < 5; i++) {
		if (i * 4 >= size)
			break;
		sum += (__u64)(__u32)~from[i] + to[i];
	}
	return (__u16)~csum_fold_sum(csum_fold64(sum));
}

#endif

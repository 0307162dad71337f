// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Attached to the receiving veth peer of a native XDP_REDIRECT: the kernel only
// delivers redirected frames into a veth whose peer runs an XDP program.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int sluice_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// sk_lookup: hands every L7 VIP:port to the agent's listening socket, so the
// proxy needs one listener (bound to any port, e.g. 127.0.0.1:15001) instead
// of one bind per VIP, and the VIPs need not be local addresses. Attached to
// the node's network namespace; the XDP program passes these ports to the
// stack (SLUICE_SERVICE_F_L7) and this program picks the socket.
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sluice/datapath_structs.h"

/* {VIP, port, proto} of an L7 service port -> listener slot in sluice_l7_listeners. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, struct sluice_l7_key);
	__type(value, __u32);
} sluice_l7_services SEC(".maps");

/* Listener slot -> the agent's listening socket (registered by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, SLUICE_MAX_L7_LISTENERS);
	__type(key, __u32);
	__type(value, __u64);
} sluice_l7_listeners SEC(".maps");

/* Per-CPU: [0] connections handed to a listener, [1] L7 port without listener. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sluice_l7_lookup_stats SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&sluice_l7_lookup_stats, &index);

	if (value)
		*value += 1;
}

SEC("sk_lookup")
int sluice_sklookup(struct bpf_sk_lookup *ctx)
{
	struct sluice_l7_key key = {};
	struct bpf_sock *sk;
	__u32 *slot;
	long err;

	key.proto = (__u8)ctx->protocol;
	key.port = (__u16)bpf_htons((__u16)ctx->local_port);
	if (ctx->family == 2 /* AF_INET */) {
		key.family = SLUICE_FAMILY_V4;
		key.vip[0] = ctx->local_ip4;
	} else {
		key.family = SLUICE_FAMILY_V6;
		key.vip[0] = ctx->local_ip6[0];
		key.vip[1] = ctx->local_ip6[1];
		key.vip[2] = ctx->local_ip6[2];
		key.vip[3] = ctx->local_ip6[3];
	}
	slot = bpf_map_lookup_elem(&sluice_l7_services, &key);
	if (!slot)
		return SK_PASS;   // not an L7 VIP: regular socket lookup
	sk = bpf_map_lookup_elem(&sluice_l7_listeners, slot);
	if (!sk) {
		count(1);
		return SK_PASS;   // agent away: the stack answers as it would without sluice
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err)
		return SK_PASS;
	count(0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

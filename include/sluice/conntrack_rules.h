/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The conntrack rules every data plane applies the same way (the XDP
 * program in bpf/conntrack.h, the DPDK forwarder in userspace/dpdk):
 *
 * - Which packet may create state. A TCP flow is created only by a SYN
 *   without ACK; any other TCP packet without a usable entry is dropped
 *   (counted ct_midflow_miss) and creates nothing, so spoofed ACKs, RSTs or
 *   data cannot fill the table and evict live flows. A UDP datagram has no
 *   handshake: any datagram creates its flow.
 *
 * - Who owns a reply tuple. The reverse entry's key is backend -> client
 *   (ip:port both sides), so two flows from one client ip:port to two VIPs
 *   that share a backend want the same key. The backend's TCP stack cannot
 *   tell them apart either. The first flow keeps the key while it is live
 *   (not closing, not expired); the second is refused (counted
 *   ct_reply_conflict) instead of silently taking over the first flow's
 *   replies. A key held by the same client -> VIP tuple (a SYN re-using it)
 *   or by a flow that ended is taken over.
 *
 * Plain C over <linux/types.h>, included by BPF and C++ alike.
 */
#ifndef SLUICE_CONNTRACK_RULES_H
#define SLUICE_CONNTRACK_RULES_H

#include <linux/types.h>

#include "sluice/datapath_structs.h"

#ifndef SLUICE_INLINE
#define SLUICE_INLINE static inline __attribute__((always_inline))
#endif

#define SLUICE_TCP_FIN 0x01
#define SLUICE_TCP_SYN 0x02
#define SLUICE_TCP_RST 0x04
#define SLUICE_TCP_ACK 0x10

#define SLUICE_PROTO_TCP 6

/* A SYN without ACK: the only TCP packet that opens a flow. */
SLUICE_INLINE int sluice_ct_is_syn(__u8 proto, __u8 tcp_flags)
{
	return proto == SLUICE_PROTO_TCP && (tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN;
}

/* Whether a packet without a usable conntrack entry may create one. */
SLUICE_INLINE int sluice_ct_may_create(__u8 proto, __u8 tcp_flags)
{
	return proto != SLUICE_PROTO_TCP || sluice_ct_is_syn(proto, tcp_flags);
}

/* The client -> VIP key of the flow that owns reverse entry `rn` stored
 * under `reply` (backend -> client). */
SLUICE_INLINE void sluice_ct_owner_key(const struct sluice_flow_key *reply, const struct sluice_rnat_entry *rn,
				       struct sluice_flow_key *owner)
{
	__u32 i;

	for (i = 0; i < 4; i++) {
		owner->src[i] = reply->dst[i];
		owner->dst[i] = rn->vip[i];
	}
	owner->sport = reply->dport;
	owner->dport = rn->vip_port;
	owner->proto = reply->proto;
	owner->family = reply->family;
	owner->pad[0] = 0;
	owner->pad[1] = 0;
}

/* Whether reply entry `rn` (stored under the reply key of `client`, which
 * fixes the client's address and port) belongs to the same client -> VIP
 * tuple: a SYN re-using it. */
SLUICE_INLINE int sluice_ct_reply_is_own(const struct sluice_flow_key *client, const struct sluice_rnat_entry *rn)
{
	__u32 i;

	if (client->dport != rn->vip_port)
		return 0;
	for (i = 0; i < 4; i++)
		if (client->dst[i] != rn->vip[i])
			return 0;
	return 1;
}

/* Whether the new flow `client` may take reply key already held by `rn`.
 * owner_live: the owner's forward entry exists with rn's backend, is not
 * closing and has not expired (only asked when the key is not its own). */
SLUICE_INLINE int sluice_ct_may_take_reply(const struct sluice_flow_key *client, const struct sluice_rnat_entry *rn,
					   int owner_live)
{
	return sluice_ct_reply_is_own(client, rn) || !owner_live;
}

#endif

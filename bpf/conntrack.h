/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking: the forward entry (client -> VIP tuple) remembers the
 * backend; the reverse entry (backend -> client tuple) remembers the VIP to
 * restore. Both live in LRU hashes; an entry is treated as gone once idle
 * past its timeout, and the flow's closing is counted once, on the first
 * FIN/RST or when an expired/orphaned entry is replaced. */
#ifndef SLUICE_BPF_CONNTRACK_H
#define SLUICE_BPF_CONNTRACK_H

#include "sluice_maps.h"
#include "packet_parse.h"
#include "sluice/conntrack_rules.h"

static __always_inline struct sluice_counters *counters_of(void *map, __u32 index)
{
	return bpf_map_lookup_elem(map, &index);
}

static __always_inline void count_global(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&sluice_global_stats, &index);

	if (value)
		*value += 1;
}

static __always_inline __u64 conntrack_timeout(const struct sluice_ctrl *ctrl, __u8 proto, __u16 flags)
{
	if ((flags & SLUICE_CT_F_CLOSING) || (proto == IPPROTO_TCP && !(flags & SLUICE_CT_F_REPLIED)))
		return ctrl->closing_ns;
	return proto == IPPROTO_TCP ? ctrl->tcp_idle_ns : ctrl->udp_idle_ns;
}

/* The program's clock: CLOCK_MONOTONIC as of the last tick
 * (bpf_ktime_get_coarse_ns), a few ms behind but a plain memory read, where
 * bpf_ktime_get_ns reads the clocksource (~20 ns a call in a VM, see
 * docs/benchmarks.md). Idle timeouts are seconds; a tick does not matter. */
static __always_inline __u64 conntrack_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* Expired: idle for at least its timeout. A last_seen ahead of `now` (written
 * with the precise clock, by userspace or a test) is not idle at all. With
 * the tick-resolution clock, "at least" makes a zero timeout expire at once. */
static __always_inline int conntrack_expired(const struct sluice_ctrl *ctrl, const struct sluice_ct_entry *ct,
					     __u8 proto, __u64 now)
{
	return now >= ct->last_seen_ns && now - ct->last_seen_ns >= conntrack_timeout(ctrl, proto, ct->flags);
}

/* Counts the end of a flow once: service, subset and backend counters and
 * the backend's monotonic closed counter that least-request reads. */
static __always_inline void conntrack_count_closed(__u32 service_stat, __u32 subset_stat, __u32 backend_id)
{
	struct sluice_counters *c;
	struct sluice_backend_load *load;

	c = counters_of(&sluice_service_stats, service_stat);
	if (c)
		c->closed_flows++;
	c = counters_of(&sluice_subset_stats, subset_stat);
	if (c)
		c->closed_flows++;
	c = counters_of(&sluice_backend_stats, backend_id);
	if (c)
		c->closed_flows++;
	load = bpf_map_lookup_elem(&sluice_backend_load, &backend_id);
	if (load)
		__sync_fetch_and_add(&load->l4_closed, 1);
}

/* Counts a new flow and its first packet (`bytes` long, client -> backend),
 * with one counter lookup per service, subset and backend. */
static __always_inline void conntrack_count_opened(__u32 service_stat, __u32 subset_stat, __u32 backend_id,
						   __u32 bytes)
{
	struct sluice_counters *c;
	struct sluice_backend_load *load;

	c = counters_of(&sluice_service_stats, service_stat);
	if (c) {
		c->new_flows++;
		c->packets_in++;
		c->bytes_in += bytes;
	}
	c = counters_of(&sluice_subset_stats, subset_stat);
	if (c) {
		c->new_flows++;
		c->packets_in++;
		c->bytes_in += bytes;
	}
	c = counters_of(&sluice_backend_stats, backend_id);
	if (c) {
		c->new_flows++;
		c->packets_in++;
		c->bytes_in += bytes;
	}
	load = bpf_map_lookup_elem(&sluice_backend_load, &backend_id);
	if (load)
		__sync_fetch_and_add(&load->l4_opened, 1);
	count_global(SLUICE_G_NEW_FLOWS);
}

/* Marks a tracked flow closing on its first FIN or RST. */
static __always_inline void conntrack_mark_closing(struct sluice_ct_entry *ct)
{
	if (ct->flags & SLUICE_CT_F_CLOSING)
		return;
	ct->flags |= SLUICE_CT_F_CLOSING;
	conntrack_count_closed(ct->service_stat, ct->subset_stat, ct->backend_id);
}

/* Gives up tracked flow `ct`, stored under `key`, whose tuple a flow the
 * kernel owns (an L7 or PASSTHROUGH service's) now uses: counted closed if it
 * was not, then deleted with its reverse entry, so that no later packet of
 * the new flow (its handshake ACK, its data) follows the old entry to the old
 * backend, and no reply of the new flow from that same backend is rewritten
 * behind the kernel's NAT. This happens when a client re-uses the tuple of a
 * flow still tracked as closing after the service's policy changed
 * (docs/bpf-datapath.md, "A tuple handed to the kernel"). */
static __always_inline void conntrack_give_up(const struct sluice_flow_key *key, struct sluice_ct_entry *ct)
{
	__u32 backend_id = ct->backend_id;
	const struct sluice_backend *backend = bpf_map_lookup_elem(&sluice_backends, &backend_id);

	count_global(SLUICE_G_CT_GIVEN_UP);
	conntrack_mark_closing(ct);
	if (backend) {
		struct sluice_flow_key reply = {
			.sport = backend->port,
			.dport = key->sport,
			.proto = key->proto,
			.family = key->family,
		};
		struct sluice_rnat_entry *rn;

		__builtin_memcpy(reply.src, backend->addr, 16);
		__builtin_memcpy(reply.dst, key->src, 16);
		rn = bpf_map_lookup_elem(&sluice_reverse_nat, &reply);
		// Only this flow's own reverse entry: same VIP and port.
		if (rn && rn->vip_port == key->dport && rn->vip[0] == key->dst[0] && rn->vip[1] == key->dst[1] &&
		    rn->vip[2] == key->dst[2] && rn->vip[3] == key->dst[3])
			bpf_map_delete_elem(&sluice_reverse_nat, &reply);
	}
	bpf_map_delete_elem(&sluice_conntrack, key);
}

/* Whether the flow owning reverse entry `rn` (stored under `reply`) is
 * still live: its forward entry holds the same backend, is not closing and
 * has not expired. */
static __always_inline int conntrack_owner_live(const struct sluice_ctrl *ctrl, const struct sluice_flow_key *reply,
						const struct sluice_rnat_entry *rn, __u64 now)
{
	struct sluice_flow_key owner;
	struct sluice_ct_entry *ct;

	sluice_ct_owner_key(reply, rn, &owner);
	ct = bpf_map_lookup_elem(&sluice_conntrack, &owner);
	return ct && ct->backend_id == rn->backend_id && !(ct->flags & SLUICE_CT_F_CLOSING) &&
	       !conntrack_expired(ctrl, ct, reply->proto, now);
}

/* Writes a new flow's entry over the entry of the same key it replaces, in
 * place: an update would allocate a fresh LRU element and free the old one
 * under the bucket and LRU locks, the bulk of a new flow's cost (see
 * docs/benchmarks.md). The flow's identity is written first and its clock
 * last, so a reader that sees the new last_seen_ns sees the new backend on
 * a CPU that keeps stores in order (x86); the agent's reaper reads
 * last_seen_ns first. */
static __always_inline void conntrack_rewrite(struct sluice_ct_entry *ct, const struct sluice_ct_entry *val)
{
	ct->backend_id = val->backend_id;
	ct->service_stat = val->service_stat;
	ct->subset_stat = val->subset_stat;
	ct->flags = val->flags;
	__asm__ __volatile__("" ::: "memory");
	*(volatile __u64 *)&ct->last_seen_ns = val->last_seen_ns;
}

/* The same for a reverse entry held by the flow's own client -> VIP tuple
 * (its VIP and port stay as they are). */
static __always_inline void conntrack_rewrite_reply(struct sluice_rnat_entry *rn, const struct sluice_rnat_entry *val)
{
	rn->backend_id = val->backend_id;
	rn->service_stat = val->service_stat;
	rn->subset_stat = val->subset_stat;
	rn->flags = val->flags;
	__asm__ __volatile__("" ::: "memory");
	*(volatile __u64 *)&rn->last_seen_ns = val->last_seen_ns;
}

/* Stores the reverse entry `rn` of new flow `client` under `reply`. A key
 * held by another live flow is not taken over
 * (include/sluice/conntrack_rules.h): -1 then, nothing stored. `held_likely`:
 * the flow replaces an entry whose backend had this reply key's address and
 * port, so the key is probably there already and is looked up first (a
 * BPF_NOEXIST update of an LRU hash pops and pushes back a free element
 * before it finds the key). */
static __always_inline int conntrack_store_reply(const struct sluice_ctrl *ctrl, const struct sluice_flow_key *client,
						 const struct sluice_flow_key *reply,
						 const struct sluice_rnat_entry *rn, __u64 now, int held_likely)
{
	struct sluice_rnat_entry *held;

	if (!held_likely && !bpf_map_update_elem(&sluice_reverse_nat, reply, rn, BPF_NOEXIST))
		return 0;
	held = bpf_map_lookup_elem(&sluice_reverse_nat, reply);
	if (held) {
		if (sluice_ct_reply_is_own(client, held)) {
			conntrack_rewrite_reply(held, rn);
			return 0;
		}
		if (conntrack_owner_live(ctrl, reply, held, now)) {
			count_global(SLUICE_G_CT_REPLY_CONFLICT);
			return -1;
		}
	}
	if (bpf_map_update_elem(&sluice_reverse_nat, reply, rn, BPF_ANY))
		count_global(SLUICE_G_CT_INSERT_FAILED);
	return 0;
}

/* Inserts the reverse and forward entries of a new flow. `client` is the
 * packet's key before DNAT; `replaced` the flow's expired, closing or
 * re-steered entry (NULL for a first packet), which is rewritten in place.
 * Returns -1 and inserts nothing when the reply key belongs to another live
 * flow. */
static __always_inline int conntrack_insert(const struct sluice_ctrl *ctrl, const struct sluice_flow_key *client,
					    const struct sluice_backend *backend, __u32 backend_id,
					    __u32 service_stat, __u32 subset_stat, __u64 now,
					    struct sluice_ct_entry *replaced)
{
	struct sluice_ct_entry ct = {
		.last_seen_ns = now,
		.backend_id = backend_id,
		.service_stat = service_stat,
		.subset_stat = subset_stat,
	};
	struct sluice_rnat_entry rn = {
		.last_seen_ns = now,
		.vip_port = client->dport,
		.backend_id = backend_id,
		.service_stat = service_stat,
		.subset_stat = subset_stat,
	};
	struct sluice_flow_key reply = {
		.sport = backend->port,
		.dport = client->sport,
		.proto = client->proto,
		.family = client->family,
	};
	int held_likely = 0;

	if (replaced) {
		__u32 old_id = replaced->backend_id;
		const struct sluice_backend *old = bpf_map_lookup_elem(&sluice_backends, &old_id);

		held_likely = old_id == backend_id ||
			      (old && old->port == backend->port && old->addr[0] == backend->addr[0] &&
			       old->addr[1] == backend->addr[1] && old->addr[2] == backend->addr[2] &&
			       old->addr[3] == backend->addr[3]);
	}
	__builtin_memcpy(rn.vip, client->dst, 16);
	__builtin_memcpy(reply.src, backend->addr, 16);
	__builtin_memcpy(reply.dst, client->src, 16);
	if (conntrack_store_reply(ctrl, client, &reply, &rn, now, held_likely))
		return -1;
	if (replaced)
		conntrack_rewrite(replaced, &ct);
	else if (bpf_map_update_elem(&sluice_conntrack, client, &ct, BPF_ANY))
		count_global(SLUICE_G_CT_INSERT_FAILED);
	return 0;
}

#endif

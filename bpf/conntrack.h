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
	if (flags & SLUICE_CT_F_CLOSING)
		return ctrl->closing_ns;
	return proto == IPPROTO_TCP ? ctrl->tcp_idle_ns : ctrl->udp_idle_ns;
}

static __always_inline int conntrack_expired(const struct sluice_ctrl *ctrl, const struct sluice_ct_entry *ct,
					     __u8 proto, __u64 now)
{
	return now - ct->last_seen_ns > conntrack_timeout(ctrl, proto, ct->flags);
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

static __always_inline void conntrack_count_opened(__u32 service_stat, __u32 subset_stat, __u32 backend_id)
{
	struct sluice_counters *c;
	struct sluice_backend_load *load;

	c = counters_of(&sluice_service_stats, service_stat);
	if (c)
		c->new_flows++;
	c = counters_of(&sluice_subset_stats, subset_stat);
	if (c)
		c->new_flows++;
	c = counters_of(&sluice_backend_stats, backend_id);
	if (c)
		c->new_flows++;
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

/* Inserts the forward and reverse entries of a new flow. `client` is the
 * packet's key before DNAT. */
static __always_inline void conntrack_insert(const struct sluice_flow_key *client,
					     const struct sluice_backend *backend,
					     __u32 backend_id, __u32 service_stat, __u32 subset_stat, __u64 now)
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

	__builtin_memcpy(rn.vip, client->dst, 16);
	__builtin_memcpy(reply.src, backend->addr, 16);
	__builtin_memcpy(reply.dst, client->src, 16);
	if (bpf_map_update_elem(&sluice_conntrack, client, &ct, BPF_ANY) ||
	    bpf_map_update_elem(&sluice_reverse_nat, &reply, &rn, BPF_ANY))
		count_global(SLUICE_G_CT_INSERT_FAILED);
}

#endif

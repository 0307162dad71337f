/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-packet steering decision for a new flow, written once and compiled
 * into every data plane (the XDP program, the DPDK forwarder, tests):
 *
 *   service port -> route destination by weight (hash of the 5-tuple, so a
 *   retransmitted SYN lands on the same subset) -> backend inside the subset
 *   by the subset's policy (round robin, random, least request P2C, Maglev,
 *   passthrough).
 *
 * The code is parameterised over how tables are read. Before including this
 * header, the includer defines SLUICE_STEER_ENV (a struct type) and these
 * functions (static, inline) with exactly these signatures:
 *
 *   const struct sluice_subset *sluice_env_subset(SLUICE_STEER_ENV *env, __u32 index);
 *   const struct sluice_member *sluice_env_member(SLUICE_STEER_ENV *env, __u32 index);
 *   const __u32 *sluice_env_schedule(SLUICE_STEER_ENV *env, __u32 index);
 *   const __u32 *sluice_env_maglev(SLUICE_STEER_ENV *env, __u32 index);
 *   __u64 sluice_env_backend_load(SLUICE_STEER_ENV *env, __u32 backend_id);
 *   __u32 sluice_env_rr_next(SLUICE_STEER_ENV *env, __u32 rr_slot);  (fetch-and-increment)
 *   __u32 sluice_env_random(SLUICE_STEER_ENV *env);
 *
 * A NULL return means "no such entry". Indices are absolute (the caller's
 * tables already hold the right half, see datapath_structs.h).
 *
 * SLUICE_INLINE defaults to `static inline __attribute__((always_inline))`,
 * which BPF needs (no function pointers, no calls across the verifier's
 * frames with packet pointers) and C/C++ accept.
 */
#ifndef SLUICE_STEER_DECIDE_H
#define SLUICE_STEER_DECIDE_H

#include <linux/types.h>

#include "sluice/datapath_structs.h"

#ifndef SLUICE_INLINE
#define SLUICE_INLINE static inline __attribute__((always_inline))
#endif

#ifndef SLUICE_STEER_ENV
#error "define SLUICE_STEER_ENV and the sluice_env_* readers before including sluice/steer_decide.h"
#endif

/* The outcome of a decision. backend_id 0 means none (see datapath_structs.h). */
struct sluice_decision {
	__u32 action;         /* SLUICE_ACT_* */
	__u32 route;          /* index of the route destination picked */
	__u32 subset_index;   /* absolute index into the subset table */
	__u32 subset_stat;
	__u32 backend_id;
	__u32 pad;
};

/* Flow hash: MurmurHash3's 32-bit mixing over the key's words, in memory
 * order. Both data planes run on little-endian hosts and hash the same
 * bytes, so they agree on every value. */
SLUICE_INLINE __u32 sluice_hash_rotl(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

SLUICE_INLINE __u32 sluice_hash_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51u;
	k = sluice_hash_rotl(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = sluice_hash_rotl(h, 13);
	return h * 5 + 0xe6546b64u;
}

SLUICE_INLINE __u32 sluice_hash_finish(__u32 h, __u32 len_bytes)
{
	h ^= len_bytes;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Hash of the whole 5-tuple (addresses, ports, protocol). */
SLUICE_INLINE __u32 sluice_flow_hash(const struct sluice_flow_key *k, __u32 seed)
{
	__u32 h = seed;

	h = sluice_hash_mix(h, k->src[0]);
	h = sluice_hash_mix(h, k->src[1]);
	h = sluice_hash_mix(h, k->src[2]);
	h = sluice_hash_mix(h, k->src[3]);
	h = sluice_hash_mix(h, k->dst[0]);
	h = sluice_hash_mix(h, k->dst[1]);
	h = sluice_hash_mix(h, k->dst[2]);
	h = sluice_hash_mix(h, k->dst[3]);
	h = sluice_hash_mix(h, ((__u32)k->sport << 16) | k->dport);
	h = sluice_hash_mix(h, ((__u32)k->family << 8) | k->proto);
	return sluice_hash_finish(h, 40);
}

/* Hash of the source address only (consistentHash.useSourceIp). */
SLUICE_INLINE __u32 sluice_source_hash(const struct sluice_flow_key *k, __u32 seed)
{
	__u32 h = seed;

	h = sluice_hash_mix(h, k->src[0]);
	h = sluice_hash_mix(h, k->src[1]);
	h = sluice_hash_mix(h, k->src[2]);
	h = sluice_hash_mix(h, k->src[3]);
	return sluice_hash_finish(h, 16);
}

/* Maps a 32-bit value uniformly onto [0, n) without a division. */
SLUICE_INLINE __u32 sluice_scale(__u32 x, __u32 n)
{
	return (__u32)(((__u64)x * n) >> 32);
}

/* Route destination by weight. Returns the route index, or route_count when
 * every route has weight 0. */
SLUICE_INLINE __u32 sluice_select_weighted_route(const struct sluice_service *svc, __u32 route_hash)
{
	__u32 slice = route_hash >> 16;  /* 0 .. SLUICE_ROUTE_SCALE-1 */
	__u32 i;

	for (i = 0; i < SLUICE_MAX_ROUTES; i++) {
		if (i >= svc->route_count)
			break;
		if (slice < svc->route_bound[i])
			return i;
	}
	return svc->route_count;
}

/* ROUND_ROBIN: the next slot of the subset's smooth WRR cycle. */
SLUICE_INLINE __u32 sluice_pick_round_robin(SLUICE_STEER_ENV *env, const struct sluice_subset *sub)
{
	__u32 cursor, pos;
	const __u32 *id;

	if (sub->schedule_len == 0)
		return 0;
	cursor = sluice_env_rr_next(env, sub->rr_slot);
	pos = cursor % sub->schedule_len;
	id = sluice_env_schedule(env, sub->schedule_first + pos);
	return id ? *id : 0;
}

/* RANDOM: a uniform slot of the WRR cycle, in which every backend appears
 * `weight` times, so unequal weights give a weighted choice. */
SLUICE_INLINE __u32 sluice_pick_random(SLUICE_STEER_ENV *env, const struct sluice_subset *sub)
{
	const __u32 *id;

	if (sub->schedule_len == 0)
		return 0;
	id = sluice_env_schedule(env, sub->schedule_first +
				 sluice_scale(sluice_env_random(env), sub->schedule_len));
	return id ? *id : 0;
}

/* LEAST_REQUEST: power of two choices between two distinct members, the one
 * with the lower load per unit of weight wins (ties: the first). */
SLUICE_INLINE __u32 sluice_pick_least_request(SLUICE_STEER_ENV *env, const struct sluice_subset *sub)
{
	const struct sluice_member *a, *b;
	__u32 n = sub->member_count, i, j;
	__u64 load_a, load_b;

	if (n == 0)
		return 0;
	i = sluice_scale(sluice_env_random(env), n);
	a = sluice_env_member(env, sub->member_first + i);
	if (!a)
		return 0;
	if (n == 1)
		return a->backend_id;
	j = (i + 1 + sluice_scale(sluice_env_random(env), n - 1)) % n;
	b = sluice_env_member(env, sub->member_first + j);
	if (!b)
		return a->backend_id;
	load_a = sluice_env_backend_load(env, a->backend_id);
	load_b = sluice_env_backend_load(env, b->backend_id);
	/* load_a / weight_a <= load_b / weight_b, without division */
	return load_a * b->weight <= load_b * a->weight ? a->backend_id : b->backend_id;
}

/* consistentHash (Maglev): the table slot of the flow's (or source's) hash. */
SLUICE_INLINE __u32 sluice_pick_maglev(SLUICE_STEER_ENV *env, const struct sluice_subset *sub,
				       const struct sluice_flow_key *key, __u32 seed)
{
	const __u32 *id;
	__u32 h;

	if (sub->maglev_len == 0)
		return 0;
	h = sub->hash_source == SLUICE_HASH_SOURCE_IP
		    ? sluice_source_hash(key, seed ^ SLUICE_HASH_SALT_SUBSET)
		    : sluice_flow_hash(key, seed ^ SLUICE_HASH_SALT_SUBSET);
	id = sluice_env_maglev(env, sub->maglev_first + sluice_scale(h, sub->maglev_len));
	return id ? *id : 0;
}

/* The first half of a new flow's decision: the route by weight and its
 * subset. Returns the subset whose policy picks the backend (out->action is
 * still SLUICE_ACT_DROP_NO_BACKEND), or NULL when the decision is already
 * complete: L7, PASSTHROUGH, or no usable route or subset.
 *
 * A data plane that may refuse the flow after this point (a TCP packet other
 * than a SYN creates no state, conntrack_rules.h) checks between the halves,
 * so that a refused packet moves no round-robin cursor and draws no random
 * number: a spoofed flood cannot skew how real connections are spread. */
SLUICE_INLINE const struct sluice_subset *sluice_steer_choose_subset(SLUICE_STEER_ENV *env,
								      const struct sluice_service *svc,
								      const struct sluice_flow_key *key, __u32 seed,
								      struct sluice_decision *out)
{
	const struct sluice_subset *sub;
	__u32 route;

	out->action = SLUICE_ACT_DROP_NO_BACKEND;
	out->route = 0;
	out->subset_index = 0;
	out->subset_stat = 0;
	out->backend_id = 0;
	out->pad = 0;

	if (svc->flags & SLUICE_SERVICE_F_L7) {
		out->action = SLUICE_ACT_PASS_L7;
		return 0;
	}
	route = sluice_select_weighted_route(svc, sluice_flow_hash(key, seed ^ SLUICE_HASH_SALT_ROUTE));
	if (route >= SLUICE_MAX_ROUTES || route >= svc->route_count)
		return 0;
	out->route = route;
	out->subset_index = svc->route_subset[route];
	sub = sluice_env_subset(env, out->subset_index);
	if (!sub)
		return 0;
	out->subset_stat = sub->stat_id;
	if (sub->policy == SLUICE_POLICY_PASSTHROUGH) {
		out->action = SLUICE_ACT_PASS_PASSTHROUGH;
		return 0;
	}
	return sub;
}

/* The second half: the backend inside `sub` by its policy (FORWARD), or
 * out->action left at SLUICE_ACT_DROP_NO_BACKEND when none is live. */
SLUICE_INLINE void sluice_steer_pick_backend(SLUICE_STEER_ENV *env, const struct sluice_subset *sub,
					     const struct sluice_flow_key *key, __u32 seed,
					     struct sluice_decision *out)
{
	__u32 backend = 0;

	switch (sub->policy) {
	case SLUICE_POLICY_ROUND_ROBIN:
		backend = sluice_pick_round_robin(env, sub);
		break;
	case SLUICE_POLICY_RANDOM:
		backend = sluice_pick_random(env, sub);
		break;
	case SLUICE_POLICY_LEAST_REQUEST:
		backend = sluice_pick_least_request(env, sub);
		break;
	case SLUICE_POLICY_MAGLEV:
		backend = sluice_pick_maglev(env, sub, key, seed);
		break;
	default:
		break;
	}
	if (backend != 0) {
		out->action = SLUICE_ACT_FORWARD;
		out->backend_id = backend;
	}
}

/* The whole decision for a new flow of service port `svc`. */
SLUICE_INLINE void sluice_steer_decide(SLUICE_STEER_ENV *env, const struct sluice_service *svc,
				       const struct sluice_flow_key *key, __u32 seed,
				       struct sluice_decision *out)
{
	const struct sluice_subset *sub = sluice_steer_choose_subset(env, svc, key, seed, out);

	if (sub)
		sluice_steer_pick_backend(env, sub, key, seed, out);
}

#endif

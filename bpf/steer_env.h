/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The BPF table readers behind include/sluice/steer_decide.h: map lookups. */
#ifndef SLUICE_BPF_STEER_ENV_H
#define SLUICE_BPF_STEER_ENV_H

#include "sluice_maps.h"

struct bpf_steer_env {
	__u32 unused;
};

#define SLUICE_STEER_ENV struct bpf_steer_env

static __always_inline const struct sluice_subset *sluice_env_subset(struct bpf_steer_env *env, __u32 index)
{
	return bpf_map_lookup_elem(&sluice_subsets, &index);
}

static __always_inline const struct sluice_member *sluice_env_member(struct bpf_steer_env *env, __u32 index)
{
	return bpf_map_lookup_elem(&sluice_members, &index);
}

static __always_inline const __u32 *sluice_env_schedule(struct bpf_steer_env *env, __u32 index)
{
	return bpf_map_lookup_elem(&sluice_schedule, &index);
}

static __always_inline const __u32 *sluice_env_maglev(struct bpf_steer_env *env, __u32 index)
{
	return bpf_map_lookup_elem(&sluice_maglev, &index);
}

/* Active L7 requests plus open L4 connections. */
static __always_inline __u64 sluice_env_backend_load(struct bpf_steer_env *env, __u32 backend_id)
{
	struct sluice_backend_load *load = bpf_map_lookup_elem(&sluice_backend_load, &backend_id);

	if (!load)
		return 0;
	return load->l7_active + sluice_l4_active(load->l4_opened, load->l4_closed, load->l4_reaped);
}

static __always_inline __u32 sluice_env_rr_next(struct bpf_steer_env *env, __u32 rr_slot)
{
	__u32 *cursor = bpf_map_lookup_elem(&sluice_rr_cursor, &rr_slot);

	if (!cursor)
		return 0;
	return __sync_fetch_and_add(cursor, 1);
}

static __always_inline __u32 sluice_env_random(struct bpf_steer_env *env)
{
	return bpf_get_prandom_u32();
}

#include "sluice/steer_decide.h"

#endif

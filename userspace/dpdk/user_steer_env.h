/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The userspace table readers behind include/sluice/steer_decide.h: reads of
 * the pinned config arrays in place through their mmap (see steer_tables.h),
 * the shared least-request map likewise, round-robin cursors and a random
 * state owned by one lcore. No syscall, no lock.
 */
#ifndef SLUICE_DPDK_USER_STEER_ENV_H
#define SLUICE_DPDK_USER_STEER_ENV_H

#include <linux/types.h>
#include <stddef.h>

#include "sluice/datapath_structs.h"
#include "dpdk/steer_random.h"

struct sluice_user_steer_env {
	const struct sluice_subset *subsets;
	__u32 subset_count;
	__u32 member_count;
	const struct sluice_member *members;
	const __u32 *schedule;
	__u32 schedule_count;
	__u32 schedule_stride;                    /* bytes between slots (8 in a BPF array mmap) */
	const __u32 *maglev;
	__u32 maglev_count;
	__u32 maglev_stride;
	const struct sluice_backend_load *load;  /* mmapped, written concurrently */
	__u32 load_count;
	__u32 rr_count;
	__u32 *rr_cursor;                         /* this lcore's cursors */
	__u64 random_state;
};

#define SLUICE_STEER_ENV struct sluice_user_steer_env

static inline const struct sluice_subset *sluice_env_subset(struct sluice_user_steer_env *env, __u32 index)
{
	return index < env->subset_count ? &env->subsets[index] : NULL;
}

static inline const struct sluice_member *sluice_env_member(struct sluice_user_steer_env *env, __u32 index)
{
	return index < env->member_count ? &env->members[index] : NULL;
}

static inline const __u32 *sluice_env_schedule(struct sluice_user_steer_env *env, __u32 index)
{
	return index < env->schedule_count
		       ? (const __u32 *)((const char *)env->schedule + (size_t)index * env->schedule_stride)
		       : NULL;
}

static inline const __u32 *sluice_env_maglev(struct sluice_user_steer_env *env, __u32 index)
{
	return index < env->maglev_count
		       ? (const __u32 *)((const char *)env->maglev + (size_t)index * env->maglev_stride)
		       : NULL;
}

/* Active L7 requests plus open L4 connections, as bpf/steer_env.h counts them. */
static inline __u64 sluice_env_backend_load(struct sluice_user_steer_env *env, __u32 backend_id)
{
	const struct sluice_backend_load *load;

	if (!env->load || backend_id >= env->load_count)
		return 0;
	load = &env->load[backend_id];
	return __atomic_load_n(&load->l7_active, __ATOMIC_RELAXED) +
	       sluice_l4_active(__atomic_load_n(&load->l4_opened, __ATOMIC_RELAXED),
				__atomic_load_n(&load->l4_closed, __ATOMIC_RELAXED),
				__atomic_load_n(&load->l4_reaped, __ATOMIC_RELAXED));
}

static inline __u32 sluice_env_rr_next(struct sluice_user_steer_env *env, __u32 rr_slot)
{
	if (rr_slot >= env->rr_count)
		return 0;
	return env->rr_cursor[rr_slot]++;
}

static inline __u32 sluice_env_random(struct sluice_user_steer_env *env)
{
	return sluice_random_next(&env->random_state);
}

#include "sluice/steer_decide.h"

#endif

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The production XDP program (bpf/sluice_steer.bpf.c, included whole, not
 * copied) with one change for the differential test: bpf_get_prandom_u32()
 * draws from the forwarder's generator (userspace/dpdk/steer_random.h) with
 * its state in a map the test seeds, so RANDOM and LEAST_REQUEST picks are
 * reproducible and comparable with the DPDK decision code draw for draw.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "dpdk/steer_random.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} slc_test_random SEC(".maps");

static __always_inline __u32 differential_random(void)
{
	__u32 zero = 0;
	__u64 *state = bpf_map_lookup_elem(&slc_test_random, &zero);

	return state ? sluice_random_next(state) : 0;
}

/* Function-like, so it rewrites the calls in bpf/steer_env.h and leaves the
 * helper's declaration (already seen above) alone. */
#define bpf_get_prandom_u32() differential_random()

#include "sluice_steer.bpf.c"

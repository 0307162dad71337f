/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The random source of the forwarder's RANDOM and LEAST_REQUEST picks: one
 * 64-bit LCG step (Knuth's MMIX constants), high half out. Plain C so the
 * differential test can build the same generator into a test variant of the
 * XDP program; with equal seeds both data planes draw the same sequence.
 */
#ifndef SLUICE_DPDK_STEER_RANDOM_H
#define SLUICE_DPDK_STEER_RANDOM_H

#include <linux/types.h>

static inline __attribute__((always_inline)) __u32 sluice_random_next(__u64 *state)
{
	*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (__u32)(*state >> 32);
}

#endif

/*
 * rng.h — the library's PRNG: xoshiro256** (Blackman & Vigna), seeded by
 * splitmix64. Streams are generated sequentially, so they are the same on
 * every backend and thread count. Lua-free.
 */
#ifndef SL_RNG_H
#define SL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_rng {
	uint64_t s[4];
} sl_rng;

void sl_rng_seed(sl_rng *r, uint64_t seed);
uint64_t sl_rng_next(sl_rng *r);
/* n floats uniform on [0, 1): 24 random bits each. */
void sl_rng_uniform(sl_rng *r, size_t n, float *y);
/* n floats from N(0, 1) by the Box–Muller transform in double. */
void sl_rng_normal(sl_rng *r, size_t n, float *y);

#endif

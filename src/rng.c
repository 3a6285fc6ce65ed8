/*
 * rng.c — xoshiro256** and the distributions built on it.
 */
#include <math.h>

#include "rng.h"

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void sl_rng_seed(sl_rng *r, uint64_t seed)
{
	/* splitmix64 never yields four zero words, xoshiro's one bad state */
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

uint64_t sl_rng_next(sl_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

void sl_rng_uniform(sl_rng *r, size_t n, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = (float)(sl_rng_next(r) >> 40) * 0x1p-24f;
}

/* uniform on (0, 1): 53 bits, never 0 */
static double open01(sl_rng *r) { return ((double)(sl_rng_next(r) >> 11) + 0.5) * 0x1p-53; }

void sl_rng_normal(sl_rng *r, size_t n, float *y)
{
	const double two_pi = 6.283185307179586476925286766559;
	for (size_t i = 0; i < n; i += 2) {
		double rad = sqrt(-2.0 * log(open01(r)));
		double th = two_pi * open01(r);
		y[i] = (float)(rad * cos(th));
		if (i + 1 < n)
			y[i + 1] = (float)(rad * sin(th));
	}
}

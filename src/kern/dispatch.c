/*
 * dispatch.c — which backends this build has and this CPU can run.
 *
 * The lists are best first; the first available backend is the default.
 */
#include <string.h>

#include "kern.h"

static const sl_kern *const known[] = {
#if defined(__x86_64__) || defined(__i386__)
	&sl_kern__avx2,
	&sl_kern__sse2,
#elif defined(__aarch64__)
	&sl_kern__neon,
#endif
	&sl_kern_scalar,
};

static int runs_here(const sl_kern *k)
{
#if defined(__x86_64__) || defined(__i386__)
	if (k == &sl_kern__avx2) {
		/* libgcc also checks that the OS saves the YMM state (XGETBV). */
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	/* SSE2 is part of x86-64. */
#endif
	(void)k;
	return 1;
}

int sl_kern_known(const sl_kern **out)
{
	int n = (int)(sizeof known / sizeof known[0]);
	for (int i = 0; i < n; i++)
		out[i] = known[i];
	return n;
}

int sl_kern_available(const sl_kern **out)
{
	int m = 0;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (runs_here(known[i]))
			out[m++] = known[i];
	return m;
}

const sl_kern *sl_kern_find(const char *name)
{
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(known[i]->name, name) == 0)
			return runs_here(known[i]) ? known[i] : NULL;
	return NULL;
}

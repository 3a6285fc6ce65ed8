/*
 * mem.c — the memory limit (mem.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* "1.5 GiB" */
static const char *human(size_t b, char *buf, size_t len)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024.0 && u < 6) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%zu B", b);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/* the value of "key:" (or "key ") in a /proc-style file, times scale; -1 when absent */
static long long field(const char *path, const char *key, long long scale)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[256];
	size_t kl = strlen(key);
	long long v = -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, kl) == 0 && (line[kl] == ':' || line[kl] == ' ')) {
			char *end;
			long long x = strtoll(line + kl + 1, &end, 10);
			if (end != line + kl + 1 && x >= 0)
				v = x > LLONG_MAX / scale ? LLONG_MAX : x * scale;
			break;
		}
	}
	fclose(f);
	return v;
}

/* a file holding one number (or "max": no limit, -2); -1 when absent or unreadable */
static long long number(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[64];
	long long v = -1;
	if (fgets(line, sizeof line, f)) {
		if (strncmp(line, "max", 3) == 0)
			v = -2;
		else {
			char *end;
			long long x = strtoll(line, &end, 10);
			if (end != line && x >= 0)
				v = x;
		}
	}
	fclose(f);
	return v;
}

/* The room under the cgroup limits of dir and its ancestors (the files
 * named lim, cur and stat's inactive-file key in each): the smallest
 * limit - usage + inactive file pages, or -1 when no level has a limit. */
static long long cgroup_room(const char *base, char *dir, const char *lim, const char *cur, const char *inact)
{
	long long room = -1;
	for (;;) {
		char p[4096];
		snprintf(p, sizeof p, "%s%s/%s", base, dir, lim);
		long long l = number(p);
		/* v1 says "no limit" with a huge number (LONG_MAX rounded to pages) */
		if (l >= 0 && l < ((long long)1 << 60)) {
			snprintf(p, sizeof p, "%s%s/%s", base, dir, cur);
			long long u = number(p);
			snprintf(p, sizeof p, "%s%s/memory.stat", base, dir);
			long long in = field(p, inact, 1);
			long long r = l - (u > 0 ? u : 0) + (in > 0 ? in : 0);
			if (r > l)
				r = l;
			if (r < 0)
				r = 0;
			if (room < 0 || r < room)
				room = r;
		}
		char *slash = strrchr(dir, '/');
		if (!slash || dir[0] == '\0')
			break;
		*slash = '\0'; /* the parent; "" is the hierarchy's root */
	}
	return room;
}

/* The room under this process's memory cgroups (v2 and v1), -1: no limit. */
static long long cgroups(const char *root)
{
	char p[4096], line[4096];
	snprintf(p, sizeof p, "%s/proc/self/cgroup", root);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	long long room = -1;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		/* hierarchy-id:controllers:path */
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || c2[1] != '/')
			continue;
		*c1 = *c2 = '\0';
		const char *ctl = c1 + 1;
		char *path = c2 + 1;
		if (strcmp(path, "/") == 0)
			path[0] = '\0';
		long long r = -1;
		char base[4096];
		if (strcmp(line, "0") == 0 && ctl[0] == '\0') {
			snprintf(base, sizeof base, "%s/sys/fs/cgroup", root);
			r = cgroup_room(base, path, "memory.max", "memory.current", "inactive_file");
		} else {
			/* v1: a comma-separated controller list holding "memory" */
			int mem = 0;
			for (const char *s = ctl; *s;) {
				size_t n = strcspn(s, ",");
				if (n == 6 && strncmp(s, "memory", 6) == 0)
					mem = 1;
				s += n + (s[n] == ',');
			}
			if (mem) {
				snprintf(base, sizeof base, "%s/sys/fs/cgroup/memory", root);
				r = cgroup_room(base, path, "memory.limit_in_bytes", "memory.usage_in_bytes",
				                "total_inactive_file");
			}
		}
		if (r >= 0 && (room < 0 || r < room))
			room = r;
	}
	fclose(f);
	return room;
}

size_t sl_mem_available_at(const char *root, char *what, size_t len)
{
	char p[4096], a[32], b[32], c[32];
	snprintf(p, sizeof p, "%s/proc/meminfo", root);
	long long avail = field(p, "MemAvailable", 1024), swap = field(p, "SwapFree", 1024);
	long long cg = cgroups(root);
	if (avail < 0) {
		if (what && len)
			snprintf(what, len, "no MemAvailable in /proc/meminfo");
		if (cg < 0)
			return SIZE_MAX;
		avail = cg;
		swap = 0;
	}
	if (swap < 0)
		swap = 0;
	size_t sys = (size_t)avail + (size_t)swap;
	if (cg >= 0 && (size_t)cg < sys) {
		if (what && len)
			snprintf(what, len, "the memory cgroup's limit leaves %s (MemAvailable %s + SwapFree %s)",
			         human((size_t)cg, a, sizeof a), human((size_t)avail, b, sizeof b),
			         human((size_t)swap, c, sizeof c));
		return (size_t)cg;
	}
	if (what && len)
		snprintf(what, len, "MemAvailable %s + SwapFree %s", human((size_t)avail, b, sizeof b),
		         human((size_t)swap, c, sizeof c));
	return sys;
}

/* SEGLOSS_MEMORY_LIMIT: bytes, SIZE_MAX when unset or not a number */
static size_t env_limit(void)
{
	const char *e = getenv("SEGLOSS_MEMORY_LIMIT");
	if (!e || !*e)
		return SIZE_MAX;
	char *end;
	unsigned long long v = strtoull(e, &end, 10);
	if (*end != '\0' || e[0] == '-')
		return SIZE_MAX;
	return v > SIZE_MAX ? SIZE_MAX : (size_t)v;
}

int sl_mem_fits(size_t bytes, char *what, size_t len)
{
	if (bytes < SL_MEM_BIG)
		return 1;
	char w[256], h[32];
	size_t room = sl_mem_available_at("", w, sizeof w), cap = env_limit();
	if (cap < room) {
		room = cap;
		snprintf(w, sizeof w, "SEGLOSS_MEMORY_LIMIT");
	}
	if (bytes <= room)
		return 1;
	if (what && len)
		snprintf(what, len, "%s available: %s", human(room, h, sizeof h), w);
	return 0;
}

void *sl_mem_malloc(size_t bytes)
{
	if (!sl_mem_fits(bytes, NULL, 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return malloc(bytes);
}

void *sl_mem_calloc(size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes) || !sl_mem_fits(bytes, NULL, 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return calloc(n, size);
}

void *sl_mem_aligned(size_t align, size_t bytes)
{
	if (!sl_mem_fits(bytes, NULL, 0)) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned_alloc(align, bytes);
}

/*
 * common.h — what the libFuzzer harnesses of fuzz/c share: a failed
 * invariant (a finding: abort, so that libFuzzer saves the input), reading
 * from a memory buffer, and a file that holds the input for readers that
 * take a path (a memfd: no disk, one per process).
 */
#ifndef SL_FUZZ_COMMON_H
#define SL_FUZZ_COMMON_H

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A failed allocation is an error the code must handle (not a crash), and
 * one of more than 2 GB fails: the harnesses see that path too. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1:max_allocation_size_mb=2048:intercept_tls_get_addr=0";
}

/* A broken invariant: say which and abort (libFuzzer saves the input). */
__attribute__((format(printf, 1, 2), noreturn)) static void finding(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "\nFINDING: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			finding(__VA_ARGS__); \
	} while (0)

/* An error message must say something, end inside its buffer and contain
 * `needle` (the file or argument it is about) if given. */
static inline void check_message(const char *err, size_t errlen, const char *needle, const char *what)
{
	CHECK(memchr(err, '\0', errlen) != NULL, "%s: message not terminated", what);
	CHECK(err[0] != '\0', "%s: an error without a message", what);
	if (needle)
		CHECK(strstr(err, needle) != NULL, "%s: message \"%s\" does not name \"%s\"", what, err, needle);
}

/* A memory buffer as a stream (for sl_npy_read_fn). */
typedef struct memstream {
	const uint8_t *p;
	size_t left;
} memstream;

static inline int64_t mem_read(void *ctx, void *buf, size_t n, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	memstream *m = ctx;
	size_t k = n < m->left ? n : m->left;
	memcpy(buf, m->p, k);
	m->p += k;
	m->left -= k;
	return (int64_t)k;
}

/* The input as a file: a memfd rewritten on each call, its path
 * /proc/self/fd/N (a path a reader can fopen). */
static inline const char *input_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("segloss-fuzz", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			exit(2);
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size)) {
		perror("memfd write");
		exit(2);
	}
	return path;
}

#endif

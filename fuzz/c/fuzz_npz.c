/*
 * fuzz_npz.c — libFuzzer harness of the .npz / checkpoint archive reader
 * (src/npz.c over libzip, src/npy.c for each entry): the input is a whole
 * archive, read as segloss.core.npz_load does (open, check the central
 * directory, then each entry: its .npy header, then its data).
 *
 * The archive is read twice, from the memory buffer (npz_load_string) and
 * from a file (npz_load, through a memfd's path), with the path as the label
 * of both: the two must give the same result and the same message.
 * Beyond "no crash, no sanitizer report":
 *   - every error starts with the archive's label in quotes;
 *   - an archive accepted has at most SL_NPZ_MAXENTRIES entries, names of at
 *     least one byte (".npy" removed), and no name twice;
 *   - an entry whose header is accepted has a sane header whose data size is
 *     what the entry holds, so the float array allocated for it is bounded
 *     by what deflate can give from the archive's bytes.
 */
#include "common.h"

#include "npz.h"

typedef struct result {
	int rc;
	size_t n, entries_read;
	uint64_t checksum; /* of names, shapes and data */
	char err[1024];
} result;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static void read_all(sl_npz *z, const char *label, result *r)
{
	size_t n = sl_npz_count(z);
	CHECK(n <= SL_NPZ_MAXENTRIES, "%zu entries", n);
	r->n = n;
	r->checksum = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *name = sl_npz_name(z, i, &len);
		CHECK(len >= 1 && strlen(name) == len + 4 && memcmp(name + len, ".npy", 4) == 0,
		      "entry %zu: name \"%s\", length %zu", i, name, len);
		for (size_t k = 0; k < i; k++) {
			size_t l2;
			const char *other = sl_npz_name(z, k, &l2);
			CHECK(!(l2 == len && memcmp(other, name, len) == 0), "entries %zu and %zu: the same name", k, i);
		}
		r->checksum = mix(r->checksum, name, len);
		sl_npy h;
		if (sl_npz_begin(z, i, &h, r->err, sizeof r->err) != 0) {
			r->rc = -1;
			return;
		}
		int64_t m = 1;
		CHECK(h.ndim >= 1 && h.ndim <= SL_MAXDIM, "entry %zu: ndim %d", i, h.ndim);
		for (int d = 0; d < h.ndim; d++)
			CHECK(h.shape[d] >= 1 && !__builtin_mul_overflow(m, h.shape[d], &m), "entry %zu: bad shape", i);
		CHECK((size_t)m == h.numel, "entry %zu: numel %zu, shape product %lld", i, h.numel, (long long)m);
		float *dst = malloc(h.numel * sizeof *dst);
		CHECK(dst != NULL, "entry %zu: out of memory for %zu floats", i, h.numel);
		int rc = sl_npz_read(z, &h, dst, r->err, sizeof r->err);
		if (rc == 0) {
			r->checksum = mix(r->checksum, h.shape, (size_t)h.ndim * sizeof h.shape[0]);
			r->checksum = mix(r->checksum, dst, h.numel * sizeof *dst);
		}
		free(dst);
		if (rc != 0) {
			r->rc = -1;
			return;
		}
		r->entries_read++;
	}
	(void)label;
}

static void load(const uint8_t *data, size_t size, const char *path, int from_file, result *r)
{
	memset(r, 0, sizeof *r);
	sl_npz *z = NULL;
	r->rc = from_file ? sl_npz_open_path(path, &z, r->err, sizeof r->err)
	                  : sl_npz_open_buffer(data, size, path, &z, r->err, sizeof r->err);
	if (r->rc == 0) {
		CHECK(z != NULL, "opened, but no archive");
		read_all(z, path, r);
	} else {
		CHECK(z == NULL, "failed, but an archive is left open");
	}
	sl_npz_close(z);
	if (r->rc != 0) {
		char q[80];
		snprintf(q, sizeof q, "'%s'", path);
		check_message(r->err, sizeof r->err, NULL, from_file ? "npz (file)" : "npz (buffer)");
		CHECK(strncmp(r->err, q, strlen(q)) == 0, "message \"%s\" does not start with %s", r->err, q);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0; /* "(empty)" and "(an empty file)": the two differ on purpose */
	const char *path = input_file(data, size);
	result a, b;
	load(data, size, path, 0, &a);
	load(data, size, path, 1, &b);
	CHECK(a.rc == b.rc, "buffer: %d (%s); file: %d (%s)", a.rc, a.rc ? a.err : "", b.rc, b.rc ? b.err : "");
	CHECK(a.n == b.n && a.entries_read == b.entries_read && a.checksum == b.checksum,
	      "buffer and file read different archives (%zu/%zu entries, %zu/%zu read)", a.n, b.n,
	      a.entries_read, b.entries_read);
	if (a.rc != 0)
		CHECK(strcmp(a.err, b.err) == 0, "messages differ:\n  buffer: %s\n  file:   %s", a.err, b.err);
	return 0;
}

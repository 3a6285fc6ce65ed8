/*
 * fuzz_npy.c — libFuzzer harness of the .npy reader (src/npy.c): the input
 * is a whole .npy file.
 *
 * Three readings of the same bytes must agree: the stream reader over the
 * memory buffer (as npz.c uses it), the FILE* reader over fmemopen (as
 * segloss.tensor.load uses it, with its size check before allocating), and
 * a stream that fails after a number of bytes (whose error must come back
 * as it was given). Beyond "no crash, no sanitizer report":
 *   - a header accepted has 1..SL_MAXDIM dimensions, none 0, numel their
 *     product (<= SL_MAXNUMEL), a dtype of npy.h's list, and starts the data
 *     where the reader stands;
 *   - data of the announced length reads (a float64 beyond float32 is the
 *     only error then, with its coordinates); float32 data comes back bit
 *     for bit, bool as 0/1, integers exactly below 2^24;
 *   - every error has a message.
 */
#include "common.h"

#include <math.h>

#include "npy.h"

typedef struct failing {
	memstream m;
	size_t budget; /* bytes it gives before failing */
} failing;

static int64_t failing_read(void *ctx, void *buf, size_t n, char *err, size_t errlen)
{
	failing *f = ctx;
	if (n > f->budget) {
		snprintf(err, errlen, "injected read error");
		return -1;
	}
	f->budget -= n;
	return mem_read(&f->m, buf, n, err, errlen);
}

/* reads the whole input through the stream reader; returns 0 or -1 with err */
static int read_stream(const uint8_t *data, size_t size, sl_npy *h, float **out, char *err, size_t errlen)
{
	memstream m = {data, size};
	*out = NULL;
	if (sl_npy_read_header_from(mem_read, &m, h, err, errlen) != 0)
		return -1;
	CHECK(h->ndim >= 1 && h->ndim <= SL_MAXDIM, "ndim %d", h->ndim);
	int64_t n = 1;
	for (int i = 0; i < h->ndim; i++) {
		CHECK(h->shape[i] >= 1, "dimension %d is %lld", i, (long long)h->shape[i]);
		CHECK(!__builtin_mul_overflow(n, h->shape[i], &n), "shape product overflows");
	}
	CHECK((size_t)n == h->numel && n <= SL_MAXNUMEL, "numel %zu, shape product %lld", h->numel, (long long)n);
	CHECK(strchr("fiub", h->kind) && h->kind != '\0', "kind '%c'", h->kind);
	CHECK(h->size == 1 || h->size == 2 || h->size == 4 || h->size == 8, "size %d", h->size);
	CHECK(h->header_bytes == size - m.left, "header_bytes %zu, read %zu", h->header_bytes, size - m.left);
	if (sl_npy_check_length(h, m.left, "file", err, errlen) != 0)
		return -1;
	CHECK(h->numel * (size_t)h->size == m.left, "length accepted: %zu x %d != %zu", h->numel, h->size, m.left);
	float *dst = malloc(h->numel * sizeof *dst);
	CHECK(dst != NULL, "out of memory for %zu floats (at most the input's size)", h->numel);
	const uint8_t *raw = m.p;
	if (sl_npy_read_data_from(mem_read, &m, h, dst, err, errlen) != 0) {
		CHECK(h->kind == 'f' && h->size == 8 && strstr(err, "beyond the float32 range"),
		      "data of the right length refused: %s", err);
		free(dst);
		return -1;
	}
	for (size_t i = 0; i < h->numel; i++) {
		const uint8_t *e = raw + i * (size_t)h->size;
		if (h->kind == 'f' && h->size == 4)
			CHECK(memcmp(&dst[i], e, 4) == 0, "float32 element %zu changed", i);
		else if (h->kind == 'b')
			CHECK(dst[i] == (e[0] ? 1.0f : 0.0f), "bool element %zu is %g", i, (double)dst[i]);
		else if (h->kind == 'u' && h->size == 1)
			CHECK(dst[i] == (float)e[0], "uint8 element %zu is %g", i, (double)dst[i]);
		else if (h->kind == 'i' && h->size == 2) {
			int16_t v;
			memcpy(&v, e, 2);
			CHECK(dst[i] == (float)v, "int16 element %zu is %g", i, (double)dst[i]);
		} else if (h->kind == 'f' && h->size == 8) {
			double v;
			memcpy(&v, e, 8);
			CHECK(isnan(v) ? isnan(dst[i]) : dst[i] == (float)v, "float64 element %zu is %g", i, (double)dst[i]);
		}
	}
	*out = dst;
	return 0;
}

/* the same through the FILE* functions, as tensor.load reads a file */
static int read_file(const uint8_t *data, size_t size, sl_npy *h, float **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
	if (!f) /* glibc refuses a zero-length buffer */
		return -2;
	int rc = sl_npy_read_header(f, h, err, errlen);
	if (rc == 0)
		rc = sl_npy_check_size(f, h, err, errlen);
	if (rc == 0) {
		*out = malloc(h->numel * sizeof **out);
		CHECK(*out != NULL, "out of memory");
		rc = sl_npy_read_data(f, h, *out, err, errlen);
	}
	fclose(f);
	if (rc != 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char e1[512], e2[512], e3[512];
	sl_npy h1, h2;
	float *d1, *d2;
	memset(e1, 'x', sizeof e1);
	int r1 = read_stream(data, size, &h1, &d1, e1, sizeof e1);
	if (r1 != 0)
		check_message(e1, sizeof e1, NULL, "stream reader");

	int r2 = read_file(data, size, &h2, &d2, e2, sizeof e2);
	if (r2 != -2) {
		CHECK(r1 == r2, "stream reader says %d (%s), FILE reader %d (%s)", r1, r1 ? e1 : "", r2, r2 ? e2 : "");
		if (r1 != 0)
			CHECK(strcmp(e1, e2) == 0, "messages differ: \"%s\" and \"%s\"", e1, e2);
		else
			CHECK(h1.numel == h2.numel && h1.ndim == h2.ndim &&
			      memcmp(h1.shape, h2.shape, (size_t)h1.ndim * sizeof h1.shape[0]) == 0 &&
			      memcmp(d1, d2, h1.numel * sizeof *d1) == 0,
			      "the two readers read different arrays");
	}
	free(d1);
	free(d2);

	/* a stream that fails part-way: the failure must surface as given */
	if (size > 0) {
		failing f = {{data, size}, (size_t)data[size - 1] * size / 256};
		sl_npy h3;
		int rc = sl_npy_read_header_from(failing_read, &f, &h3, e3, sizeof e3);
		if (rc == 0 && sl_npy_check_length(&h3, f.m.left, "file", e3, sizeof e3) == 0) {
			float *d3 = malloc(h3.numel * sizeof *d3);
			CHECK(d3 != NULL, "out of memory");
			rc = sl_npy_read_data_from(failing_read, &f, &h3, d3, e3, sizeof e3);
			free(d3);
		}
		if (rc != 0)
			check_message(e3, sizeof e3, NULL, "failing stream");
	}
	return 0;
}

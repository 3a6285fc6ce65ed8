/*
 * fuzz_png.c — libFuzzer harness of the PNG reader of the data loaders
 * (src/data/png.c over libpng): the input is a whole file, read as a mask
 * ("values": the stored values of a grey or palette PNG) and as an image
 * ("grey": intensities of any PNG), as segloss.core.png_load reads it.
 *
 * Beyond "no crash, no sanitizer report":
 *   - every error names the file (its path) and leaves no pixels behind;
 *   - a PNG read has 1..SL_PNG_MAXSIDE rows and columns, at most
 *     SL_PNG_MAXPIXELS pixels, a bit depth of 1, 2, 4, 8 or 16 (8 or 16 for
 *     intensities) and every value an integer in 0..2^depth - 1;
 *   - when both readings succeed they have the same size.
 */
#include "common.h"

#include <math.h>

#include "data/data.h"

typedef struct image {
	int rc, depth;
	int64_t h, w;
} image;

static image read_png(const char *path, int grey)
{
	char err[1024];
	float *px = (float *)(uintptr_t)1; /* must become NULL on failure */
	image r = {0, -1, -1, -1};
	r.rc = sl_png_read(path, grey, &px, &r.h, &r.w, &r.depth, err, sizeof err);
	const char *mode = grey ? "grey" : "values";
	if (r.rc != 0) {
		CHECK(px == NULL, "%s: failed (%s) but returned pixels", mode, err);
		check_message(err, sizeof err, path, mode);
		return r;
	}
	CHECK(px != NULL, "%s: no pixels", mode);
	CHECK(r.h >= 1 && r.w >= 1 && r.h <= SL_PNG_MAXSIDE && r.w <= SL_PNG_MAXSIDE &&
	      r.h * r.w <= SL_PNG_MAXPIXELS, "%s: %lld x %lld pixels", mode, (long long)r.h, (long long)r.w);
	int d = r.depth;
	CHECK(grey ? (d == 8 || d == 16) : (d == 1 || d == 2 || d == 4 || d == 8 || d == 16), "%s: bit depth %d",
	      mode, d);
	float top = (float)((1 << d) - 1);
	size_t n = (size_t)(r.h * r.w);
	for (size_t i = 0; i < n; i++)
		CHECK(px[i] >= 0.0f && px[i] <= top && px[i] == floorf(px[i]), "%s: pixel %zu is %g at depth %d", mode, i,
		      (double)px[i], d);
	free(px);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = input_file(data, size);
	image v = read_png(path, 0), g = read_png(path, 1);
	if (v.rc == 0 && g.rc == 0)
		CHECK(v.h == g.h && v.w == g.w, "values %lldx%lld, grey %lldx%lld", (long long)v.h, (long long)v.w,
		      (long long)g.h, (long long)g.w);
	return 0;
}

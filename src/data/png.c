/*
 * png.c — grey PNG files through libpng, safe against damaged input: every
 * libpng error (bad signature, CRC, truncated data) longjmps back to
 * setjmp here and becomes a message; the size is checked against limits
 * before anything is allocated.
 */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mem.h"
#include "../outfile.h"
#include "data.h"

typedef struct pngerr {
	jmp_buf jb;
	char msg[200];
} pngerr;

static void on_error(png_structp png, png_const_charp msg)
{
	pngerr *e = png_get_error_ptr(png);
	snprintf(e->msg, sizeof e->msg, "%s", msg);
	longjmp(e->jb, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* libpng's memory on reading, one allocation at most PNG_ALLOC_MAX bytes:
 * an ancillary chunk (tEXt, zTXt, iTXt, sPLT, eXIf...) that claims 2 GB is
 * only a warning to libpng, which then allocates and clears its length
 * before reading a byte of it (a 72-byte file took 1.7 GB and 15 s). Twice
 * libpng's own limit for a chunk (8 MB), far above a row of the widest
 * image read (65536 pixels of 8 bytes). */
#define PNG_ALLOC_MAX ((png_alloc_size_t)16 << 20)

static png_voidp capped_malloc(png_structp png, png_alloc_size_t n)
{
	(void)png;
	return n <= PNG_ALLOC_MAX ? malloc(n) : NULL;
}

static void capped_free(png_structp png, png_voidp p)
{
	(void)png;
	free(p);
}

int sl_png_read(const char *path, int grey, float **out, int64_t *h, int64_t *w, int *depth, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) return sl_errf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
	unsigned char sig[8];
	if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
		fclose(f);
		return sl_errf(err, errlen, "'%s' is not a PNG file", path);
	}
	pngerr e;
	e.msg[0] = '\0';
	png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning, NULL,
	                                           capped_malloc, capped_free);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info) {
		png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
		fclose(f);
		return sl_errf(err, errlen, "'%s': out of memory", path);
	}
	float *volatile data = NULL;
	unsigned char *volatile row = NULL;
	if (setjmp(e.jb)) {
		png_destroy_read_struct(&png, &info, NULL);
		fclose(f);
		free(data);
		free(row);
		return sl_errf(err, errlen, "'%s' is a damaged PNG file: %s", path, e.msg);
	}
	png_set_user_limits(png, SL_PNG_MAXSIDE, SL_PNG_MAXSIDE);
	/* metadata segloss never uses, skipped unread: a large one loads, and
	 * none is allocated (the cap above covers the chunks libpng keeps) */
	static const png_byte unused[] = "tEXt\0zTXt\0iTXt\0sPLT\0eXIf\0pCAL\0sCAL\0tIME\0hIST\0";
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, unused, (int)(sizeof unused / 5));
	png_init_io(png, f);
	png_set_sig_bytes(png, 8);
	png_read_info(png, info);
	png_uint_32 W = png_get_image_width(png, info), H = png_get_image_height(png, info);
	int bits = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
	int interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
	const char *bad = grey ? (interlaced ? "an interlaced" : NULL)
	                  : ct == PNG_COLOR_TYPE_RGB ? "a colour (RGB)"
	                  : ct == PNG_COLOR_TYPE_RGB_ALPHA ? "a colour (RGBA)"
	                  : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? "a grey + alpha"
	                  : interlaced ? "an interlaced" : NULL;
	if (bad || (int64_t)W * (int64_t)H > SL_PNG_MAXPIXELS) {
		png_destroy_read_struct(&png, &info, NULL);
		fclose(f);
		if (bad) return sl_errf(err, errlen, "'%s' is %s PNG; segloss reads grey or palette (label) PNGs", path, bad);
		return sl_errf(err, errlen, "'%s': %ux%u pixels, more than %lld", path, (unsigned)W, (unsigned)H,
		               (long long)SL_PNG_MAXPIXELS);
	}
	if (grey) {
		/* intensities: a palette through its colours, colour to luminance
		 * (Rec. 709 weights, libpng's default), alpha dropped; grey below 8
		 * bits scaled to 0..255 */
		if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
		/* a palette's tRNS becomes alpha with its colours: dropped too */
		if ((ct & PNG_COLOR_MASK_ALPHA) || (ct == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_tRNS)))
			png_set_strip_alpha(png);
		if (ct == PNG_COLOR_TYPE_PALETTE || (ct & PNG_COLOR_MASK_COLOR))
			png_set_rgb_to_gray_fixed(png, 1, -1, -1);
		if (ct == PNG_COLOR_TYPE_GRAY && bits < 8) png_set_expand_gray_1_2_4_to_8(png);
		if (ct == PNG_COLOR_TYPE_PALETTE || bits < 8) bits = 8;
	} else if (bits < 8) {
		png_set_packing(png); /* one value per byte, not rescaled */
	}
	png_read_update_info(png, info);
	if (grey && png_get_channels(png, info) != 1) png_error(png, "cannot convert to grey");
	size_t rb = png_get_rowbytes(png, info);
	if (rb < (size_t)W * (bits == 16 ? 2u : 1u)) png_error(png, "unexpected row size");
	row = malloc(rb);
	data = sl_mem_malloc((size_t)W * H * sizeof(float));
	if (!row || !data) png_error(png, "out of memory");
	for (png_uint_32 i = 0; i < H; i++) {
		png_read_row(png, row, NULL);
		float *d = data + (size_t)i * W;
		if (bits == 16)
			for (png_uint_32 j = 0; j < W; j++) d[j] = (float)((row[2 * j] << 8) | row[2 * j + 1]);
		else
			for (png_uint_32 j = 0; j < W; j++) d[j] = (float)row[j];
	}
	png_read_end(png, NULL);
	png_destroy_read_struct(&png, &info, NULL);
	fclose(f);
	free(row);
	*out = data;
	*h = H;
	*w = W;
	*depth = bits;
	return 0;
}

int sl_png_write(const char *path, const float *v, int64_t h, int64_t w, int depth, char *err, size_t errlen)
{
	FILE *f = fopen(path, "wb");
	if (!f) return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
	pngerr e;
	e.msg[0] = '\0';
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	unsigned char *volatile row = NULL;
	if (!info) {
		png_destroy_write_struct(png ? &png : NULL, NULL);
		fclose(f);
		remove(path);
		return sl_errf(err, errlen, "cannot write '%s': out of memory", path);
	}
	if (setjmp(e.jb)) {
		png_destroy_write_struct(&png, &info);
		fclose(f);
		remove(path);
		free(row);
		return sl_errf(err, errlen, "cannot write '%s': %s", path, e.msg);
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
	             PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	row = malloc((size_t)w * 2);
	if (!row) png_error(png, "out of memory");
	for (int64_t i = 0; i < h; i++) {
		const float *s = v + i * w;
		for (int64_t j = 0; j < w; j++) {
			unsigned u = (unsigned)s[j];
			if (depth == 16) {
				row[2 * j] = (unsigned char)(u >> 8);
				row[2 * j + 1] = (unsigned char)(u & 255u);
			} else {
				row[j] = (unsigned char)u;
			}
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	if (fclose(f) != 0) {
		remove(path);
		return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
	}
	return 0;
}

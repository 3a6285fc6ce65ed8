/*
 * data.h — the Lua-free part of segloss.data: copying a sample with a flip,
 * a 90-degree rotation and an intensity change (augmentation); drawing the
 * synthetic images and masks; checking label maps; reading and writing grey
 * PNG files (libpng).
 */
#ifndef SL_DATA_H
#define SL_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Spatial sizes of one sample: 2 (H, W) or 3 (D, H, W) axes. */
typedef struct sl_grid {
	int dims;
	int64_t s[3];
} sl_grid;

/* Copies one sample of `ch` channels from src to dst: dst = scale * T(src)
 * + shift, T = rotation by rot * 90 degrees in the last two axes after
 * flipping every spatial axis a whose bit (1 << a) is set in flips. rot != 0
 * needs a square last plane (the caller checks). */
void sl_data_put(const float *src, float *dst, int64_t ch, const sl_grid *g, unsigned flips, int rot,
                 float scale, float shift);

/* A shape of the synthetic data, in pixel coordinates of the grid (axis 0
 * unused in 2-D). kind: 0 disc/ball, 1 ellipse/ellipsoid, 2 blob (an
 * ellipse with a wavy outline). */
typedef struct sl_shape {
	int kind;
	double c[3], r[3];
	double angle; /* rotation in the last two axes */
	double amp;   /* intensity added inside (image only) */
	double ph[2]; /* phases of the blob's outline */
} sl_shape;

/* A plane wave of the background: amp * cos(2 pi (f . p / s) + phase). */
typedef struct sl_wave {
	double f[3], phase, amp;
} sl_wave;

/* Sets t (one channel of the grid) to 1 inside any of the shapes with radii
 * times scale, else 0. Returns the number of pixels set. */
int64_t sl_synth_mask(float *t, const sl_grid *g, const sl_shape *sh, int n, double scale);
/* x = base + waves + shapes (amp inside each) + Gaussian noise of standard
 * deviation sigma, from a generator seeded with seed. */
void sl_synth_image(float *x, const sl_grid *g, double base, const sl_wave *w, int nw, const sl_shape *sh, int n,
                    double sigma, uint64_t seed);

/* Counts the non-zero elements of each of n samples of m elements into
 * count[]; returns the flat offset of the first element that is not an
 * integer in 0..classes-1, or -1. */
int64_t sl_data_scan(const float *t, int64_t n, int64_t m, int classes, int64_t *count);

/* PNG: the largest side and number of pixels read, checked before allocating. */
#define SL_PNG_MAXSIDE 65536
#define SL_PNG_MAXPIXELS ((int64_t)1 << 28)
/* Reads a PNG. grey = 0: the stored values of a grey or palette (label)
 * PNG, 1 to 16 bits; colour and alpha are refused. grey = 1: intensities of
 * any non-interlaced PNG — palette entries through their colours, colour
 * to luminance, alpha dropped, grey below 8 bits scaled to 8. On success
 * *out (malloc'd, h * w floats holding values 0..2^depth-1) and returns 0;
 * else -1 with a message in err. */
int sl_png_read(const char *path, int grey, float **out, int64_t *h, int64_t *w, int *depth, char *err, size_t errlen);
/* Writes h x w values (integers in 0..2^depth-1, checked by the caller) as a
 * grey PNG of bit depth 8 or 16. Returns 0, or -1 with a message. */
int sl_png_write(const char *path, const float *v, int64_t h, int64_t w, int depth, char *err, size_t errlen);

#endif

/*
 * npy.h — NumPy .npy files (format versions 1.0, 2.0, 3.0). Lua-free.
 *
 * Read: little-endian f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 and b1 in C
 * order, converted to float32. Write: float32 ('<f4'), version 1.0, through
 * a temporary file beside the target renamed over it, so a failed save
 * leaves the old file as it was. An existing file keeps its mode (and, for
 * root, its owner); a symbolic link is followed (the link stays); anything
 * but a regular file (directory, device, FIFO, socket) is refused.
 *
 * The reader works on any byte stream through a read function (a FILE*, an
 * entry of a zip archive in npz.c, a memory buffer), the header writer on a
 * memory buffer, so that .npz archives share both.
 */
#ifndef SL_NPY_H
#define SL_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "tensor.h"

typedef struct sl_npy {
	int ndim;
	int64_t shape[SL_MAXDIM];
	size_t numel;
	char kind; /* 'f', 'i', 'u' or 'b' */
	int size;  /* bytes per element */
	char descr[16];
	size_t header_bytes; /* magic, version, length and dict: where the data starts */
} sl_npy;

/* Reads up to n bytes into buf. Returns the count read, less than n only at
 * the end of the stream, or -1 after writing a message into err. */
typedef int64_t (*sl_npy_read_fn)(void *ctx, void *buf, size_t n, char *err, size_t errlen);

/* Reads and checks the header from a stream; on success the stream is at
 * the first data byte. Returns 0, or -1 with a message in err. */
int sl_npy_read_header_from(sl_npy_read_fn rd, void *ctx, sl_npy *h, char *err, size_t errlen);
/* Reads h->numel elements converted to float into dst, and checks that the
 * stream ends there. Returns 0, or -1 with a message in err. */
int sl_npy_read_data_from(sl_npy_read_fn rd, void *ctx, const sl_npy *h, float *dst, char *err,
                          size_t errlen);
/* Checks that `have` bytes of data (after the header) are exactly what the
 * header announces; `what` holds them ("file", "entry") in messages.
 * Returns 0, or -1 with a message in err. */
int sl_npy_check_length(const sl_npy *h, uint64_t have, const char *what, char *err, size_t errlen);

/* The same on a FILE*. */
int sl_npy_read_header(FILE *f, sl_npy *h, char *err, size_t errlen);
/* Checks, where f can seek, that the file holds exactly the data the header
 * announces (before anything is allocated for it). Returns 0, or -1 with a
 * message in err. */
int sl_npy_check_size(FILE *f, const sl_npy *h, char *err, size_t errlen);
int sl_npy_read_data(FILE *f, const sl_npy *h, float *dst, char *err, size_t errlen);

/* The longest header sl_npy_format_header writes. */
#define SL_NPY_MAXHDR 256
/* Writes the version 1.0 header (magic to the final '\n', padded as NumPy
 * pads it) of a C-order array of dtype descr ('<f4', '|u1') into buf;
 * returns its length, a multiple of 64. */
size_t sl_npy_format_header(unsigned char buf[SL_NPY_MAXHDR], const char *descr, int ndim,
                            const int64_t *shape);

/* Writes a float32 array. Returns 0, or -1 with a message in err. */
int sl_npy_write(const char *path, int ndim, const int64_t *shape, const float *data,
                 char *err, size_t errlen);

#endif

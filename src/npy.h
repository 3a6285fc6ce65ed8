/*
 * npy.h — NumPy .npy files (format versions 1.0, 2.0, 3.0). Lua-free.
 *
 * Read: little-endian f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 and b1 in C
 * order, converted to float32. Write: float32 ('<f4'), version 1.0, through
 * a temporary file beside the target renamed over it, so a failed save
 * leaves the old file as it was. An existing file keeps its mode (and, for
 * root, its owner); a symbolic link is followed (the link stays); anything
 * but a regular file (directory, device, FIFO, socket) is refused.
 */
#ifndef SL_NPY_H
#define SL_NPY_H

#include <stdio.h>

#include "tensor.h"

typedef struct sl_npy {
	int ndim;
	int64_t shape[SL_MAXDIM];
	size_t numel;
	char kind; /* 'f', 'i', 'u' or 'b' */
	int size;  /* bytes per element */
	char descr[16];
} sl_npy;

/* Reads and checks the header; on success f is at the first data byte.
 * Returns 0, or -1 with a message in err. */
int sl_npy_read_header(FILE *f, sl_npy *h, char *err, size_t errlen);
/* Checks, where f can seek, that the file holds exactly the data the header
 * announces (before anything is allocated for it). Returns 0, or -1 with a
 * message in err. */
int sl_npy_check_size(FILE *f, const sl_npy *h, char *err, size_t errlen);
/* Reads h->numel elements converted to float into dst, and checks that the
 * file ends there. Returns 0, or -1 with a message in err. */
int sl_npy_read_data(FILE *f, const sl_npy *h, float *dst, char *err, size_t errlen);
/* Writes a float32 array. Returns 0, or -1 with a message in err. */
int sl_npy_write(const char *path, int ndim, const int64_t *shape, const float *data,
                 char *err, size_t errlen);

#endif

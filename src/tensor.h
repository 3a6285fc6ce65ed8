/*
 * tensor.h — the tensor record shared by the bindings and the Lua-free core.
 *
 * Tensors are float32, contiguous and row-major, with 1 to SL_MAXDIM
 * dimensions of at least one element each. The elements of an owning tensor
 * live inside its Lua userdata, 64-byte aligned, right after this header; a
 * view (reshape, narrow and select along the first dimension) is a bare
 * header pointing into its base's elements.
 */
#ifndef SL_TENSOR_H
#define SL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define SL_MAXDIM 5
/* The most elements a tensor may hold (2^40: 4 TiB of floats). */
#define SL_MAXNUMEL ((int64_t)1 << 40)

typedef struct sl_tensor {
	float *data;
	size_t numel;
	int ndim;
	int view; /* 1: the elements belong to the base in user value 1 */
	int64_t shape[SL_MAXDIM];
	/* the tensor whose userdata holds the elements: itself, or a view's
	 * base (kept alive by the view's user value) */
	struct sl_tensor *owner;
	/* in the owner: bumped by every change of the elements in place, so that
	 * a cache can tell whether a tensor changed since it last saw it */
	uint64_t version;
} sl_tensor;

/* shape.c: `{2,1,64,64}` */
const char *sl_shapestr(int ndim, const int64_t *shape, char *buf, size_t len);
/* shape.c: `{n,1,i,j}`, the 1-based coordinates of flat offset off in a shape */
const char *sl_coordstr(int ndim, const int64_t *shape, size_t off, char *buf, size_t len);

/* Marks t's elements (and those of every view sharing them) as changed. */
static inline void sl_touch(sl_tensor *t) { t->owner->version++; }
static inline uint64_t sl_version(const sl_tensor *t) { return t->owner->version; }

#endif

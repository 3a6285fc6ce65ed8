/*
 * metrics.h — exact Euclidean distance transforms and surface distances of
 * binary masks, 1 to 3 dimensions, anisotropic spacing. Lua-free.
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define SL_EDT_MAXDIM 3

/* Squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012,
 * one lower envelope of parabolas per line and axis): out[i] is the squared
 * distance, in physical units (spacing per axis), from voxel i to the
 * nearest voxel with src != 0; +Inf if there is none. Linear in the number
 * of voxels; lines run on up to `threads` threads (exact, so the result does
 * not depend on their number). Returns 0, or -1 if memory runs out. */
int sl_edt_sq(const uint8_t *src, int ndim, const size_t *shape, const double *spacing,
              double *out, int threads);

/* The surface of a mask: voxels of the mask with a 4/6-connected neighbour
 * outside it or outside the image (mask XOR its erosion by the cross, border
 * counted as background). Writes edge[i] in {0, 1}; returns the count. */
size_t sl_mask_edges(const uint8_t *mask, int ndim, const size_t *shape, uint8_t *edge);

typedef struct sl_surface {
	double hd, hd95, assd, nsd;
	size_t pred_edges, target_edges;
} sl_surface;

/* Surface distances between two masks (MONAI's conventions): directed
 * distances from each edge voxel of one mask to the nearest edge voxel of
 * the other; hd = the larger maximum; hd95 = the larger 95th percentile
 * (linear interpolation, as numpy.percentile); assd = the mean of both
 * directions together; nsd = the share of edge voxels within tolerance of
 * the other surface. Empty masks: both empty give hd = hd95 = assd = 0 and
 * nsd = 1; one empty gives empty_distance and nsd = 0. Returns 0, or -1 if
 * memory runs out. */
int sl_surface_distances(const uint8_t *pred, const uint8_t *target, int ndim, const size_t *shape,
                         const double *spacing, double tolerance, double empty_distance,
                         int threads, sl_surface *out);

#endif

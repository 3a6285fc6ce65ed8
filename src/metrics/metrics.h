/*
 * metrics.h — exact Euclidean distance transforms and surface distances of
 * binary masks, 1 to 3 dimensions, anisotropic spacing. Lua-free.
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../ops.h"

#define SL_EDT_MAXDIM 3
/* The smallest ratio of two axes' spacings the transforms take: its square,
 * 2^-1000, is still a normal double. */
#define SL_EDT_MINRATIO 0x1p-500

/* The units distances are computed in: physical units (scale 1) while the
 * spacings lie in [2^-200, 2^200], else units of the largest spacing (of the
 * axes with more than one element), so that no spacing over- or underflows
 * when squared: r[a] = spacing[a] / scale. Returns 0, or -1 if two spacings
 * differ by more than 2^500 or the image's diagonal (*diagonal, in physical
 * units: √Σ(shape[a] spacing[a])²) is not a finite double. */
int sl_edt_scale(int ndim, const size_t *shape, const double *spacing, double *r, double *scale,
                 double *diagonal);

/* Squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012,
 * one lower envelope of parabolas per line and axis): out[i] is the squared
 * distance, in units of the scale of sl_edt_scale (relative spacings r per
 * axis), from voxel i to the nearest voxel with src != 0; +Inf if there is
 * none. Linear in the number of voxels; lines run on up to e->threads
 * threads (exact, so the result does not depend on their number). Returns
 * 0, or -1 if memory runs out. */
int sl_edt_sq(const uint8_t *src, int ndim, const size_t *shape, const double *r, double *out,
              const sl_exec *e);

/* Squared distance from every element of the binary image b to the nearest
 * element of the other value (an element with b != 0: to the nearest with
 * b == 0, and the reverse), in the units of sl_edt_scale (relative spacings
 * r); +Inf where the other value does not occur. Both sides come out of one
 * set of passes, each line cut into runs of one value: a run's elements
 * see the other value first at the run's two ends, so the lower envelope of
 * each run, closed by those ends at distance 0, is exact; the first pass,
 * along the contiguous axis, is that distance itself (no envelope). Linear
 * in the number of elements; lines run on up to e->threads threads (exact:
 * the result does not depend on their number). Returns 0, or -1 if memory
 * runs out. */
int sl_edt_opposite(const uint8_t *b, int ndim, const size_t *shape, const double *r, double *out,
                    const sl_exec *e);

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
 * the other surface. Spacing as relative r and scale (sl_edt_scale);
 * distances, tolerance and empty_distance in physical units. Empty masks: both empty give hd = hd95 = assd = 0 and
 * nsd = 1; one empty gives empty_distance and nsd = 0. Returns 0, or -1 if
 * memory runs out. */
int sl_surface_distances(const uint8_t *pred, const uint8_t *target, int ndim, const size_t *shape,
                         const double *r, double scale, double tolerance, double empty_distance,
                         const sl_exec *e, sl_surface *out);

#endif

/*
 * npz.h — NumPy .npz archives (what numpy.savez writes and numpy.load
 * opens): a zip archive of .npy files, one per array, `<name>.npy`.
 * Lua-free; libzip underneath.
 *
 * Write: every entry stored (uncompressed, as numpy.savez does), float32
 * ('<f4') arrays and byte strings (1-D '|u1'), in the order given, with a
 * fixed time stamp (1980-01-01) so that the same arrays give the same bytes.
 * The file is saved whole or not at all, by the rules of outfile.h.
 *
 * Read: stored and deflated (numpy.savez_compressed) entries, every dtype
 * npy.h reads, converted to float32. The archive comes from a path or a
 * memory buffer. Before any array is allocated, the archive is checked: at
 * most SL_NPZ_MAXENTRIES entries, each a `.npy` name, unencrypted, stored
 * or deflated, its sizes possible for the archive's length, no name twice;
 * and each entry's .npy header must announce exactly the entry's size.
 */
#ifndef SL_NPZ_H
#define SL_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "npy.h"

#define SL_NPZ_MAXENTRIES 10000
#define SL_NPZ_MAXNAME 200 /* bytes of a name written, without ".npy" */

/* ---- writing ---- */

enum { SL_NPZ_F32, SL_NPZ_BYTES };

typedef struct sl_npz_item {
	const char *name; /* without ".npy"; see sl_npz_name_problem */
	size_t namelen;
	int type;         /* SL_NPZ_F32: ndim, shape, data (floats); SL_NPZ_BYTES: data, nbytes */
	int ndim;
	const int64_t *shape;
	const void *data;
	size_t nbytes;    /* SL_NPZ_BYTES: the length, >= 1 */
} sl_npz_item;

/* NULL if name (len bytes, without ".npy") may be written, else what is
 * wrong with it: 1 to SL_NPZ_MAXNAME bytes of [A-Za-z0-9_.-]. */
const char *sl_npz_name_problem(const char *name, size_t len);

/* Writes the n items to path. Returns 0, or -1 with a message in err
 * (`cannot write '<path>': ...`, or what is wrong with an item). */
int sl_npz_write(const char *path, const sl_npz_item *items, size_t n, char *err, size_t errlen);

/* ---- reading ---- */

typedef struct sl_npz sl_npz;

/* Opens and checks the archive at path; label (for messages) is the path. */
int sl_npz_open_path(const char *path, sl_npz **z, char *err, size_t errlen);
/* The same on len bytes at data, which must outlive *z; label names them in
 * messages. */
int sl_npz_open_buffer(const void *data, size_t len, const char *label, sl_npz **z, char *err,
                       size_t errlen);
size_t sl_npz_count(const sl_npz *z);
/* The name of entry i without ".npy" (len bytes; valid until the close). */
const char *sl_npz_name(const sl_npz *z, size_t i, size_t *len);
/* Opens entry i and reads its .npy header into h, checking that the entry
 * holds exactly the data it announces. */
int sl_npz_begin(sl_npz *z, size_t i, sl_npy *h, char *err, size_t errlen);
/* Reads the data of the entry sl_npz_begin opened into dst (h->numel
 * floats), checks its end and its CRC, and closes the entry. */
int sl_npz_read(sl_npz *z, const sl_npy *h, float *dst, char *err, size_t errlen);
/* Frees everything (NULL is fine). */
void sl_npz_close(sl_npz *z);

#endif

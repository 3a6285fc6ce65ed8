/*
 * outfile.h — saving a file whole or not at all. Lua-free.
 *
 * The bytes go to a temporary file beside the target, renamed over it once
 * every byte is written: a failed save (full disk, a bad value found late)
 * leaves the old file as it was and no temporary file behind. An existing
 * file keeps its mode (and, for root, its owner); a symbolic link is
 * followed (the link stays); anything but a regular file (directory, device,
 * FIFO, socket) is refused, since replacing it by a regular file would
 * destroy it and writing into it is not a save. Used by npy.c and npz.c.
 */
#ifndef SL_OUTFILE_H
#define SL_OUTFILE_H

#include <stddef.h>

typedef struct sl_outfile {
	int fd;           /* the temporary file, open for writing */
	int dfd;          /* the directory of the target */
	char *target;     /* the file to replace: path, or where its link points */
	const char *base; /* the last component of target */
	char tmp[64];     /* the temporary file's name in dfd */
} sl_outfile;

/* Creates the temporary file for path. Returns 0, or -1 with a message
 * `cannot write '<path>': ...` in err (then o holds nothing to free). */
int sl_outfile_begin(sl_outfile *o, const char *path, char *err, size_t errlen);
/* Writes n bytes at the file's current offset. Returns 0, or an errno value. */
int sl_outfile_write(sl_outfile *o, const void *buf, size_t n);
/* Closes the temporary file (flushed to the disk first if sync) and renames
 * it over the target; on failure removes it. Either way frees o. Returns 0,
 * or -1 with `cannot write '<path>': ...` in err. */
int sl_outfile_commit(sl_outfile *o, int sync, const char *path, char *err, size_t errlen);
/* Removes the temporary file and frees o. */
void sl_outfile_abort(sl_outfile *o);

/* The file readers' and writers' error convention: formats the message into
 * err (at most errlen bytes) and returns -1. */
int sl_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

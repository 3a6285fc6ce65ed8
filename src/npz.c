/*
 * npz.c — NumPy .npz archives through libzip; see npz.h.
 *
 * Writing: libzip writes the archive through a write-only zip source of our
 * own (wsrc_cb) into the temporary file of outfile.c, so that a checkpoint
 * streams to the disk (no second copy in memory) and the rules of a safe
 * save (same directory, mode kept, link followed, rename at the end) are
 * those of every other save. Each entry is a two-fragment buffer source: the
 * .npy header, then the tensor's elements where they lie.
 *
 * Reading: any zip source (a file or a memory buffer, the latter for
 * fuzzing) opened with ZIP_CHECKCONS; the whole central directory is checked
 * before an array is allocated; each entry is read with npy.c's reader.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zip.h>

#include "npz.h"
#include "outfile.h"

/* deflate gives at most 1032 bytes per compressed byte (258-byte matches
 * coded in 2 bits) */
#define DEFLATE_MAX_RATIO 1032

/* A name quoted for messages: at most 60 bytes, control and non-ASCII
 * bytes escaped (archives come from anywhere). */
static const char *quote(const char *s, size_t len, char *buf, size_t blen)
{
	size_t n = 0;
	buf[n++] = '"';
	for (size_t i = 0; i < len && i < 60 && n + 6 < blen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 32 || c >= 127 || c == '"' || c == '\\')
			n += (size_t)snprintf(buf + n, blen - n, "\\%03o", c);
		else
			buf[n++] = (char)c;
	}
	snprintf(buf + n, blen - n, "\"%s", len > 60 ? "..." : "");
	return buf;
}

/* libzip's text for an error: the system's for system errors. */
static const char *zerr_text(zip_error_t *e)
{
	if (zip_error_system_type(e) == ZIP_ET_SYS && zip_error_code_system(e) != 0)
		return strerror(zip_error_code_system(e));
	return zip_error_strerror(e);
}

const char *sl_npz_name_problem(const char *name, size_t len)
{
	if (len == 0)
		return "is empty";
	if (len > SL_NPZ_MAXNAME)
		return "is longer than 200 bytes";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return "has a character outside [A-Za-z0-9_.-]";
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* writing */

/* The archive being written: a write-only zip source on the temporary file.
 * libzip writes headers and data in order, and seeks back to complete each
 * local header once the entry's CRC is known. */
typedef struct wsrc {
	int fd;
	uint64_t pos, size;
	zip_error_t error;
} wsrc;

static zip_int64_t wsrc_cb(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	wsrc *w = ud;
	switch (cmd) {
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(
			ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL,
			ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, ZIP_SOURCE_SUPPORTS,
			ZIP_SOURCE_BEGIN_WRITE, ZIP_SOURCE_COMMIT_WRITE, ZIP_SOURCE_ROLLBACK_WRITE,
			ZIP_SOURCE_WRITE, ZIP_SOURCE_SEEK_WRITE, ZIP_SOURCE_TELL_WRITE, ZIP_SOURCE_REMOVE, -1);
	case ZIP_SOURCE_STAT:
		/* "no such file": zip_open_from_source(ZIP_CREATE) starts a new archive */
		zip_error_set(&w->error, ZIP_ER_READ, ENOENT);
		return -1;
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&w->error, data, len);
	case ZIP_SOURCE_BEGIN_WRITE:
		w->pos = w->size = 0;
		return 0;
	case ZIP_SOURCE_WRITE: {
		const char *p = data;
		zip_uint64_t left = len;
		while (left > 0) {
			ssize_t n = pwrite(w->fd, p, left, (off_t)w->pos);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				zip_error_set(&w->error, ZIP_ER_WRITE, errno);
				return -1;
			}
			p += n;
			left -= (zip_uint64_t)n;
			w->pos += (uint64_t)n;
		}
		if (w->pos > w->size)
			w->size = w->pos;
		return (zip_int64_t)len;
	}
	case ZIP_SOURCE_SEEK_WRITE: {
		zip_source_args_seek_t *a = ZIP_SOURCE_GET_ARGS(zip_source_args_seek_t, data, len, &w->error);
		if (!a)
			return -1;
		int64_t base = a->whence == SEEK_SET ? 0 : a->whence == SEEK_CUR ? (int64_t)w->pos
		               : a->whence == SEEK_END ? (int64_t)w->size : -1;
		if (base < 0 || (a->offset < 0 && -a->offset > base)) {
			zip_error_set(&w->error, ZIP_ER_INVAL, 0);
			return -1;
		}
		w->pos = (uint64_t)(base + a->offset);
		return 0;
	}
	case ZIP_SOURCE_TELL_WRITE:
		return (zip_int64_t)w->pos;
	case ZIP_SOURCE_COMMIT_WRITE:
	case ZIP_SOURCE_ROLLBACK_WRITE: /* the caller removes the temporary file */
	case ZIP_SOURCE_REMOVE:
	case ZIP_SOURCE_FREE:
		return 0;
	default:
		zip_error_set(&w->error, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

/* sorts item indices by name, for the check of duplicates */
static _Thread_local const sl_npz_item *sort_items; /* qsort has no context argument */
static int by_name(const void *a, const void *b)
{
	const sl_npz_item *x = &sort_items[*(const size_t *)a], *y = &sort_items[*(const size_t *)b];
	size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c = memcmp(x->name, y->name, n);
	if (c == 0)
		c = (x->namelen > y->namelen) - (x->namelen < y->namelen);
	/* equal names: the earlier item first, so that messages name it first */
	return c ? c : (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
}

/* Checks the items before anything is written. */
static int check_items(const sl_npz_item *items, size_t n, char *err, size_t errlen)
{
	char q[256];
	if (n > SL_NPZ_MAXENTRIES)
		return sl_errf(err, errlen, "%zu entries, more than %d", n, SL_NPZ_MAXENTRIES);
	for (size_t i = 0; i < n; i++) {
		const sl_npz_item *it = &items[i];
		const char *why = sl_npz_name_problem(it->name, it->namelen);
		if (why)
			return sl_errf(err, errlen, "entry %zu: name %s %s", i + 1,
			            quote(it->name, it->namelen, q, sizeof q), why);
		if (it->type == SL_NPZ_F32) {
			if (it->ndim < 1 || it->ndim > SL_MAXDIM)
				return sl_errf(err, errlen, "entry %zu: %d dimensions", i + 1, it->ndim);
			int64_t m = 1;
			for (int d = 0; d < it->ndim; d++)
				if (it->shape[d] < 1 || __builtin_mul_overflow(m, it->shape[d], &m) ||
				    m > SL_MAXNUMEL)
					return sl_errf(err, errlen, "entry %zu: bad shape", i + 1);
		} else if (it->type != SL_NPZ_BYTES || it->nbytes == 0) {
			return sl_errf(err, errlen, "entry %zu: not a float32 array or a non-empty byte string", i + 1);
		}
	}
	if (n < 2)
		return 0;
	size_t *ix = malloc(n * sizeof *ix);
	if (!ix)
		return sl_errf(err, errlen, "out of memory");
	for (size_t i = 0; i < n; i++)
		ix[i] = i;
	sort_items = items;
	qsort(ix, n, sizeof *ix, by_name);
	int rc = 0;
	for (size_t k = 1; k < n && rc == 0; k++) {
		const sl_npz_item *a = &items[ix[k - 1]], *b = &items[ix[k]];
		if (a->namelen == b->namelen && memcmp(a->name, b->name, a->namelen) == 0)
			rc = sl_errf(err, errlen, "entries %zu and %zu have the same name %s", ix[k - 1] + 1,
			          ix[k] + 1, quote(a->name, a->namelen, q, sizeof q));
	}
	free(ix);
	return rc;
}

/* An archive without entries: the end of central directory record alone,
 * as Python's zipfile writes it (libzip removes an empty archive instead). */
static const unsigned char EMPTY_ZIP[22] = {'P', 'K', 5, 6};

int sl_npz_write(const char *path, const sl_npz_item *items, size_t n, char *err, size_t errlen)
{
	char inner[512];
	if (check_items(items, n, inner, sizeof inner) != 0)
		return sl_errf(err, errlen, "cannot write '%s': %s", path, inner);
	unsigned char(*hdrs)[SL_NPY_MAXHDR] = NULL;
	if (n > 0 && !(hdrs = malloc(n * sizeof *hdrs)))
		return sl_errf(err, errlen, "cannot write '%s': out of memory", path);

	sl_outfile o;
	if (sl_outfile_begin(&o, path, err, errlen) != 0) {
		free(hdrs);
		return -1;
	}
	if (n == 0) {
		int e = sl_outfile_write(&o, EMPTY_ZIP, sizeof EMPTY_ZIP);
		if (e) {
			sl_outfile_abort(&o);
			return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(e));
		}
		return sl_outfile_commit(&o, 1, path, err, errlen);
	}

	wsrc w = {o.fd, 0, 0, {0}};
	zip_error_init(&w.error);
	zip_error_t ze;
	zip_error_init(&ze);
	zip_t *za = NULL;
	zip_source_t *src = zip_source_function_create(wsrc_cb, &w, &ze);
	if (src && !(za = zip_open_from_source(src, ZIP_CREATE | ZIP_TRUNCATE, &ze)))
		zip_source_free(src);
	if (!za) {
		sl_errf(err, errlen, "cannot write '%s': %s", path, zerr_text(&ze));
		goto undo;
	}
	for (size_t i = 0; i < n; i++) {
		const sl_npz_item *it = &items[i];
		int64_t one = (int64_t)it->nbytes;
		size_t hlen, nbytes;
		if (it->type == SL_NPZ_F32) {
			hlen = sl_npy_format_header(hdrs[i], "<f4", it->ndim, it->shape);
			nbytes = sizeof(float);
			for (int d = 0; d < it->ndim; d++)
				nbytes *= (size_t)it->shape[d];
		} else {
			hlen = sl_npy_format_header(hdrs[i], "|u1", 1, &one);
			nbytes = it->nbytes;
		}
		/* libzip reads the fragments and never writes them */
		zip_buffer_fragment_t frag[2] = {{hdrs[i], hlen}, {(zip_uint8_t *)(uintptr_t)it->data, nbytes}};
		char name[SL_NPZ_MAXNAME + 5];
		memcpy(name, it->name, it->namelen);
		memcpy(name + it->namelen, ".npy", 5);
		zip_source_t *es = zip_source_buffer_fragment(za, frag, 2, 0);
		zip_int64_t idx = es ? zip_file_add(za, name, es, ZIP_FL_ENC_GUESS) : -1;
		if (idx < 0) {
			zip_source_free(es);
			sl_errf(err, errlen, "cannot write '%s': %s", path, zip_strerror(za));
			goto undo;
		}
		/* stored, as numpy.savez; a fixed time for reproducible bytes */
		if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0 ||
		    zip_file_set_dostime(za, (zip_uint64_t)idx, 0, (1 << 5) | 1, 0) != 0) {
			sl_errf(err, errlen, "cannot write '%s': %s", path, zip_strerror(za));
			goto undo;
		}
	}
	if (zip_close(za) != 0) {
		sl_errf(err, errlen, "cannot write '%s': %s", path, zerr_text(zip_get_error(za)));
		goto undo;
	}
	za = NULL;
	free(hdrs);
	zip_error_fini(&w.error);
	zip_error_fini(&ze);
	return sl_outfile_commit(&o, 1, path, err, errlen);
undo:
	if (za)
		zip_discard(za);
	free(hdrs);
	zip_error_fini(&w.error);
	zip_error_fini(&ze);
	sl_outfile_abort(&o);
	return -1;
}

/* ------------------------------------------------------------------ */
/* reading */

struct sl_npz {
	zip_t *za;
	size_t n;
	zip_file_t *cur; /* the entry between sl_npz_begin and sl_npz_read */
	size_t cur_index;
	uint64_t *sizes; /* each entry's uncompressed size */
	char *label;
};

void sl_npz_close(sl_npz *z)
{
	if (!z)
		return;
	if (z->cur)
		zip_fclose(z->cur);
	if (z->za)
		zip_discard(z->za);
	free(z->sizes);
	free(z->label);
	free(z);
}

size_t sl_npz_count(const sl_npz *z) { return z->n; }

const char *sl_npz_name(const sl_npz *z, size_t i, size_t *len)
{
	const char *s = zip_get_name(z->za, i, ZIP_FL_ENC_RAW);
	*len = s ? strlen(s) - 4 : 0; /* checked at the open: ends in .npy */
	return s ? s : "";
}

static _Thread_local const char *const *sort_names;
static int by_entry_name(const void *a, const void *b)
{
	return strcmp(sort_names[*(const size_t *)a], sort_names[*(const size_t *)b]);
}

/* Checks the central directory before anything is read or allocated. */
static int check_archive(sl_npz *z, uint64_t archive_len, char *err, size_t errlen)
{
	const char *L = z->label;
	char q[256];
	zip_int64_t ne = zip_get_num_entries(z->za, 0);
	if (ne < 0)
		return sl_errf(err, errlen, "'%s': %s", L, zip_strerror(z->za));
	if (ne > SL_NPZ_MAXENTRIES)
		return sl_errf(err, errlen, "'%s': %lld entries, more than %d", L, (long long)ne,
		            SL_NPZ_MAXENTRIES);
	z->n = (size_t)ne;
	if (z->n == 0)
		return 0;
	const char **names = malloc(z->n * sizeof *names);
	size_t *ix = malloc(z->n * sizeof *ix);
	z->sizes = malloc(z->n * sizeof *z->sizes);
	int rc = 0;
	if (!names || !ix || !z->sizes) {
		rc = sl_errf(err, errlen, "'%s': out of memory", L);
		goto done;
	}
	uint64_t total_comp = 0;
	for (size_t i = 0; i < z->n && rc == 0; i++) {
		zip_stat_t st;
		zip_uint64_t want = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE |
		                    ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
		if (zip_stat_index(z->za, i, ZIP_FL_ENC_RAW, &st) != 0 || (st.valid & want) != want) {
			rc = sl_errf(err, errlen, "'%s': entry %zu: %s", L, i + 1, zip_strerror(z->za));
			break;
		}
		size_t len = strlen(st.name);
		const char *qn = quote(st.name, len, q, sizeof q);
		names[i] = st.name;
		ix[i] = i;
		z->sizes[i] = st.size;
		if (len < 5 || memcmp(st.name + len - 4, ".npy", 4) != 0)
			rc = sl_errf(err, errlen, "'%s': entry %s is not a .npy file (an .npz holds <name>.npy files)",
			          L, qn);
		else if (st.encryption_method != ZIP_EM_NONE)
			rc = sl_errf(err, errlen, "'%s': entry %s is encrypted", L, qn);
		else if (st.comp_size > archive_len || __builtin_add_overflow(total_comp, st.comp_size, &total_comp) ||
		         total_comp > archive_len)
			rc = sl_errf(err, errlen, "'%s': damaged zip archive: entry %s claims %llu compressed bytes, "
			          "more than the archive's %llu bytes hold", L, qn,
			          (unsigned long long)st.comp_size, (unsigned long long)archive_len);
		else if (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size)
			rc = sl_errf(err, errlen, "'%s': damaged zip archive: stored entry %s claims %llu bytes in %llu",
			          L, qn, (unsigned long long)st.size, (unsigned long long)st.comp_size);
		else if (st.comp_method == ZIP_CM_DEFLATE && st.size / DEFLATE_MAX_RATIO > st.comp_size)
			rc = sl_errf(err, errlen, "'%s': damaged zip archive: entry %s claims %llu bytes from %llu "
			          "deflated bytes, more than deflate can give", L, qn,
			          (unsigned long long)st.size, (unsigned long long)st.comp_size);
		else if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
			rc = sl_errf(err, errlen, "'%s': entry %s: compression method %d is not supported "
			          "(stored and deflated entries are read)", L, qn, (int)st.comp_method);
	}
	if (rc != 0)
		goto done;
	sort_names = names;
	qsort(ix, z->n, sizeof *ix, by_entry_name);
	for (size_t k = 1; k < z->n; k++)
		if (strcmp(names[ix[k - 1]], names[ix[k]]) == 0) {
			rc = sl_errf(err, errlen, "'%s': entry %s appears twice", L,
			          quote(names[ix[k]], strlen(names[ix[k]]), q, sizeof q));
			break;
		}
done:
	free(names);
	free(ix);
	return rc;
}

/* Opens the archive in src (which this takes), archive_len bytes long whose
 * first bytes are head[0..nhead). */
static int open_source(zip_source_t *src, uint64_t archive_len, const unsigned char *head,
                       size_t nhead, const char *label, sl_npz **out, char *err, size_t errlen)
{
	*out = NULL;
	sl_npz *z = calloc(1, sizeof *z);
	if (!z || !(z->label = strdup(label))) {
		free(z);
		zip_source_free(src);
		return sl_errf(err, errlen, "'%s': out of memory", label);
	}
	zip_error_t ze;
	zip_error_init(&ze);
	z->za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
	if (!z->za) {
		zip_source_free(src);
		int code = zip_error_code_zip(&ze);
		int pk = nhead >= 4 && memcmp(head, "PK\3\4", 4) == 0;
		if (code == ZIP_ER_NOZIP && pk)
			sl_errf(err, errlen, "'%s': truncated or damaged zip archive (no end of central directory)", label);
		else if (code == ZIP_ER_NOZIP)
			sl_errf(err, errlen, "'%s': not a zip archive (.npz files are zip archives of .npy files)",
			     label);
		else if (code == ZIP_ER_EXISTS)
			sl_errf(err, errlen, "'%s': damaged zip archive: two entries have the same name", label);
		else if (code == ZIP_ER_INCONS)
			sl_errf(err, errlen, "'%s': damaged or truncated zip archive (%s)", label, zerr_text(&ze));
		else
			sl_errf(err, errlen, "'%s': cannot open as a zip archive: %s", label, zerr_text(&ze));
		zip_error_fini(&ze);
		sl_npz_close(z);
		return -1;
	}
	zip_error_fini(&ze);
	if (check_archive(z, archive_len, err, errlen) != 0) {
		sl_npz_close(z);
		return -1;
	}
	*out = z;
	return 0;
}

int sl_npz_open_buffer(const void *data, size_t len, const char *label, sl_npz **z, char *err,
                       size_t errlen)
{
	*z = NULL;
	if (len == 0)
		return sl_errf(err, errlen, "'%s': not a zip archive (empty)", label);
	zip_error_t ze;
	zip_error_init(&ze);
	zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
	if (!src) {
		sl_errf(err, errlen, "'%s': %s", label, zerr_text(&ze));
		zip_error_fini(&ze);
		return -1;
	}
	zip_error_fini(&ze);
	return open_source(src, len, data, len, label, z, err, errlen);
}

int sl_npz_open_path(const char *path, sl_npz **z, char *err, size_t errlen)
{
	*z = NULL;
	/* O_NONBLOCK: a FIFO must not block the open; it is refused below */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return sl_errf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return sl_errf(err, errlen, "cannot open '%s': %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return sl_errf(err, errlen, "cannot read '%s': it is %s, not a regular file", path,
		            S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or socket");
	}
	if (st.st_size == 0) {
		close(fd);
		return sl_errf(err, errlen, "'%s': not a zip archive (an empty file)", path);
	}
	unsigned char head[4];
	ssize_t nhead = pread(fd, head, sizeof head, 0);
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		int e = errno;
		close(fd);
		return sl_errf(err, errlen, "cannot open '%s': %s", path, strerror(e));
	}
	zip_error_t ze;
	zip_error_init(&ze);
	zip_source_t *src = zip_source_filep_create(f, 0, -1, &ze); /* takes f */
	if (!src) {
		fclose(f);
		sl_errf(err, errlen, "cannot open '%s': %s", path, zerr_text(&ze));
		zip_error_fini(&ze);
		return -1;
	}
	zip_error_fini(&ze);
	return open_source(src, (uint64_t)st.st_size, head, nhead > 0 ? (size_t)nhead : 0, path, z, err,
	                   errlen);
}

/* An open entry as npy.c's read function. */
static int64_t entry_read(void *ctx, void *buf, size_t n, char *err, size_t errlen)
{
	zip_file_t *zf = ctx;
	size_t got = 0;
	while (got < n) {
		zip_int64_t r = zip_fread(zf, (char *)buf + got, n - got);
		if (r < 0)
			return sl_errf(err, errlen, "read error: %s", zerr_text(zip_file_get_error(zf)));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (int64_t)got;
}

/* err = "'<label>': entry "<name>": <inner>" */
static int entry_fail(sl_npz *z, size_t i, const char *inner, char *err, size_t errlen)
{
	char q[256];
	size_t len;
	const char *name = zip_get_name(z->za, i, ZIP_FL_ENC_RAW);
	len = name ? strlen(name) : 0;
	return sl_errf(err, errlen, "'%s': entry %s: %s", z->label, quote(name ? name : "", len, q, sizeof q),
	            inner);
}

int sl_npz_begin(sl_npz *z, size_t i, sl_npy *h, char *err, size_t errlen)
{
	char inner[512];
	if (z->cur) {
		zip_fclose(z->cur);
		z->cur = NULL;
	}
	if (i >= z->n)
		return sl_errf(err, errlen, "'%s': no entry %zu", z->label, i + 1);
	z->cur = zip_fopen_index(z->za, i, 0);
	if (!z->cur) {
		snprintf(inner, sizeof inner, "cannot open: %s", zerr_text(zip_get_error(z->za)));
		return entry_fail(z, i, inner, err, errlen);
	}
	z->cur_index = i;
	int rc = sl_npy_read_header_from(entry_read, z->cur, h, inner, sizeof inner);
	if (rc == 0 && h->header_bytes > z->sizes[i])
		rc = sl_errf(inner, sizeof inner, "truncated .npy header");
	if (rc == 0)
		rc = sl_npy_check_length(h, z->sizes[i] - h->header_bytes, "entry", inner, sizeof inner);
	if (rc != 0) {
		zip_fclose(z->cur);
		z->cur = NULL;
		return entry_fail(z, i, inner, err, errlen);
	}
	return 0;
}

int sl_npz_read(sl_npz *z, const sl_npy *h, float *dst, char *err, size_t errlen)
{
	char inner[512];
	if (!z->cur)
		return sl_errf(err, errlen, "'%s': no entry is open", z->label);
	int rc = sl_npy_read_data_from(entry_read, z->cur, h, dst, inner, sizeof inner);
	zip_fclose(z->cur);
	z->cur = NULL;
	return rc != 0 ? entry_fail(z, z->cur_index, inner, err, errlen) : 0;
}

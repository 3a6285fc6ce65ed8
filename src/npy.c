/*
 * npy.c — reading and writing NumPy .npy files; see npy.h.
 *
 * Format (numpy/lib/format.py, NEP 1): "\x93NUMPY", major and minor version
 * bytes, the header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and
 * 3.0), then a Python dict literal with the keys 'descr', 'fortran_order'
 * and 'shape', padded with spaces to a multiple of 64 bytes and ended by a
 * newline, then the raw elements.
 */
#define _DEFAULT_SOURCE /* realpath, fchown */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads and writes little-endian data in place: port it first"
#endif

/* Headers longer than this are refused (numpy's own limit is 10000). */
#define MAX_HEADER (1 << 20)

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A tiny scanner over the header dict. */
typedef struct scan {
	const char *p, *end;
} scan;

static void skip_ws(scan *s)
{
	while (s->p < s->end && isspace((unsigned char)*s->p))
		s->p++;
}

static int accept(scan *s, char c)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return 1;
	}
	return 0;
}

/* A quoted Python string without escapes, into buf. */
static int read_str(scan *s, char *buf, size_t len)
{
	skip_ws(s);
	if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
		return -1;
	char q = *s->p++;
	size_t n = 0;
	while (s->p < s->end && *s->p != q) {
		if (*s->p == '\\' || n + 1 >= len)
			return -1;
		buf[n++] = *s->p++;
	}
	if (s->p >= s->end)
		return -1;
	s->p++;
	buf[n] = '\0';
	return 0;
}

static int read_word(scan *s, const char *w)
{
	skip_ws(s);
	size_t n = strlen(w);
	if ((size_t)(s->end - s->p) >= n && memcmp(s->p, w, n) == 0) {
		s->p += n;
		return 1;
	}
	return 0;
}

/* '(' [int {',' int} [',']] ')' */
static int read_shape(scan *s, sl_npy *h, char *err, size_t errlen)
{
	if (!accept(s, '('))
		return fail(err, errlen, "malformed header: 'shape' is not a tuple");
	h->ndim = 0;
	for (;;) {
		if (accept(s, ')'))
			break;
		skip_ws(s);
		if (s->p >= s->end || !isdigit((unsigned char)*s->p))
			return fail(err, errlen, "malformed header: bad 'shape' tuple");
		int64_t v = 0;
		while (s->p < s->end && isdigit((unsigned char)*s->p)) {
			if (v > (INT64_MAX - 9) / 10)
				return fail(err, errlen, "shape dimension is too large");
			v = v * 10 + (*s->p++ - '0');
		}
		if (s->p < s->end && *s->p == 'L') /* Python 2 long */
			s->p++;
		if (h->ndim == SL_MAXDIM)
			return fail(err, errlen, "arrays of more than %d dimensions are not supported",
			            SL_MAXDIM);
		h->shape[h->ndim++] = v;
		if (!accept(s, ',')) {
			if (!accept(s, ')'))
				return fail(err, errlen, "malformed header: bad 'shape' tuple");
			break;
		}
	}
	return 0;
}

static int parse_descr(sl_npy *h, char *err, size_t errlen)
{
	const char *d = h->descr;
	if (strlen(d) < 3)
		return fail(err, errlen, "unsupported dtype '%s'", d);
	char order = d[0], kind = d[1];
	char *endp;
	long size = strtol(d + 2, &endp, 10);
	if (*endp != '\0' || strchr("<>|=", order) == NULL)
		return fail(err, errlen, "unsupported dtype '%s'", d);
	int ok = (kind == 'f' && (size == 4 || size == 8)) ||
	         ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
	         (kind == 'b' && size == 1);
	if (!ok)
		return fail(err, errlen,
		            "unsupported dtype '%s' (float32/64, int8-64, uint8-64 and bool are read)", d);
	if (order == '>' && size > 1)
		return fail(err, errlen, "big-endian dtype '%s' is not supported", d);
	h->kind = kind;
	h->size = (int)size;
	return 0;
}

int sl_npy_read_header(FILE *f, sl_npy *h, char *err, size_t errlen)
{
	unsigned char pre[12];
	size_t got = fread(pre, 1, 10, f);
	if (got < 8 || memcmp(pre, "\x93NUMPY", 6) != 0)
		return fail(err, errlen, "not a .npy file (no \\x93NUMPY magic)");
	int major = pre[6], minor = pre[7];
	size_t hlen;
	if (major == 1 && got == 10) {
		hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
	} else if ((major == 2 || major == 3) && got == 10 && fread(pre + 10, 1, 2, f) == 2) {
		hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
		       (size_t)pre[11] << 24;
	} else if (major < 1 || major > 3) {
		return fail(err, errlen, "unsupported .npy format version %d.%d", major, minor);
	} else {
		return fail(err, errlen, "truncated .npy header");
	}
	if (hlen > MAX_HEADER)
		return fail(err, errlen, "header of %zu bytes is larger than %d", hlen, MAX_HEADER);
	char *buf = malloc(hlen + 1);
	if (!buf)
		return fail(err, errlen, "out of memory reading the header");
	if (fread(buf, 1, hlen, f) != hlen) {
		free(buf);
		return fail(err, errlen, "truncated .npy header");
	}
	scan s = {buf, buf + hlen};
	int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0, rc = 0;
	char key[32];
	if (!accept(&s, '{')) {
		rc = fail(err, errlen, "malformed header: not a dict");
		goto done;
	}
	while (!accept(&s, '}')) {
		if (read_str(&s, key, sizeof key) != 0 || !accept(&s, ':')) {
			rc = fail(err, errlen, "malformed header: expected 'key': value");
			goto done;
		}
		if (strcmp(key, "descr") == 0 && !have_descr) {
			have_descr = 1;
			if (read_str(&s, h->descr, sizeof h->descr) != 0) {
				rc = fail(err, errlen, "unsupported dtype (a structured or unknown 'descr')");
				goto done;
			}
		} else if (strcmp(key, "fortran_order") == 0 && !have_order) {
			have_order = 1;
			if (read_word(&s, "True"))
				fortran = 1;
			else if (!read_word(&s, "False")) {
				rc = fail(err, errlen, "malformed header: 'fortran_order' is not a boolean");
				goto done;
			}
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			have_shape = 1;
			if ((rc = read_shape(&s, h, err, errlen)) != 0)
				goto done;
		} else {
			rc = fail(err, errlen, "malformed header: unexpected key '%s'", key);
			goto done;
		}
		if (!accept(&s, ',')) {
			if (!accept(&s, '}')) {
				rc = fail(err, errlen, "malformed header: expected ',' or '}'");
				goto done;
			}
			break;
		}
	}
	if (!have_descr || !have_order || !have_shape) {
		rc = fail(err, errlen, "malformed header: missing '%s'",
		          !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
		goto done;
	}
	if ((rc = parse_descr(h, err, errlen)) != 0)
		goto done;
	if (fortran) {
		rc = fail(err, errlen, "Fortran-order arrays are not supported (save with C order)");
		goto done;
	}
	if (h->ndim == 0) {
		rc = fail(err, errlen, "0-dimensional arrays are not supported");
		goto done;
	}
	int64_t n = 1;
	for (int i = 0; i < h->ndim; i++) {
		if (h->shape[i] == 0) {
			rc = fail(err, errlen, "arrays with a zero-length dimension are not supported");
			goto done;
		}
		if (__builtin_mul_overflow(n, h->shape[i], &n) || n > SL_MAXNUMEL) {
			rc = fail(err, errlen, "array is too large");
			goto done;
		}
	}
	h->numel = (size_t)n;
done:
	free(buf);
	return rc;
}

/* converts m elements of kind/size at src to float; returns the index of
 * the first finite float64 that overflows float32, or m if there is none */
static size_t convert(const sl_npy *h, const unsigned char *src, size_t m, float *dst)
{
#define CONV(T)                                            \
	for (size_t i = 0; i < m; i++) {                   \
		T v;                                       \
		memcpy(&v, src + i * sizeof(T), sizeof(T)); \
		dst[i] = (float)v;                         \
	}
	switch (h->kind) {
	case 'f':
		if (h->size == 4) {
			memcpy(dst, src, m * sizeof(float));
		} else {
			for (size_t i = 0; i < m; i++) {
				double v;
				memcpy(&v, src + i * sizeof v, sizeof v);
				dst[i] = (float)v;
				if (isinf(dst[i]) && isfinite(v))
					return i;
			}
		}
		break;
	case 'i':
		if (h->size == 1) {
			CONV(int8_t)
		} else if (h->size == 2) {
			CONV(int16_t)
		} else if (h->size == 4) {
			CONV(int32_t)
		} else {
			CONV(int64_t)
		}
		break;
	case 'u':
		if (h->size == 1) {
			CONV(uint8_t)
		} else if (h->size == 2) {
			CONV(uint16_t)
		} else if (h->size == 4) {
			CONV(uint32_t)
		} else {
			CONV(uint64_t)
		}
		break;
	default: /* 'b' */
		for (size_t i = 0; i < m; i++)
			dst[i] = src[i] ? 1.0f : 0.0f;
		break;
	}
#undef CONV
	return m;
}

int sl_npy_check_size(FILE *f, const sl_npy *h, char *err, size_t errlen)
{
	long here = ftell(f);
	if (here < 0 || fseek(f, 0, SEEK_END) != 0)
		return 0; /* not seekable (a pipe): the read will tell */
	long end = ftell(f);
	if (end < 0 || fseek(f, here, SEEK_SET) != 0)
		return fail(err, errlen, "cannot seek: %s", strerror(errno));
	/* numel <= 2^40 and size <= 8: the product fits */
	size_t want = h->numel * (size_t)h->size, have = (size_t)(end - here);
	if (have < want)
		return fail(err, errlen, "truncated data: the header's shape needs %zu bytes, the file holds %zu",
		            want, have);
	if (have > want)
		return fail(err, errlen, "unexpected bytes after the %zu elements of data", h->numel);
	return 0;
}

int sl_npy_read_data(FILE *f, const sl_npy *h, float *dst, char *err, size_t errlen)
{
	size_t want = h->numel * (size_t)h->size;
	if (h->kind == 'f' && h->size == 4) {
		size_t got = fread(dst, 1, want, f);
		if (got != want)
			return fail(err, errlen, "truncated data: expected %zu bytes, found %zu", want, got);
	} else {
		enum { CH = 8192 };
		unsigned char buf[CH * 8];
		size_t per = sizeof buf / (size_t)h->size;
		for (size_t i = 0; i < h->numel; i += per) {
			size_t m = h->numel - i < per ? h->numel - i : per;
			size_t got = fread(buf, (size_t)h->size, m, f);
			if (got != m)
				return fail(err, errlen, "truncated data: expected %zu bytes, found %zu", want,
				            (i + got) * (size_t)h->size);
			size_t bad = convert(h, buf, m, dst + i);
			if (bad < m) {
				char at[128];
				double v;
				memcpy(&v, buf + bad * sizeof v, sizeof v);
				sl_coordstr(h->ndim, h->shape, i + bad, at, sizeof at);
				return fail(err, errlen, "value %g at %s is beyond the float32 range (|v| <= 3.4028235e+38)",
				            v, at);
			}
		}
	}
	if (ferror(f))
		return fail(err, errlen, "read error: %s", strerror(errno));
	if (fgetc(f) != EOF)
		return fail(err, errlen, "unexpected bytes after the %zu elements of data", h->numel);
	return 0;
}

/* What a path names, for messages. */
static const char *kind_of(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
	       : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

int sl_npy_write(const char *path, int ndim, const int64_t *shape, const float *data,
                 char *err, size_t errlen)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
	for (int i = 0; i < ndim; i++)
		n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld,%s", (long long)shape[i],
		              i + 1 < ndim ? " " : "");
	if (ndim > 1)
		n--; /* numpy writes (2, 3) but (5,) */
	n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
	/* pad so that magic (6) + version (2) + length (2) + header is a multiple
	 * of 64, the header ending in '\n' */
	size_t total = 10 + (size_t)n + 1;
	size_t pad = (64 - total % 64) % 64;
	size_t hlen = (size_t)n + pad + 1;
	unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
	                         (unsigned char)(hlen >> 8)};
	memset(hdr + n, ' ', pad);
	hdr[(size_t)n + pad] = '\n';

	/* The file to replace: path itself, or the file a symbolic link points
	 * to (the link is kept). Only regular files are replaced; a directory,
	 * device, FIFO or socket is refused, since replacing it by a regular
	 * file would destroy it and writing into it is not a save. */
	struct stat st;
	int exists = 0, rc = -1, fd = -1, dfd = -1;
	char *target = NULL, *tmp = NULL;
	if (lstat(path, &st) == 0) {
		exists = 1;
		if (S_ISLNK(st.st_mode)) {
			target = realpath(path, NULL);
			if (!target || stat(target, &st) != 0) {
				int e = errno;
				free(target);
				return fail(err, errlen, "cannot write '%s': it is a symbolic link to %s (%s)", path,
				            e == ENOENT ? "a file that does not exist" : "a file that cannot be reached",
				            strerror(e));
			}
		}
		if (!S_ISREG(st.st_mode)) {
			free(target);
			return fail(err, errlen, "cannot write '%s': it is %s, not a regular file", path,
			            kind_of(st.st_mode));
		}
	} else if (errno != ENOENT) {
		return fail(err, errlen, "cannot write '%s': %s", path, strerror(errno));
	}
	if (!target && !(target = strdup(path)))
		return fail(err, errlen, "cannot write '%s': out of memory", path);

	/* the directory of the target, and its last component */
	char *slash = strrchr(target, '/');
	const char *base = slash ? slash + 1 : target;
	if (*base == '\0') {
		rc = fail(err, errlen, "cannot write '%s': the path names a directory", path);
		goto done;
	}
	if (slash == target)
		dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else if (slash) {
		*slash = '\0';
		dfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		*slash = '/';
	} else
		dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = fail(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		goto done;
	}

	/* a short temporary name beside the target (any name length fits),
	 * renamed over it once every byte is written: a failed save leaves the
	 * old file as it was */
	enum { TMPLEN = 64 };
	if (!(tmp = malloc(TMPLEN))) {
		rc = fail(err, errlen, "cannot write '%s': out of memory", path);
		goto done;
	}
	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		snprintf(tmp, TMPLEN, ".segloss-%ld-%d.tmp", (long)getpid(), attempt);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? 0600 : 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		rc = fail(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		goto done;
	}
	/* an existing file keeps its permissions (and, where we may, its owner) */
	if (exists) {
		if (fchown(fd, st.st_uid, st.st_gid) != 0) {
			/* only root may give a file away: the new file stays ours */
		}
		if (fchmod(fd, st.st_mode & 07777) != 0) {
			int e = errno;
			close(fd);
			unlinkat(dfd, tmp, 0);
			rc = fail(err, errlen, "cannot write '%s': %s", path, strerror(e));
			goto done;
		}
	}
	FILE *f = fdopen(fd, "wb");
	if (!f) {
		int e = errno;
		close(fd);
		unlinkat(dfd, tmp, 0);
		rc = fail(err, errlen, "cannot write '%s': %s", path, strerror(e));
		goto done;
	}
	size_t count = 1;
	for (int i = 0; i < ndim; i++)
		count *= (size_t)shape[i];
	int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, hlen, f) == hlen &&
	         fwrite(data, sizeof(float), count, f) == count;
	int e = errno;
	if (fclose(f) != 0 && ok) {
		ok = 0;
		e = errno;
	}
	if (ok && renameat(dfd, tmp, dfd, base) != 0) {
		ok = 0;
		e = errno;
	}
	if (!ok) {
		unlinkat(dfd, tmp, 0);
		rc = fail(err, errlen, "cannot write '%s': %s", path, strerror(e));
		goto done;
	}
	rc = 0;
done:
	if (dfd >= 0)
		close(dfd);
	free(tmp);
	free(target);
	return rc;
}

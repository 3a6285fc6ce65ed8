/*
 * npy.c — reading and writing NumPy .npy files; see npy.h.
 *
 * Format (numpy/lib/format.py, NEP 1): "\x93NUMPY", major and minor version
 * bytes, the header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and
 * 3.0), then a Python dict literal with the keys 'descr', 'fortran_order'
 * and 'shape', padded with spaces to a multiple of 64 bytes and ended by a
 * newline, then the raw elements.
 */

#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "outfile.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads and writes little-endian data in place: port it first"
#endif

/* Headers longer than this are refused (numpy's own limit is 10000). */
#define MAX_HEADER (1 << 20)

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
		return sl_errf(err, errlen, "malformed header: 'shape' is not a tuple");
	h->ndim = 0;
	for (;;) {
		if (accept(s, ')'))
			break;
		skip_ws(s);
		if (s->p >= s->end || !isdigit((unsigned char)*s->p))
			return sl_errf(err, errlen, "malformed header: bad 'shape' tuple");
		int64_t v = 0;
		while (s->p < s->end && isdigit((unsigned char)*s->p)) {
			if (v > (INT64_MAX - 9) / 10)
				return sl_errf(err, errlen, "shape dimension is too large");
			v = v * 10 + (*s->p++ - '0');
		}
		if (s->p < s->end && *s->p == 'L') /* Python 2 long */
			s->p++;
		if (h->ndim == SL_MAXDIM)
			return sl_errf(err, errlen, "arrays of more than %d dimensions are not supported",
			            SL_MAXDIM);
		h->shape[h->ndim++] = v;
		if (!accept(s, ',')) {
			if (!accept(s, ')'))
				return sl_errf(err, errlen, "malformed header: bad 'shape' tuple");
			break;
		}
	}
	return 0;
}

static int parse_descr(sl_npy *h, char *err, size_t errlen)
{
	const char *d = h->descr;
	if (strlen(d) < 3)
		return sl_errf(err, errlen, "unsupported dtype '%s'", d);
	char order = d[0], kind = d[1];
	char *endp;
	long size = strtol(d + 2, &endp, 10);
	if (*endp != '\0' || strchr("<>|=", order) == NULL)
		return sl_errf(err, errlen, "unsupported dtype '%s'", d);
	int ok = (kind == 'f' && (size == 4 || size == 8)) ||
	         ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
	         (kind == 'b' && size == 1);
	if (!ok)
		return sl_errf(err, errlen,
		            "unsupported dtype '%s' (float32/64, int8-64, uint8-64 and bool are read)", d);
	if (order == '>' && size > 1)
		return sl_errf(err, errlen, "big-endian dtype '%s' is not supported", d);
	h->kind = kind;
	h->size = (int)size;
	return 0;
}

int sl_npy_read_header_from(sl_npy_read_fn rd, void *ctx, sl_npy *h, char *err, size_t errlen)
{
	unsigned char pre[12];
	int64_t got = rd(ctx, pre, 10, err, errlen), more = 0;
	if (got < 0)
		return -1;
	if (got < 8 || memcmp(pre, "\x93NUMPY", 6) != 0)
		return sl_errf(err, errlen, "not a .npy file (no \\x93NUMPY magic)");
	int major = pre[6], minor = pre[7];
	size_t hlen;
	if (major == 1 && got == 10) {
		hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
	} else if ((major == 2 || major == 3) && got == 10 && (more = rd(ctx, pre + 10, 2, err, errlen)) == 2) {
		hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
		       (size_t)pre[11] << 24;
	} else if (more < 0) {
		return -1;
	} else if (major < 1 || major > 3) {
		return sl_errf(err, errlen, "unsupported .npy format version %d.%d", major, minor);
	} else {
		return sl_errf(err, errlen, "truncated .npy header");
	}
	if (hlen > MAX_HEADER)
		return sl_errf(err, errlen, "header of %zu bytes is larger than %d", hlen, MAX_HEADER);
	h->header_bytes = (major == 1 ? 10 : 12) + hlen;
	char *buf = malloc(hlen + 1);
	if (!buf)
		return sl_errf(err, errlen, "out of memory reading the header");
	int64_t hgot = rd(ctx, buf, hlen, err, errlen);
	if (hgot < 0 || (size_t)hgot != hlen) {
		free(buf);
		return hgot < 0 ? -1 : sl_errf(err, errlen, "truncated .npy header");
	}
	scan s = {buf, buf + hlen};
	int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0, rc = 0;
	char key[32];
	if (!accept(&s, '{')) {
		rc = sl_errf(err, errlen, "malformed header: not a dict");
		goto done;
	}
	while (!accept(&s, '}')) {
		if (read_str(&s, key, sizeof key) != 0 || !accept(&s, ':')) {
			rc = sl_errf(err, errlen, "malformed header: expected 'key': value");
			goto done;
		}
		if (strcmp(key, "descr") == 0 && !have_descr) {
			have_descr = 1;
			if (read_str(&s, h->descr, sizeof h->descr) != 0) {
				rc = sl_errf(err, errlen, "unsupported dtype (a structured or unknown 'descr')");
				goto done;
			}
		} else if (strcmp(key, "fortran_order") == 0 && !have_order) {
			have_order = 1;
			if (read_word(&s, "True"))
				fortran = 1;
			else if (!read_word(&s, "False")) {
				rc = sl_errf(err, errlen, "malformed header: 'fortran_order' is not a boolean");
				goto done;
			}
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			have_shape = 1;
			if ((rc = read_shape(&s, h, err, errlen)) != 0)
				goto done;
		} else {
			rc = sl_errf(err, errlen, "malformed header: unexpected key '%s'", key);
			goto done;
		}
		if (!accept(&s, ',')) {
			if (!accept(&s, '}')) {
				rc = sl_errf(err, errlen, "malformed header: expected ',' or '}'");
				goto done;
			}
			break;
		}
	}
	if (!have_descr || !have_order || !have_shape) {
		rc = sl_errf(err, errlen, "malformed header: missing '%s'",
		          !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
		goto done;
	}
	if ((rc = parse_descr(h, err, errlen)) != 0)
		goto done;
	if (fortran) {
		rc = sl_errf(err, errlen, "Fortran-order arrays are not supported (save with C order)");
		goto done;
	}
	if (h->ndim == 0) {
		rc = sl_errf(err, errlen, "0-dimensional arrays are not supported");
		goto done;
	}
	int64_t n = 1;
	for (int i = 0; i < h->ndim; i++) {
		if (h->shape[i] == 0) {
			rc = sl_errf(err, errlen, "arrays with a zero-length dimension are not supported");
			goto done;
		}
		if (__builtin_mul_overflow(n, h->shape[i], &n) || n > SL_MAXNUMEL) {
			rc = sl_errf(err, errlen, "array is too large");
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

int sl_npy_check_length(const sl_npy *h, uint64_t have, const char *what, char *err, size_t errlen)
{
	/* numel <= 2^40 and size <= 8: the product fits */
	uint64_t want = (uint64_t)h->numel * (uint64_t)h->size;
	if (have < want)
		return sl_errf(err, errlen, "truncated data: the header's shape needs %llu bytes, the %s holds %llu",
		            (unsigned long long)want, what, (unsigned long long)have);
	if (have > want)
		return sl_errf(err, errlen, "unexpected bytes after the %zu elements of data", h->numel);
	return 0;
}

int sl_npy_read_data_from(sl_npy_read_fn rd, void *ctx, const sl_npy *h, float *dst, char *err,
                          size_t errlen)
{
	size_t want = h->numel * (size_t)h->size;
	if (h->kind == 'f' && h->size == 4) {
		int64_t got = rd(ctx, dst, want, err, errlen);
		if (got < 0)
			return -1;
		if ((size_t)got != want)
			return sl_errf(err, errlen, "truncated data: expected %zu bytes, found %zu", want, (size_t)got);
	} else {
		enum { CH = 8192 };
		unsigned char buf[CH * 8];
		size_t per = sizeof buf / (size_t)h->size;
		for (size_t i = 0; i < h->numel; i += per) {
			size_t m = h->numel - i < per ? h->numel - i : per;
			int64_t got = rd(ctx, buf, m * (size_t)h->size, err, errlen);
			if (got < 0)
				return -1;
			if ((size_t)got != m * (size_t)h->size)
				return sl_errf(err, errlen, "truncated data: expected %zu bytes, found %zu", want,
				            i * (size_t)h->size + (size_t)got);
			size_t bad = convert(h, buf, m, dst + i);
			if (bad < m) {
				char at[128];
				double v;
				memcpy(&v, buf + bad * sizeof v, sizeof v);
				sl_coordstr(h->ndim, h->shape, i + bad, at, sizeof at);
				return sl_errf(err, errlen, "value %g at %s is beyond the float32 range (|v| <= 3.4028235e+38)",
				            v, at);
			}
		}
	}
	/* the end of the stream must follow (for a zip entry, reading to its
	 * end also checks its CRC) */
	unsigned char extra;
	int64_t got = rd(ctx, &extra, 1, err, errlen);
	if (got < 0)
		return -1;
	if (got != 0)
		return sl_errf(err, errlen, "unexpected bytes after the %zu elements of data", h->numel);
	return 0;
}

/* A FILE* as a read function. */
static int64_t file_read(void *ctx, void *buf, size_t n, char *err, size_t errlen)
{
	FILE *f = ctx;
	size_t got = fread(buf, 1, n, f);
	if (got < n && ferror(f))
		return sl_errf(err, errlen, "read error: %s", strerror(errno));
	return (int64_t)got;
}

int sl_npy_read_header(FILE *f, sl_npy *h, char *err, size_t errlen)
{
	return sl_npy_read_header_from(file_read, f, h, err, errlen);
}

int sl_npy_read_data(FILE *f, const sl_npy *h, float *dst, char *err, size_t errlen)
{
	return sl_npy_read_data_from(file_read, f, h, dst, err, errlen);
}

int sl_npy_check_size(FILE *f, const sl_npy *h, char *err, size_t errlen)
{
	long here = ftell(f);
	if (here < 0 || fseek(f, 0, SEEK_END) != 0)
		return 0; /* not seekable (a pipe): the read will tell */
	long end = ftell(f);
	if (end < 0 || fseek(f, here, SEEK_SET) != 0)
		return sl_errf(err, errlen, "cannot seek: %s", strerror(errno));
	return sl_npy_check_length(h, (uint64_t)(end - here), "file", err, errlen);
}

size_t sl_npy_format_header(unsigned char buf[SL_NPY_MAXHDR], const char *descr, int ndim,
                            const int64_t *shape)
{
	char *hdr = (char *)buf + 10;
	size_t room = SL_NPY_MAXHDR - 10;
	/* at most 5 dimensions of at most 13 digits: the dict takes < 140 bytes */
	int n = snprintf(hdr, room, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
	for (int i = 0; i < ndim; i++)
		n += snprintf(hdr + n, room - (size_t)n, "%lld,%s", (long long)shape[i],
		              i + 1 < ndim ? " " : "");
	if (ndim > 1)
		n--; /* numpy writes (2, 3) but (5,) */
	n += snprintf(hdr + n, room - (size_t)n, "), }");
	/* pad so that magic (6) + version (2) + length (2) + header is a multiple
	 * of 64, the header ending in '\n' */
	size_t total = 10 + (size_t)n + 1;
	size_t pad = (64 - total % 64) % 64;
	size_t hlen = (size_t)n + pad + 1;
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (unsigned char)(hlen & 0xff);
	buf[9] = (unsigned char)(hlen >> 8);
	memset(hdr + n, ' ', pad);
	hdr[(size_t)n + pad] = '\n';
	return 10 + hlen;
}

int sl_npy_write(const char *path, int ndim, const int64_t *shape, const float *data,
                 char *err, size_t errlen)
{
	unsigned char hdr[SL_NPY_MAXHDR];
	size_t hlen = sl_npy_format_header(hdr, "<f4", ndim, shape);
	size_t count = 1;
	for (int i = 0; i < ndim; i++)
		count *= (size_t)shape[i];
	sl_outfile o;
	if (sl_outfile_begin(&o, path, err, errlen) != 0)
		return -1;
	int e = sl_outfile_write(&o, hdr, hlen);
	if (!e)
		e = sl_outfile_write(&o, data, count * sizeof(float));
	if (e) {
		sl_outfile_abort(&o);
		return sl_errf(err, errlen, "cannot write '%s': %s", path, strerror(e));
	}
	return sl_outfile_commit(&o, 0, path, err, errlen);
}

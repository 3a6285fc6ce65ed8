/*
 * shape.c — shapes and coordinates as text, for messages. Lua-free.
 */
#include <stdio.h>

#include "tensor.h"

const char *sl_shapestr(int ndim, const int64_t *shape, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "{");
	for (int i = 0; i < ndim && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? "," : "", (long long)shape[i]);
	if (n < len)
		snprintf(buf + n, len - n, "}");
	return buf;
}

const char *sl_coordstr(int ndim, const int64_t *shape, size_t off, char *buf, size_t len)
{
	int64_t c[SL_MAXDIM];
	for (int i = ndim - 1; i >= 0; i--) {
		c[i] = (int64_t)(off % (size_t)shape[i]) + 1;
		off /= (size_t)shape[i];
	}
	return sl_shapestr(ndim, c, buf, len);
}

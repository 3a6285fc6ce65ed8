/*
 * print.c — tostring of a segloss.Tensor (its __tostring, registered in
 * tensor.c): NumPy's layout; more than 1000 elements show 3 at each edge.
 */
#include <math.h>
#include <stdio.h>

#include "bind.h"

#define SUMMARY_AT 1000
#define EDGE 3

typedef struct printer {
	const sl_tensor *t;
	int summary;
	int mode;  /* 0: integral "%.0f.", 1: "%.4f", 2: "%.4e" */
	int width;
	double maxabs, minabs;
	int integral, any;
	luaL_Buffer *b;
} printer;

static int fmt_elem(char *buf, size_t len, float v, int mode)
{
	if (isnan(v))
		return snprintf(buf, len, "nan");
	if (isinf(v))
		return snprintf(buf, len, v > 0 ? "inf" : "-inf");
	if (mode == 0)
		return snprintf(buf, len, "%.0f.", (double)v);
	if (mode == 1)
		return snprintf(buf, len, "%.4f", (double)v);
	return snprintf(buf, len, "%.4e", (double)v);
}

static int shown(const printer *p, int d, int64_t i)
{
	int64_t n = p->t->shape[d];
	return !p->summary || n <= 2 * EDGE || i < EDGE || i >= n - EDGE;
}

/* Between two blocks of axis d: a comma, one newline per inner axis, and
 * the indent of the next block's brackets. */
static void break_line(printer *p, const sl_tensor *t, int d)
{
	luaL_addchar(p->b, ',');
	for (int k = d + 1; k < t->ndim; k++)
		luaL_addchar(p->b, '\n');
	for (int k = 0; k <= d; k++)
		luaL_addchar(p->b, ' ');
}

/* pass 0 measures, pass 1 prints */
static void visit(printer *p, int pass, int d, size_t off)
{
	const sl_tensor *t = p->t;
	size_t stride = 1;
	for (int k = d + 1; k < t->ndim; k++)
		stride *= (size_t)t->shape[k];
	if (pass)
		luaL_addchar(p->b, '[');
	int first = 1;
	for (int64_t i = 0; i < t->shape[d]; i++) {
		if (!shown(p, d, i)) {
			if (pass) {
				if (d + 1 == t->ndim) {
					luaL_addstring(p->b, ", ...");
				} else {
					break_line(p, t, d);
					luaL_addstring(p->b, "...");
				}
			}
			i = t->shape[d] - EDGE - 1;
			continue;
		}
		if (pass && !first) {
			if (d + 1 == t->ndim) {
				luaL_addstring(p->b, ", ");
			} else {
				break_line(p, t, d);
			}
		}
		first = 0;
		if (d + 1 < t->ndim) {
			visit(p, pass, d + 1, off + (size_t)i * stride);
			continue;
		}
		float v = t->data[off + (size_t)i];
		char buf[64];
		if (pass == 0) {
			if (isfinite(v)) {
				double a = fabs((double)v);
				p->integral &= (double)v == floor((double)v);
				p->maxabs = a > p->maxabs ? a : p->maxabs;
				if (a > 0 && (a < p->minabs || p->minabs == 0))
					p->minabs = a;
				p->any = 1;
			}
		} else {
			int w = fmt_elem(buf, sizeof buf, v, p->mode);
			for (int k = w; k < p->width; k++)
				luaL_addchar(p->b, ' ');
			luaL_addstring(p->b, buf);
		}
	}
	if (pass)
		luaL_addchar(p->b, ']');
}

/* widest element; runs after the mode is known */
static void measure(printer *p, int d, size_t off)
{
	const sl_tensor *t = p->t;
	size_t stride = 1;
	for (int k = d + 1; k < t->ndim; k++)
		stride *= (size_t)t->shape[k];
	for (int64_t i = 0; i < t->shape[d]; i++) {
		if (!shown(p, d, i)) {
			i = t->shape[d] - EDGE - 1;
			continue;
		}
		if (d + 1 < t->ndim) {
			measure(p, d + 1, off + (size_t)i * stride);
		} else {
			char buf[64];
			int w = fmt_elem(buf, sizeof buf, t->data[off + (size_t)i], p->mode);
			p->width = w > p->width ? w : p->width;
		}
	}
}

int sl_tensor_tostring(lua_State *L)
{
	sl_tensor *t = sl_checktensor(L, 1, "segloss.Tensor:__tostring", "self");
	luaL_Buffer b;
	char sh[160];
	luaL_buffinit(L, &b);
	luaL_addstring(&b, "segloss.Tensor ");
	luaL_addstring(&b, sl_shapestr(t->ndim, t->shape, sh, sizeof sh));
	luaL_addstring(&b, " float32\n");
	printer p = {.t = t, .summary = t->numel > SUMMARY_AT, .integral = 1, .b = &b};
	visit(&p, 0, 0, 0);
	if (!p.any || (p.integral && p.maxabs < 1e9))
		p.mode = 0;
	else if (p.maxabs < 1e5 && p.minabs >= 1e-4)
		p.mode = 1;
	else
		p.mode = 2;
	measure(&p, 0, 0);
	visit(&p, 1, 0, 0);
	luaL_pushresult(&b);
	return 1;
}

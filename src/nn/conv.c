/*
 * conv.c — convolutions on oneDNN 2.6 (C API); see conv.h for the contract
 * and the threading design.
 *
 * Each direction (forward, backward data, backward weights) has one oneDNN
 * primitive for a minibatch of ONE sample, created while the OpenMP ICV says
 * one thread (oneDNN sizes its blocking and its internal parallel() by
 * omp_get_max_threads() at creation; inside our parallel region its OpenMP
 * runtime runs serially). Our loop gives samples to threads; every thread has
 * a slot: a stream, memory objects, its scratchpad and, for blocked layouts,
 * buffers to reorder its sample into and out of. A sample's result therefore
 * does not depend on which thread computes it nor on how many there are.
 *
 * The weight gradient: each sample writes its own partial (in the
 * primitive's layout); after the loop the partials are summed in double in
 * sample order, element by element, and added to the caller's gradient.
 *
 * Memory: a plan keeps its primitives, descriptors, streams and memory
 * objects. Everything large and transient (the slots' reorder buffers and
 * scratchpads, reordered weights, the partials) is carved from the caller's
 * workspace at the start of each call (see "the workspace" below), so a
 * network holds one layer's worth of it, not the sum over its layers. Weights
 * are reordered at every call anyway (they change at every optimiser step),
 * so nothing of them needs to outlive a call.
 *
 * Small calls (SL_CONV_MIN_FLOPS) run on fewer threads; since the units of
 * work (samples, slabs) do not depend on the thread count, neither do the
 * bits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../mem.h"
#include "conv.h"

enum { D_FWD, D_BWD_DATA, D_BWD_W, ND };
/* the ports of a direction:
 *   forward:          A = src (x),      B = dst (y, out),       W = weights
 *   backward data:    A = diff_dst (gy), B = diff_src (gx, out), W = weights
 *   backward weights: A = src (x),      B = diff_dst (gy),      W = diff_weights (out) */
enum { P_A, P_B, P_W, NP };

typedef struct port {
	int arg;
	int out;
	int same; /* the primitive takes the user's plain layout */
	dnnl_memory_desc_t umd, pmd;
	dnnl_primitive_t reo; /* user -> primitive (inputs), primitive -> user (outputs) */
	size_t pbytes;
} port;

/* A thread's stream and memory objects; the buffers behind pm[] and scratch
 * are the thread's part of the workspace, set at the start of every call. */
typedef struct slot {
	dnnl_stream_t st;
	dnnl_memory_t um[NP], pm[NP], bias, scratch;
	int status;
} slot;

typedef struct dir {
	int ready;
	dnnl_primitive_t prim;
	port p[NP];
	dnnl_memory_desc_t bmd, smd;
	size_t sbytes;
	slot *slots;
	int nslots;
	/* forward, backward data: the weights (and bias) shared by all threads;
	 * backward weights: the sum in the primitive's (wp) and user's (wu)
	 * layouts. wp and wu's buffers are in the workspace. */
	dnnl_memory_t wu, wp, bias;
	float *zeros; /* bias when none is given */
	/* during one call: the workspace's parts (not owned) */
	void *wbuf;  /* weights in the primitive's layout; backward weights: the sum */
	float *wtmp; /* backward weights: the sum in the user's layout */
	float *part, *partb;
	char impl[64];
} dir;

struct sl_conv {
	sl_conv_cfg c;
	int blocked;
	dnnl_engine_t eng;
	int64_t in[3]; /* the input shape the directions were built for */
	int nt;
	dir d[ND];
	/* forward in slabs: the first, middle and last slab's primitives (or the
	 * whole sample's in fv[0]); nslab slabs of q output rows per sample */
	dir fv[3];
	int64_t nslab, q;
	char err[200];
};

/* ---- configuration and shapes ---- */

const char *sl_conv_cfg_check(const sl_conv_cfg *c)
{
	if (c->dims != 2 && c->dims != 3)
		return "dims must be 2 or 3";
	if (c->cin < 1 || c->cout < 1)
		return "cin and cout must be >= 1";
	if (c->transposed) {
		if (c->k != 2 || c->stride != 2)
			return "a transposed convolution has kernel 2 and stride 2";
	} else {
		if (c->k != 1 && c->k != 3)
			return "k must be 1 or 3";
		if (c->stride != 1 && c->stride != 2)
			return "stride must be 1 or 2";
	}
	return NULL;
}

int sl_conv_out_spatial(const sl_conv_cfg *c, const int64_t *in, int64_t *out)
{
	int64_t pad = (c->k - 1) / 2;
	for (int a = 0; a < c->dims; a++) {
		if (in[a] < 1 || in[a] > SL_MAXNUMEL)
			return -1;
		if (c->transposed)
			out[a] = 2 * in[a];
		else if (in[a] + 2 * pad < c->k)
			return -1;
		else
			out[a] = (in[a] + 2 * pad - c->k) / c->stride + 1;
	}
	return 0;
}

size_t sl_conv_wnumel(const sl_conv_cfg *c)
{
	size_t n = (size_t)c->cout * (size_t)c->cin;
	for (int a = 0; a < c->dims; a++)
		n *= (size_t)c->k;
	return n;
}

/* ---- plan ---- */

sl_conv *sl_conv_new(const sl_conv_cfg *cfg)
{
	sl_conv *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->c = *cfg;
	p->blocked = -1;
	if (dnnl_engine_create(&p->eng, dnnl_cpu, 0) != dnnl_success) {
		free(p);
		return NULL;
	}
	return p;
}

const sl_conv_cfg *sl_conv_config(const sl_conv *p) { return &p->c; }
const char *sl_conv_error(const sl_conv *p) { return p->err; }
void sl_conv_set_blocked(sl_conv *p, int blocked) { p->blocked = blocked; }
const char *sl_conv_impl(const sl_conv *p, int d) { return d == 0 ? p->fv[0].impl : d > 0 && d < ND ? p->d[d].impl : ""; }

static void free_dir(dir *d)
{
	if (d->slots) {
		for (int t = 0; t < d->nslots; t++) {
			slot *s = &d->slots[t];
			for (int i = 0; i < NP; i++) {
				if (s->um[i])
					dnnl_memory_destroy(s->um[i]);
				if (s->pm[i])
					dnnl_memory_destroy(s->pm[i]);
			}
			if (s->bias)
				dnnl_memory_destroy(s->bias);
			if (s->scratch)
				dnnl_memory_destroy(s->scratch);
			if (s->st)
				dnnl_stream_destroy(s->st);
		}
		free(d->slots);
	}
	for (int i = 0; i < NP; i++)
		if (d->p[i].reo)
			dnnl_primitive_destroy(d->p[i].reo);
	if (d->prim)
		dnnl_primitive_destroy(d->prim);
	if (d->wu)
		dnnl_memory_destroy(d->wu);
	if (d->wp)
		dnnl_memory_destroy(d->wp);
	if (d->bias)
		dnnl_memory_destroy(d->bias);
	free(d->zeros);
	memset(d, 0, sizeof *d);
}

void sl_conv_free(sl_conv *p)
{
	if (!p)
		return;
	for (int d = 0; d < ND; d++)
		free_dir(&p->d[d]);
	for (int v = 0; v < 3; v++)
		free_dir(&p->fv[v]);
	dnnl_engine_destroy(p->eng);
	free(p);
}

/* ---- building a direction ---- */

static int fail(sl_conv *p, const char *what, dnnl_status_t st)
{
	snprintf(p->err, sizeof p->err, "oneDNN %s failed (status %d)", what, (int)st);
	return st == dnnl_out_of_memory ? SL_CONV_ENOMEM : SL_CONV_EDNNL;
}

#define TRY(what, call)                                                                            \
	do {                                                                                       \
		dnnl_status_t st_ = (call);                                                        \
		if (st_ != dnnl_success) {                                                         \
			rc = fail(p, what, st_);                                                   \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static void *alloc64(size_t bytes)
{
	if (bytes == 0)
		bytes = 64;
	if (bytes > SIZE_MAX - 64)
		return NULL;
	return sl_mem_aligned(64, (bytes + 63) / 64 * 64);
}

/* The part of a sample one primitive works on: spatial sizes of its input
 * and output, paddings, and the full sample's spatial sizes (the strides of
 * the user's tensors). Forward may cut a sample into slabs of output rows
 * along the first spatial axis; otherwise the part is the whole sample. */
typedef struct geom {
	int64_t in[3], out[3], pl[3], pr[3];
	int64_t fin[3], fout[3];
} geom;

static void whole(const sl_conv *p, geom *g)
{
	const sl_conv_cfg *c = &p->c;
	sl_conv_out_spatial(c, p->in, g->out);
	for (int a = 0; a < c->dims; a++) {
		g->in[a] = g->fin[a] = p->in[a];
		g->fout[a] = g->out[a];
		g->pl[a] = g->pr[a] = (c->k - 1) / 2;
	}
}

/* The plain descriptor of part dims (1, ch, sp...) of a tensor whose
 * samples have spatial sizes full. */
static dnnl_status_t plain_md(dnnl_memory_desc_t *md, int dims, int64_t ch, const int64_t *sp,
                              const int64_t *full)
{
	dnnl_dims_t d = {1, ch}, st;
	st[dims + 1] = 1;
	for (int a = dims - 1; a >= 0; a--)
		st[a + 1] = st[a + 2] * full[a];
	st[0] = st[1] * ch;
	for (int a = 0; a < dims; a++)
		d[2 + a] = sp[a];
	return dnnl_memory_desc_init_by_strides(md, dims + 2, d, dnnl_f32, st);
}

/* The user's (plain) descriptors of x, y and w, and the primitive's request
 * (the same, or "any" for blocked layouts). */
typedef struct mds {
	dnnl_memory_desc_t x, y, w, b, ax, ay, aw;
} mds;

/* Blocked layouts (nChw8c/nChw16c with reorders around each sample) or the
 * plain ones, for direction dn. Measured (bench/conv.c, make bench-conv):
 * oneDNN's direct jit kernels on blocked layouts beat its plain-layout
 * im2col + sgemm by 2-5x for kernel 3; for kernel 1 the plain sgemm wins
 * forward and backward data, the blocked kernel the weight gradient unless
 * there are fewer than 8 output channels (the output layer); the data
 * gradient of a layer with fewer than 8 input channels (the first) is faster
 * plain (4x); the forward transposed convolution is faster plain (1.1-2x),
 * its gradients blocked. */
static int use_blocked(const sl_conv *p, int dn)
{
	const sl_conv_cfg *c = &p->c;
	if (p->blocked >= 0)
		return p->blocked;
	if (c->transposed)
		return dn != D_FWD;
	if (dn == D_BWD_DATA && c->cin < 8)
		return 0;
	if (c->k == 1)
		return dn == D_BWD_W && c->cout >= 8;
	return 1;
}

static int make_mds(sl_conv *p, int dn, const geom *g, mds *m)
{
	const sl_conv_cfg *c = &p->c;
	int nd = c->dims + 2, rc = SL_CONV_OK;
	dnnl_dims_t xd = {1, c->cin}, yd = {1, c->cout}, wd = {c->cout, c->cin}, bd = {c->cout};
	for (int a = 0; a < c->dims; a++) {
		xd[2 + a] = g->in[a];
		yd[2 + a] = g->out[a];
		wd[2 + a] = c->k;
	}
	dnnl_format_tag_t wt = c->transposed ? (c->dims == 2 ? dnnl_iohw : dnnl_iodhw)
	                                     : (c->dims == 2 ? dnnl_oihw : dnnl_oidhw);
	TRY("memory_desc_init", plain_md(&m->x, c->dims, c->cin, g->in, g->fin));
	TRY("memory_desc_init", plain_md(&m->y, c->dims, c->cout, g->out, g->fout));
	TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(&m->w, nd, wd, dnnl_f32, wt));
	TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(&m->b, 1, bd, dnnl_f32, dnnl_a));
	if (use_blocked(p, dn)) {
		TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(&m->ax, nd, xd, dnnl_f32, dnnl_format_tag_any));
		TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(&m->ay, nd, yd, dnnl_f32, dnnl_format_tag_any));
		TRY("memory_desc_init", dnnl_memory_desc_init_by_tag(&m->aw, nd, wd, dnnl_f32, dnnl_format_tag_any));
	} else {
		m->ax = m->x;
		m->ay = m->y;
		m->aw = m->w;
	}
out:
	return rc;
}

/* The forward primitive descriptor (also the hint of the backward ones). */
static int fwd_pd(sl_conv *p, const geom *g, const mds *m, dnnl_primitive_attr_t attr,
                  dnnl_primitive_desc_t *pd)
{
	const sl_conv_cfg *c = &p->c;
	int rc = SL_CONV_OK;
	dnnl_dims_t s, pad, padr;
	for (int a = 0; a < c->dims; a++) {
		s[a] = c->stride;
		pad[a] = g->pl[a];
		padr[a] = g->pr[a];
	}
	if (c->transposed) {
		dnnl_deconvolution_desc_t dd;
		TRY("deconvolution_forward_desc_init",
		    dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_training, dnnl_deconvolution_direct,
		                                         &m->ax, &m->aw, &m->b, &m->ay, s, pad, padr));
		TRY("primitive_desc_create (deconvolution forward)",
		    dnnl_primitive_desc_create(pd, &dd, attr, p->eng, NULL));
	} else {
		dnnl_convolution_desc_t cd;
		TRY("convolution_forward_desc_init",
		    dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
		                                       &m->ax, &m->aw, &m->b, &m->ay, s, pad, padr));
		TRY("primitive_desc_create (convolution forward)",
		    dnnl_primitive_desc_create(pd, &cd, attr, p->eng, NULL));
	}
out:
	return rc;
}

static int bwd_pd(sl_conv *p, int d, const mds *m, dnnl_primitive_attr_t attr,
                  const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd)
{
	const sl_conv_cfg *c = &p->c;
	int rc = SL_CONV_OK;
	dnnl_dims_t s, pad;
	for (int a = 0; a < c->dims; a++) {
		s[a] = c->stride;
		pad[a] = (c->k - 1) / 2;
	}
	if (c->transposed) {
		dnnl_deconvolution_desc_t dd;
		if (d == D_BWD_DATA)
			TRY("deconvolution_backward_data_desc_init",
			    dnnl_deconvolution_backward_data_desc_init(&dd, dnnl_deconvolution_direct, &m->ax,
			                                               &m->aw, &m->ay, s, pad, pad));
		else
			TRY("deconvolution_backward_weights_desc_init",
			    dnnl_deconvolution_backward_weights_desc_init(&dd, dnnl_deconvolution_direct, &m->ax,
			                                                  &m->aw, &m->b, &m->ay, s, pad, pad));
		TRY("primitive_desc_create (deconvolution backward)",
		    dnnl_primitive_desc_create(pd, &dd, attr, p->eng, hint));
	} else {
		dnnl_convolution_desc_t cd;
		if (d == D_BWD_DATA)
			TRY("convolution_backward_data_desc_init",
			    dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &m->ax, &m->aw,
			                                             &m->ay, s, pad, pad));
		else
			TRY("convolution_backward_weights_desc_init",
			    dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &m->ax,
			                                                &m->aw, &m->b, &m->ay, s, pad, pad));
		TRY("primitive_desc_create (convolution backward)",
		    dnnl_primitive_desc_create(pd, &cd, attr, p->eng, hint));
	}
out:
	return rc;
}

/* Sets port pt: its user and primitive descriptors, and its reorder. */
static int make_port(sl_conv *p, dir *d, int i, int arg, int out, const dnnl_memory_desc_t *umd,
                     const_dnnl_primitive_desc_t pd, dnnl_query_t q, dnnl_primitive_attr_t attr)
{
	int rc = SL_CONV_OK;
	port *pt = &d->p[i];
	dnnl_primitive_desc_t rpd = NULL;
	pt->arg = arg;
	pt->out = out;
	pt->umd = *umd;
	pt->pmd = *dnnl_primitive_desc_query_md(pd, q, 0);
	pt->pbytes = dnnl_memory_desc_get_size(&pt->pmd);
	pt->same = dnnl_memory_desc_equal(&pt->umd, &pt->pmd);
	if (!pt->same) {
		if (out)
			TRY("reorder_primitive_desc_create",
			    dnnl_reorder_primitive_desc_create(&rpd, &pt->pmd, p->eng, &pt->umd, p->eng, attr));
		else
			TRY("reorder_primitive_desc_create",
			    dnnl_reorder_primitive_desc_create(&rpd, &pt->umd, p->eng, &pt->pmd, p->eng, attr));
		size_t sb = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(rpd, dnnl_query_scratchpad_md, 0));
		if (sb > d->sbytes)
			d->sbytes = sb;
		TRY("primitive_create (reorder)", dnnl_primitive_create(&pt->reo, rpd));
	}
out:
	if (rpd)
		dnnl_primitive_desc_destroy(rpd);
	return rc;
}

static int build_dir(sl_conv *p, dir *d, int dn, const geom *g, int nt)
{
	const sl_conv_cfg *c = &p->c;
	int rc;
	mds m;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_primitive_desc_t fpd = NULL, pd = NULL;
	free_dir(d);
	if ((rc = make_mds(p, dn, g, &m)) != SL_CONV_OK)
		return rc;
	TRY("primitive_attr_create", dnnl_primitive_attr_create(&attr));
	TRY("primitive_attr_set_scratchpad_mode", dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	if ((rc = fwd_pd(p, g, &m, attr, &fpd)) != SL_CONV_OK)
		goto out;
	if (dn == D_FWD) {
		pd = fpd;
		fpd = NULL;
	} else if ((rc = bwd_pd(p, dn, &m, attr, fpd, &pd)) != SL_CONV_OK)
		goto out;
	const char *impl = "";
	dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
	snprintf(d->impl, sizeof d->impl, "%s", impl ? impl : "");
	d->smd = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	d->sbytes = dnnl_memory_desc_get_size(&d->smd);
	d->bmd = m.b;
	if (dn == D_FWD) {
		if ((rc = make_port(p, d, P_A, DNNL_ARG_SRC, 0, &m.x, pd, dnnl_query_src_md, attr)) ||
		    (rc = make_port(p, d, P_B, DNNL_ARG_DST, 1, &m.y, pd, dnnl_query_dst_md, attr)) ||
		    (rc = make_port(p, d, P_W, DNNL_ARG_WEIGHTS, 0, &m.w, pd, dnnl_query_weights_md, attr)))
			goto out;
	} else if (dn == D_BWD_DATA) {
		if ((rc = make_port(p, d, P_A, DNNL_ARG_DIFF_DST, 0, &m.y, pd, dnnl_query_diff_dst_md, attr)) ||
		    (rc = make_port(p, d, P_B, DNNL_ARG_DIFF_SRC, 1, &m.x, pd, dnnl_query_diff_src_md, attr)) ||
		    (rc = make_port(p, d, P_W, DNNL_ARG_WEIGHTS, 0, &m.w, pd, dnnl_query_weights_md, attr)))
			goto out;
	} else {
		if ((rc = make_port(p, d, P_A, DNNL_ARG_SRC, 0, &m.x, pd, dnnl_query_src_md, attr)) ||
		    (rc = make_port(p, d, P_B, DNNL_ARG_DIFF_DST, 0, &m.y, pd, dnnl_query_diff_dst_md, attr)) ||
		    (rc = make_port(p, d, P_W, DNNL_ARG_DIFF_WEIGHTS, 1, &m.w, pd, dnnl_query_diff_weights_md, attr)))
			goto out;
	}
	TRY("primitive_create", dnnl_primitive_create(&d->prim, pd));
	dnnl_memory_desc_init_by_tag(&d->smd, 1, (dnnl_dims_t){(dnnl_dim_t)d->sbytes}, dnnl_u8, dnnl_a);

	/* shared weights and bias (forward, backward data); the sum (backward
	 * weights); buffers in the workspace are set by each call */
	port *pw = &d->p[P_W];
	rc = SL_CONV_ENOMEM;
	if (dn != D_BWD_W || !pw->same)
		TRY("memory_create", dnnl_memory_create(&d->wu, &pw->umd, p->eng, DNNL_MEMORY_NONE));
	if (!pw->same)
		TRY("memory_create", dnnl_memory_create(&d->wp, &pw->pmd, p->eng, DNNL_MEMORY_NONE));
	if (dn == D_FWD) {
		if (!(d->zeros = calloc((size_t)c->cout, sizeof(float))))
			goto out;
		TRY("memory_create", dnnl_memory_create(&d->bias, &m.b, p->eng, DNNL_MEMORY_NONE));
	}

	/* one slot per thread */
	if (!(d->slots = calloc((size_t)nt, sizeof *d->slots)))
		goto out;
	d->nslots = nt;
	for (int t = 0; t < nt; t++) {
		slot *s = &d->slots[t];
		TRY("stream_create", dnnl_stream_create(&s->st, p->eng, dnnl_stream_default_flags));
		for (int i = 0; i < NP; i++) {
			port *pt = &d->p[i];
			if (i == P_W) {
				if (dn == D_BWD_W) /* points into the partials */
					TRY("memory_create", dnnl_memory_create(&s->pm[i], &pt->pmd, p->eng, DNNL_MEMORY_NONE));
				continue;
			}
			TRY("memory_create", dnnl_memory_create(&s->um[i], &pt->umd, p->eng, DNNL_MEMORY_NONE));
			if (!pt->same)
				TRY("memory_create", dnnl_memory_create(&s->pm[i], &pt->pmd, p->eng, DNNL_MEMORY_NONE));
		}
		if (dn == D_BWD_W)
			TRY("memory_create", dnnl_memory_create(&s->bias, &m.b, p->eng, DNNL_MEMORY_NONE));
		if (d->sbytes)
			TRY("memory_create", dnnl_memory_create(&s->scratch, &d->smd, p->eng, DNNL_MEMORY_NONE));
	}
	d->ready = 1;
	rc = SL_CONV_OK;
out:
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (fpd)
		dnnl_primitive_desc_destroy(fpd);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	if (rc != SL_CONV_OK) {
		if (rc == SL_CONV_ENOMEM && !p->err[0])
			snprintf(p->err, sizeof p->err, "out of memory");
		free_dir(d);
	}
	return rc;
}

/* Makes direction dn ready for input shape in and nt threads. */
/* Drops every primitive when the input shape or the thread count changed. */
static void key(sl_conv *p, const int64_t *in, int nt)
{
	int same = p->nt == nt;
	for (int a = 0; a < p->c.dims; a++)
		same = same && p->in[a] == in[a];
	if (!same) {
		for (int d = 0; d < ND; d++)
			free_dir(&p->d[d]);
		for (int v = 0; v < 3; v++)
			free_dir(&p->fv[v]);
		p->nslab = 0;
		for (int a = 0; a < p->c.dims; a++)
			p->in[a] = in[a];
		p->nt = nt;
	}
	p->err[0] = '\0';
}

/* Makes backward direction dn ready for input shape in and nt threads. */
static int prepare(sl_conv *p, int dn, const int64_t *in, int nt)
{
	key(p, in, nt);
	if (p->d[dn].ready)
		return SL_CONV_OK;
	geom g;
	whole(p, &g);
	return build_dir(p, &p->d[dn], dn, &g, nt);
}

/* Forward cuts each sample into slabs of output rows (first spatial axis)
 * when the batch is small, so that a few samples still feed every thread.
 * The cut depends on N and the shape only, never on the thread count: the
 * same slabs are computed by the same primitives on any number of threads. */
#define FWD_UNITS 4     /* slabs in all when N < FWD_UNITS */
#define MIN_SLAB_ROWS 4 /* output rows of a slab at least */

static int64_t fwd_slabs(const sl_conv *p, int64_t N, int64_t rows, int64_t *q)
{
	/* only when forward runs on blocked layouts (our reorders take the slab's
	 * strides, the kernel sees a dense block): oneDNN 2.6's plain-layout
	 * convolution falls back to its slow reference kernel on strided slabs
	 * (200x for 1x1), and its plain deconvolution (gemm) ignores the strides
	 * and writes out of the slab */
	int64_t ns = N >= FWD_UNITS || p->c.transposed || !use_blocked(p, D_FWD) ? 1 : (FWD_UNITS + N - 1) / N;
	if (ns > rows / MIN_SLAB_ROWS)
		ns = rows / MIN_SLAB_ROWS;
	if (ns < 1)
		ns = 1;
	int64_t qq = (rows + ns - 1) / ns;
	if (p->c.transposed && qq % 2) /* whole input rows: even output rows */
		qq++;
	*q = qq;
	return (rows + qq - 1) / qq;
}

static int variant(int64_t j, int64_t ns) { return j == 0 ? 0 : j == ns - 1 ? 2 : 1; }

/* The geometry of slab j of ns (q output rows each), and the first input and
 * output rows it covers. */
static void slab(const sl_conv *p, int64_t j, int64_t ns, int64_t q, geom *g, int64_t *i0, int64_t *o0)
{
	const sl_conv_cfg *c = &p->c;
	whole(p, g);
	*i0 = *o0 = 0;
	if (ns == 1)
		return;
	int64_t R = g->fout[0], a0 = j * q, a1 = a0 + q < R ? a0 + q : R;
	g->out[0] = a1 - a0;
	*o0 = a0;
	if (c->transposed) {
		*i0 = a0 / 2;
		g->in[0] = (a1 - a0) / 2;
		return;
	}
	int64_t pad = (c->k - 1) / 2, lo = a0 * c->stride - pad, hi = (a1 - 1) * c->stride - pad + c->k;
	int64_t b0 = lo > 0 ? lo : 0, b1 = hi < g->fin[0] ? hi : g->fin[0];
	g->pl[0] = b0 - lo;
	g->pr[0] = hi - b1;
	g->in[0] = b1 - b0;
	*i0 = b0;
}

/* ---- running ---- */

/* The OpenMP ICV while a call runs: one thread, so that nothing oneDNN does
 * outside our parallel region spawns threads of its own, and primitives are
 * created for one thread. */
typedef struct icv {
	int saved;
} icv;

static icv icv_enter(void)
{
	icv s = {1};
#ifdef _OPENMP
	s.saved = omp_get_max_threads();
	omp_set_num_threads(1);
#endif
	return s;
}

static void icv_leave(icv s)
{
#ifdef _OPENMP
	omp_set_num_threads(s.saved);
#else
	(void)s;
#endif
}

static int thread_num(void)
{
#ifdef _OPENMP
	return omp_get_thread_num();
#else
	return 0;
#endif
}

static dnnl_status_t reorder(dir *d, slot *s, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
	dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, s->scratch}};
	return dnnl_primitive_execute(r, s->st, d->sbytes ? 3 : 2, a);
}

static size_t prod(int n, const int64_t *v)
{
	size_t r = 1;
	for (int a = 0; a < n; a++)
		r *= (size_t)v[a];
	return r;
}

/* ---- the workspace ----
 *
 * One call needs, per thread of its team, the sample (slab) in the
 * primitive's layout for each reordered port and the primitive's scratchpad
 * ("slot bytes"), and, shared by the team, the weights in the primitive's
 * layout (backward weights: the sum in both layouts and the per-sample
 * partials). All of it lives only during the call, so every plan of a Lua
 * state draws it from one workspace, grown to the largest call and reused:
 * the peak is one layer's need, not the sum over the network's layers. */

#define WS_ALIGN 64

static size_t al(size_t b) { return (b + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN; }

void sl_conv_ws_init(sl_conv_ws *ws)
{
	ws->base = NULL;
	ws->bytes = 0;
	ws->min_flops = SL_CONV_MIN_FLOPS;
}

void sl_conv_ws_free(sl_conv_ws *ws)
{
	free(ws->base);
	ws->base = NULL;
	ws->bytes = 0;
}

/* Makes the workspace hold at least bytes (its contents are not kept).
 * Built with -DSL_CONV_POISON it fills the workspace with NaN bytes before
 * every call: the specs then prove no call depends on what another left. */
static int ws_reserve(sl_conv *p, sl_conv_ws *ws, size_t bytes)
{
	if (bytes <= ws->bytes) {
#ifdef SL_CONV_POISON
		memset(ws->base, 0xff, ws->bytes);
#endif
		return SL_CONV_OK;
	}
	sl_conv_ws_free(ws); /* first, so that the old and new never add up */
	if (!(ws->base = alloc64(bytes))) {
		snprintf(p->err, sizeof p->err, "out of memory");
		return SL_CONV_ENOMEM;
	}
	ws->bytes = bytes;
#ifdef SL_CONV_POISON
	memset(ws->base, 0xff, ws->bytes);
#endif
	return SL_CONV_OK;
}

/* The bytes one thread needs in direction d. */
static size_t slot_bytes(const dir *d)
{
	size_t b = d->sbytes ? al(d->sbytes) : 0;
	for (int i = 0; i < 2; i++)
		if (!d->p[i].same)
			b += al(d->p[i].pbytes);
	return b;
}

/* Points the slots 0..nt-1 of d at their parts of the workspace: thread t's
 * part starts at base + t * stride. Setting the handle zero-fills the
 * padding of blocked layouts, which another plan may have overwritten. */
static int bind_slots(sl_conv *p, dir *d, int nt, char *base, size_t stride)
{
	for (int t = 0; t < nt; t++) {
		slot *s = &d->slots[t];
		char *q = base + (size_t)t * stride;
		dnnl_status_t st = dnnl_success;
		for (int i = 0; i < 2 && st == dnnl_success; i++)
			if (!d->p[i].same) {
				st = dnnl_memory_set_data_handle_v2(s->pm[i], q, s->st);
				q += al(d->p[i].pbytes);
			}
		if (st == dnnl_success && d->sbytes)
			st = dnnl_memory_set_data_handle_v2(s->scratch, q, s->st);
		if (st != dnnl_success)
			return fail(p, "memory_set_data_handle", st);
	}
	return SL_CONV_OK;
}

/* Threads for a call of units independent units (samples or slabs): small
 * work stays on one thread, as a team's start and barriers cost more than
 * they save (and far more when another process holds a core). The units do
 * not depend on the thread count, so neither do the bits. */
static int call_threads(const sl_conv *p, const sl_conv_ws *ws, const sl_exec *e, int64_t N,
                        const int64_t *in, int64_t units)
{
	const sl_conv_cfg *c = &p->c;
	int64_t out[3];
	sl_conv_out_spatial(c, in, out);
	/* 2 flops per multiply-add; a transposed convolution (kernel = stride)
	 * touches each output once per input channel */
	double f = 2.0 * (double)N * c->cin * c->cout * (double)prod(c->dims, out);
	if (!c->transposed)
		for (int a = 0; a < c->dims; a++)
			f *= c->k;
	double t = ws->min_flops > 0 ? f / ws->min_flops : (double)e->threads;
	int nt = t < 1 ? 1 : t < e->threads ? (int)t : e->threads;
	return nt < units ? nt : (int)units;
}

/* One sample through direction d on slot s: ua, ub are the user's sample
 * pointers for ports A and B; wmem the weights' memory (forward, backward
 * data) or NULL (backward weights: pw, pb are the sample's partials). */
static dnnl_status_t run_sample(dir *d, slot *s, const float *ua, float *ub, dnnl_memory_t wmem,
                                dnnl_memory_t bmem, float *pw, float *pb)
{
	dnnl_status_t st;
	dnnl_exec_arg_t a[6];
	int n = 0;
	for (int i = 0; i < 2; i++) {
		port *pt = &d->p[i];
		void *u = i == P_A ? (void *)(uintptr_t)ua : (void *)ub;
		if ((st = dnnl_memory_set_data_handle_v2(s->um[i], u, s->st)) != dnnl_success)
			return st;
		if (!pt->same && !pt->out && (st = reorder(d, s, pt->reo, s->um[i], s->pm[i])) != dnnl_success)
			return st;
		a[n++] = (dnnl_exec_arg_t){pt->arg, pt->same ? s->um[i] : s->pm[i]};
	}
	if (wmem) {
		a[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, wmem};
		if (bmem)
			a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bmem};
	} else {
		if ((st = dnnl_memory_set_data_handle_v2(s->pm[P_W], pw, s->st)) != dnnl_success ||
		    (st = dnnl_memory_set_data_handle_v2(s->bias, pb, s->st)) != dnnl_success)
			return st;
		a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, s->pm[P_W]};
		a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, s->bias};
	}
	if (d->sbytes)
		a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch};
	if ((st = dnnl_primitive_execute(d->prim, s->st, n, a)) != dnnl_success)
		return st;
	port *pb_ = &d->p[P_B];
	if (pb_->out && !pb_->same)
		st = reorder(d, s, pb_->reo, s->pm[P_B], s->um[P_B]);
	return st;
}

/* Runs samples 0..N-1 of direction dn on nt threads. */
static int run_all(sl_conv *p, const sl_exec *e, int dn, int nt, int64_t N, const float *a, size_t astride,
                   float *b, size_t bstride, dnnl_memory_t wmem, dnnl_memory_t bmem)
{
	dir *d = &p->d[dn];
	size_t wstride = d->p[P_W].pbytes / sizeof(float), cout = (size_t)p->c.cout;
	for (int t = 0; t < d->nslots; t++)
		d->slots[t].status = dnnl_success;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (int64_t n = 0; n < N; n++) {
		slot *s = &d->slots[thread_num()];
		sl_note_team(e);
		if (s->status != dnnl_success)
			continue;
		size_t i = (size_t)n;
		s->status = (int)run_sample(d, s, a + i * astride, b + i * bstride, wmem, bmem,
		                            d->part ? d->part + i * wstride : NULL,
		                            d->partb ? d->partb + i * cout : NULL);
	}
	for (int t = 0; t < d->nslots; t++)
		if (d->slots[t].status != dnnl_success)
			return fail(p, "primitive_execute", (dnnl_status_t)d->slots[t].status);
	return SL_CONV_OK;
}

/* The shared weights of forward / backward data: the user's, or reordered
 * into d->wbuf (a part of the workspace). */
static int load_weights(sl_conv *p, dir *d, const float *w, dnnl_memory_t *wmem)
{
	dnnl_status_t st = dnnl_memory_set_data_handle_v2(d->wu, (void *)(uintptr_t)w, d->slots[0].st);
	if (st != dnnl_success)
		return fail(p, "memory_set_data_handle", st);
	*wmem = d->wu;
	if (!d->p[P_W].same) {
		if ((st = dnnl_memory_set_data_handle_v2(d->wp, d->wbuf, d->slots[0].st)) != dnnl_success)
			return fail(p, "memory_set_data_handle", st);
		if ((st = reorder(d, &d->slots[0], d->p[P_W].reo, d->wu, d->wp)) != dnnl_success)
			return fail(p, "reorder (weights)", st);
		*wmem = d->wp;
	}
	return SL_CONV_OK;
}

int sl_conv_forward(sl_conv *p, sl_conv_ws *ws, const sl_exec *e, int64_t N, const int64_t *in,
                    const float *x, const float *w, const float *b, float *y)
{
	const sl_conv_cfg *c = &p->c;
	int64_t out[3];
	sl_conv_out_spatial(c, in, out);
	icv ic = icv_enter();
	int rc = SL_CONV_OK;
	key(p, in, e->threads);
	int64_t q, ns = fwd_slabs(p, N, out[0], &q);
	if (ns != p->nslab || q != p->q) {
		for (int v = 0; v < 3; v++)
			free_dir(&p->fv[v]);
		p->nslab = ns;
		p->q = q;
	}
	/* the variants this call uses: first, last, middle slabs. Each has its
	 * own part of a thread's workspace (a slab is a fraction of a sample, so
	 * this costs about one sample): a variant's blocked buffer then keeps the
	 * zero padding its handle got, whatever another variant wrote. */
	int nv = ns >= 3 ? 3 : (int)ns, vs[3] = {0, 2, 1};
	int64_t js[3] = {0, ns - 1, 1};
	size_t rbytes = 0, shared = 0, voff[3];
	for (int k = 0; k < nv; k++) {
		dir *d = &p->fv[vs[k]];
		if (!d->ready) {
			geom g;
			int64_t i0, o0;
			slab(p, js[k], ns, q, &g, &i0, &o0);
			if ((rc = build_dir(p, d, D_FWD, &g, e->threads)) != SL_CONV_OK)
				goto done;
		}
		voff[k] = rbytes;
		rbytes += slot_bytes(d);
		if (!d->p[P_W].same)
			shared += al(d->p[P_W].pbytes);
	}
	int64_t units = N * ns;
	int nt = call_threads(p, ws, e, N, in, units);
	if ((rc = ws_reserve(p, ws, shared + (size_t)nt * rbytes)) != SL_CONV_OK)
		goto done;
	char *wsb = ws->base;
	dnnl_memory_t wmem[3] = {NULL, NULL, NULL};
	for (int k = 0; k < nv; k++) {
		int v = vs[k];
		dir *d = &p->fv[v];
		if (!d->p[P_W].same) {
			d->wbuf = wsb;
			wsb += al(d->p[P_W].pbytes);
		}
		if ((rc = bind_slots(p, d, nt, (char *)ws->base + shared + voff[k], rbytes)) != SL_CONV_OK ||
		    (rc = load_weights(p, d, w, &wmem[v])) != SL_CONV_OK)
			goto done;
		dnnl_status_t st = dnnl_memory_set_data_handle_v2(d->bias, (void *)(uintptr_t)(b ? b : d->zeros),
		                                                  d->slots[0].st);
		if (st != dnnl_success) {
			rc = fail(p, "memory_set_data_handle", st);
			goto done;
		}
	}
	size_t xs = (size_t)c->cin * prod(c->dims, in), ys = (size_t)c->cout * prod(c->dims, out);
	size_t xrow = prod(c->dims - 1, in + 1), yrow = prod(c->dims - 1, out + 1);
	for (int v = 0; v < 3; v++)
		for (int t = 0; t < p->fv[v].nslots; t++)
			p->fv[v].slots[t].status = dnnl_success;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
	for (int64_t u = 0; u < units; u++) {
		int64_t n = u / ns, j = u % ns, i0, o0;
		dir *d = &p->fv[variant(j, ns)];
		slot *s = &d->slots[thread_num()];
		sl_note_team(e);
		if (s->status != dnnl_success)
			continue;
		geom g;
		slab(p, j, ns, q, &g, &i0, &o0);
		s->status = (int)run_sample(d, s, x + (size_t)n * xs + (size_t)i0 * xrow,
		                            y + (size_t)n * ys + (size_t)o0 * yrow, wmem[variant(j, ns)], d->bias,
		                            NULL, NULL);
	}
	for (int v = 0; v < 3; v++)
		for (int t = 0; t < p->fv[v].nslots; t++)
			if (p->fv[v].slots[t].status != dnnl_success) {
				rc = fail(p, "primitive_execute", (dnnl_status_t)p->fv[v].slots[t].status);
				goto done;
			}
done:
	icv_leave(ic);
	return rc;
}

int sl_conv_backward_data(sl_conv *p, sl_conv_ws *ws, const sl_exec *e, int64_t N, const int64_t *in,
                          const float *gy, const float *w, float *gx)
{
	const sl_conv_cfg *c = &p->c;
	int64_t out[3];
	sl_conv_out_spatial(c, in, out);
	icv s = icv_enter();
	int rc = prepare(p, D_BWD_DATA, in, e->threads);
	if (rc != SL_CONV_OK)
		goto done;
	dir *d = &p->d[D_BWD_DATA];
	port *pw = &d->p[P_W];
	int nt = call_threads(p, ws, e, N, in, N);
	size_t shared = pw->same ? 0 : al(pw->pbytes), rbytes = slot_bytes(d);
	if ((rc = ws_reserve(p, ws, shared + (size_t)nt * rbytes)) != SL_CONV_OK)
		goto done;
	d->wbuf = pw->same ? NULL : ws->base;
	/* the slots first: the weights' reorder uses slot 0's scratchpad */
	if ((rc = bind_slots(p, d, nt, (char *)ws->base + shared, rbytes)) != SL_CONV_OK)
		goto done;
	dnnl_memory_t wmem;
	if ((rc = load_weights(p, d, w, &wmem)) != SL_CONV_OK)
		goto done;
	rc = run_all(p, e, D_BWD_DATA, nt, N, gy, (size_t)c->cout * prod(c->dims, out), gx,
	             (size_t)c->cin * prod(c->dims, in), wmem, NULL);
done:
	icv_leave(s);
	return rc;
}

/* Blocks of the sums of the partials: fixed, whatever the thread count. */
#define SUM_BLOCK 4096

int sl_conv_backward_weights(sl_conv *p, sl_conv_ws *ws, const sl_exec *e, int64_t N, const int64_t *in,
                             const float *x, const float *gy, float *gw, float *gb)
{
	const sl_conv_cfg *c = &p->c;
	int64_t out[3];
	sl_conv_out_spatial(c, in, out);
	icv s = icv_enter();
	int rc = prepare(p, D_BWD_W, in, e->threads);
	if (rc != SL_CONV_OK)
		goto done;
	dir *d = &p->d[D_BWD_W];
	port *pw = &d->p[P_W];
	size_t wn = pw->pbytes / sizeof(float), cout = (size_t)c->cout, m = sl_conv_wnumel(c);
	int nt = call_threads(p, ws, e, N, in, N);
	int tsum = call_threads(p, ws, e, N, in, e->threads);
	/* workspace: [sum, primitive layout][sum, user layout][partials][bias
	 * partials][thread parts] */
	size_t pbytes, sumb = pw->same ? 0 : al(pw->pbytes) + al(m * sizeof(float)), rbytes = slot_bytes(d);
	if (__builtin_mul_overflow((size_t)N, pw->pbytes, &pbytes)) {
		snprintf(p->err, sizeof p->err, "out of memory");
		rc = SL_CONV_ENOMEM;
		goto done;
	}
	size_t shared = sumb + al(pbytes) + al((size_t)N * cout * sizeof(float));
	if ((rc = ws_reserve(p, ws, shared + (size_t)nt * rbytes)) != SL_CONV_OK)
		goto done;
	char *wsb = ws->base;
	d->wbuf = d->wtmp = NULL;
	if (!pw->same) {
		d->wbuf = wsb;
		d->wtmp = (float *)(void *)(wsb + al(pw->pbytes));
		dnnl_status_t st;
		if ((st = dnnl_memory_set_data_handle_v2(d->wp, d->wbuf, d->slots[0].st)) != dnnl_success ||
		    (st = dnnl_memory_set_data_handle_v2(d->wu, d->wtmp, d->slots[0].st)) != dnnl_success) {
			rc = fail(p, "memory_set_data_handle", st);
			goto done;
		}
	}
	d->part = (float *)(void *)(wsb + sumb);
	d->partb = (float *)(void *)(wsb + sumb + al(pbytes));
	if ((rc = bind_slots(p, d, nt, wsb + shared, rbytes)) != SL_CONV_OK)
		goto done;
	/* x and gy are read only; the B port of backward weights is an input */
	rc = run_all(p, e, D_BWD_W, nt, N, x, (size_t)c->cin * prod(c->dims, in), (float *)(uintptr_t)gy,
	             (size_t)c->cout * prod(c->dims, out), NULL, NULL);
	if (rc != SL_CONV_OK)
		goto done;
	/* sum the partials in sample order, in double */
	float *sum = pw->same ? NULL : d->wbuf;
	size_t nblk = (wn + SUM_BLOCK - 1) / SUM_BLOCK;
	int ntb = tsum < (int)nblk ? tsum : (int)nblk;
	const float *part = d->part;
	size_t nn = (size_t)N;
#pragma omp parallel for num_threads(ntb) schedule(static) if (ntb > 1)
	for (size_t bk = 0; bk < nblk; bk++) {
		sl_note_team(e);
		size_t i0 = bk * SUM_BLOCK, i1 = i0 + SUM_BLOCK < wn ? i0 + SUM_BLOCK : wn;
		for (size_t i = i0; i < i1; i++) {
			double acc = 0.0;
			for (size_t n = 0; n < nn; n++)
				acc += (double)part[n * wn + i];
			if (sum)
				sum[i] = (float)acc;
			else
				gw[i] += (float)acc;
		}
	}
	if (sum) {
		dnnl_status_t st = reorder(d, &d->slots[0], pw->reo, d->wp, d->wu);
		if (st != dnnl_success) {
			rc = fail(p, "reorder (weight gradient)", st);
			goto done;
		}
		for (size_t i = 0; i < m; i++)
			gw[i] += d->wtmp[i];
	}
	if (gb)
		for (size_t o = 0; o < cout; o++) {
			double acc = 0.0;
			for (size_t n = 0; n < nn; n++)
				acc += (double)d->partb[n * cout + o];
			gb[o] += (float)acc;
		}
done:
	icv_leave(s);
	return rc;
}

/*
 * nn_simd.h — the network kernels of the SIMD backends (nnkern.h), included
 * once by simd.c per ISA. Each computes nn_scalar.c's expression, in its
 * order and without fused multiply-add, on SL_W lanes; the tail goes through
 * the same code on a partial vector (vf_loadk / vf_storek).
 */

/* k <= SL_W floats, the other lanes set to fill */
static inline vf vf_loadk_fill(const float *p, size_t k, float fill)
{
	if (k == SL_W)
		return vf_load(p);
	float buf[SL_W];
	for (size_t j = 0; j < SL_W; j++)
		buf[j] = j < k ? p[j] : fill;
	return vf_load(buf);
}

/* the elementwise loop: the body on elements i .. i + k - 1 */
#define NN_EACH(n, ...)                                                    \
	for (size_t i = 0; i < (n); i += SL_W) {                           \
		size_t k = (n) - i < SL_W ? (n) - i : SL_W;                \
		__VA_ARGS__                                                \
	}

static void SL_SFX(act)(size_t n, const float *x, float *y, float slope)
{
	vf s = vf_set1(slope), z = vf_zero();
	NN_EACH(n, {
		vf v = vf_loadk(x + i, k);
		vf_storek(y + i, vf_sel(vf_gt(v, z), v, vf_mul(v, s)), k);
	})
}

static void SL_SFX(act_bwd)(size_t n, const float *x, const float *gy, float *gx, float slope)
{
	vf s = vf_set1(slope), z = vf_zero();
	NN_EACH(n, {
		vf g = vf_loadk(gy + i, k);
		vf_storek(gx + i, vf_sel(vf_gt(vf_loadk(x + i, k), z), g, vf_mul(g, s)), k);
	})
}

/* PyTorch's rule, lane-wise: v replaces m if v > m or v is NaN */
static inline vf pool_takes(vf v, vf m) { return vf_or(vf_gt(v, m), vf_unord(v, v)); }

/* the even and odd elements of 2k consecutive floats at r (k <= SL_W) */
static inline void pool_load(const float *r, size_t k, vf *ev, vf *od)
{
	size_t m = 2 * k;
	vf a = vf_loadk(r, m < SL_W ? m : SL_W);
	vf b = m > SL_W ? vf_loadk(r + SL_W, m - SL_W) : vf_zero();
	vf_deint(a, b, ev, od);
}

static void SL_SFX(pool2)(size_t wo, size_t nr, const float *const *rows, float *y)
{
	assert(nr == 2 || nr == 4);
	for (size_t j = 0; j < wo; j += SL_W) {
		size_t k = wo - j < SL_W ? wo - j : SL_W;
		vf e, o, m;
		pool_load(rows[0] + 2 * j, k, &m, &o);
		m = vf_sel(pool_takes(o, m), o, m);
		for (size_t r = 1; r < nr; r++) {
			pool_load(rows[r] + 2 * j, k, &e, &o);
			m = vf_sel(pool_takes(e, m), e, m);
			m = vf_sel(pool_takes(o, m), o, m);
		}
		vf_storek(y + j, m, k);
	}
}

static void SL_SFX(pool2_bwd)(size_t wo, size_t w, size_t nr, const float *const *rows,
                              const float *gy, float *const *grows)
{
	assert((nr == 2 || nr == 4) && (w == 2 * wo || w == 2 * wo + 1));
	for (size_t j = 0; j < wo; j += SL_W) {
		size_t k = wo - j < SL_W ? wo - j : SL_W;
		/* the window position (2 r + c) of the first maximum, as a float */
		vf e, o, m, t, best = vf_zero();
		pool_load(rows[0] + 2 * j, k, &m, &o);
		t = pool_takes(o, m);
		m = vf_sel(t, o, m);
		best = vf_sel(t, vf_set1(1.0f), best);
		for (size_t r = 1; r < nr; r++) {
			pool_load(rows[r] + 2 * j, k, &e, &o);
			t = pool_takes(e, m);
			m = vf_sel(t, e, m);
			best = vf_sel(t, vf_set1((float)(2 * r)), best);
			t = pool_takes(o, m);
			m = vf_sel(t, o, m);
			best = vf_sel(t, vf_set1((float)(2 * r + 1)), best);
		}
		vf g = vf_loadk(gy + j, k);
		size_t m2 = 2 * k, k1 = m2 < SL_W ? m2 : SL_W;
		for (size_t r = 0; r < nr; r++) {
			vf ge = vf_and(vf_eq(best, vf_set1((float)(2 * r))), g);
			vf go = vf_and(vf_eq(best, vf_set1((float)(2 * r + 1))), g);
			vf a, b;
			vf_inter(ge, go, &a, &b);
			vf_storek(grows[r] + 2 * j, a, k1);
			if (m2 > SL_W)
				vf_storek(grows[r] + 2 * j + SL_W, b, m2 - SL_W);
		}
	}
	if (w > 2 * wo)
		for (size_t r = 0; r < nr; r++)
			grows[r][w - 1] = 0.0f;
}

/* the sum of a double vector's lanes, in lane order */
static inline double vd_hsum(vd v)
{
	double l[VD_LANES], s = 0.0;
	vd_store(l, v);
	for (int j = 0; j < VD_LANES; j++)
		s += l[j];
	return s;
}

static void SL_SFX(moments)(size_t n, const float *x, float shift, double *s1, double *s2)
{
	assert(n <= SL_BLOCK);
	vd sh = vd_set1((double)shift);
	vd a0 = vd_zero(), a1 = vd_zero(), b0 = vd_zero(), b1 = vd_zero();
	/* the tail's missing lanes hold the shift: they add 0 to both sums */
	NN_EACH(n, {
		vf v = vf_loadk_fill(x + i, k, shift);
		vd lo = vd_sub(vd_cvtlo(v), sh), hi = vd_sub(vd_cvthi(v), sh);
		a0 = vd_add(a0, lo);
		a1 = vd_add(a1, hi);
		b0 = vd_add(b0, vd_mul(lo, lo));
		b1 = vd_add(b1, vd_mul(hi, hi));
	})
	*s1 = vd_hsum(vd_add(a0, a1));
	*s2 = vd_hsum(vd_add(b0, b1));
}

static void SL_SFX(affine)(size_t n, const float *x, float a, float b, float *y)
{
	vf va = vf_set1(a), vb = vf_set1(b);
	NN_EACH(n, { vf_storek(y + i, vf_add(vf_mul(vf_loadk(x + i, k), va), vb), k); })
}

static void SL_SFX(norm_bstats)(size_t n, const float *x, const float *gy, float mean, double *sg,
                                double *sgx)
{
	assert(n <= SL_BLOCK);
	vd mu = vd_set1((double)mean);
	vd a0 = vd_zero(), a1 = vd_zero(), b0 = vd_zero(), b1 = vd_zero();
	/* the tail's missing lanes have gy = 0 (and x = 0): they add 0 */
	NN_EACH(n, {
		vf g = vf_loadk(gy + i, k), v = vf_loadk(x + i, k);
		vd glo = vd_cvtlo(g), ghi = vd_cvthi(g);
		a0 = vd_add(a0, glo);
		a1 = vd_add(a1, ghi);
		b0 = vd_add(b0, vd_mul(glo, vd_sub(vd_cvtlo(v), mu)));
		b1 = vd_add(b1, vd_mul(ghi, vd_sub(vd_cvthi(v), mu)));
	})
	*sg = vd_hsum(vd_add(a0, a1));
	*sgx = vd_hsum(vd_add(b0, b1));
}

static void SL_SFX(norm_bwd)(size_t n, const float *x, const float *gy, float *gx, float mean,
                             float gm, float k_, float s)
{
	vf vmu = vf_set1(mean), vgm = vf_set1(gm), vk = vf_set1(k_), vs = vf_set1(s);
	NN_EACH(n, {
		vf d = vf_mul(vf_sub(vf_loadk(x + i, k), vmu), vk);
		vf_storek(gx + i, vf_mul(vf_sub(vf_sub(vf_loadk(gy + i, k), vgm), d), vs), k);
	})
}

static void SL_SFX(lerp)(size_t n, const float *a, float wa, const float *b, float wb, float *y)
{
	vf va = vf_set1(wa), vb = vf_set1(wb);
	NN_EACH(n, {
		vf r = vf_add(vf_mul(vf_loadk(a + i, k), va), vf_mul(vf_loadk(b + i, k), vb));
		vf_storek(y + i, r, k);
	})
}

static void SL_SFX(axpy)(size_t n, float w, const float *x, float *y)
{
	vf vw = vf_set1(w);
	NN_EACH(n, { vf_storek(y + i, vf_add(vf_loadk(y + i, k), vf_mul(vw, vf_loadk(x + i, k))), k); })
}

/* the vertical blend of the horizontal values h of nr rows (interp.h) */
static inline vf up2_blend(size_t nr, const vf *h, vf wy0, vf wy1, vf wz0, vf wz1)
{
	vf v = vf_add(vf_mul(h[0], wy0), vf_mul(h[1], wy1));
	if (nr == 4)
		v = vf_add(vf_mul(v, wz0), vf_mul(vf_add(vf_mul(h[2], wy0), vf_mul(h[3], wy1)), wz1));
	return v;
}

/* stores 2k <= 2 SL_W floats a:b at p */
static inline void store2k(float *p, vf a, vf b, size_t k)
{
	size_t m = 2 * k;
	vf_storek(p, a, m < SL_W ? m : SL_W);
	if (m > SL_W)
		vf_storek(p + SL_W, b, m - SL_W);
}

/* outputs 2k - 1 (r[k-1] 0.75 + r[k] 0.25) and 2k (r[k-1] 0.25 + r[k] 0.75)
 * for k = j .. j + n - 1; inlined with constant nr and (main loop) n */
static inline __attribute__((always_inline)) void
up2_step(size_t nr, const float *const *rows, size_t j, size_t n, const vf *c, float *y)
{
	vf ho[4], he[4];
	for (size_t r = 0; r < nr; r++) {
		vf a = vf_loadk(rows[r] + j - 1, n), b = vf_loadk(rows[r] + j, n);
		ho[r] = vf_add(vf_mul(a, c[1]), vf_mul(b, c[0]));
		he[r] = vf_add(vf_mul(a, c[0]), vf_mul(b, c[1]));
	}
	vf lo, hi;
	vf_inter(up2_blend(nr, ho, c[2], c[3], c[4], c[5]), up2_blend(nr, he, c[2], c[3], c[4], c[5]),
	         &lo, &hi);
	store2k(y + 2 * j - 1, lo, hi, n);
}

static void SL_SFX(up2)(size_t w, size_t nr, const float *const *rows, const float *wt, float *y)
{
	assert(nr == 2 || nr == 4);
	/* 0.25, 0.75, wy0, wy1, wz0, wz1 */
	vf c[6] = {vf_set1(0.25f), vf_set1(0.75f), vf_set1(wt[0]),
	           vf_set1(wt[1]), vf_set1(wt[2]),  vf_set1(wt[3])};
	y[0] = sl_up2_at(w, nr, rows, wt, 0);
	size_t j = 1;
	if (nr == 2)
		for (; j + SL_W <= w; j += SL_W)
			up2_step(2, rows, j, SL_W, c, y);
	else
		for (; j + SL_W <= w; j += SL_W)
			up2_step(4, rows, j, SL_W, c, y);
	/* the tail: the last whole vector again (it overlaps outputs already
	 * written, with the same values) when there is one, else partial */
	if (j < w && w - 1 >= SL_W)
		up2_step(nr, rows, w - SL_W, SL_W, c, y);
	else if (j < w)
		up2_step(nr, rows, j, w - j, c, y);
	y[2 * w - 1] = sl_up2_at(w, nr, rows, wt, 2 * w - 1);
}

/* gx[i] for i = j .. j + n - 1, 2 <= i <= w - 2 (up2_adj) */
static inline __attribute__((always_inline)) void
up2_adj_step(size_t nz, const float *wz, size_t ny, const float *wy, const float *const *rows,
             size_t j, size_t n, float *gx)
{
	vf q1 = vf_set1(0.25f), q3 = vf_set1(0.75f);
	vf acc = vf_zero();
	for (size_t z = 0; z < (nz ? nz : 1); z++) {
		vf ty = vf_zero();
		for (size_t yy = 0; yy < ny; yy++) {
			const float *g = rows[z * ny + yy] + 2 * j;
			vf gm1, g0, g1, g2; /* g[2i-1], g[2i], g[2i+1], g[2i+2] */
			pool_load(g - 1, n, &gm1, &g0);
			pool_load(g + 1, n, &g1, &g2);
			vf t = vf_add(vf_zero(), vf_mul(q1, gm1));
			t = vf_add(t, vf_mul(q3, g0));
			t = vf_add(t, vf_mul(q3, g1));
			t = vf_add(t, vf_mul(q1, g2));
			ty = vf_add(ty, vf_mul(vf_set1(wy[yy]), t));
		}
		acc = nz ? vf_add(acc, vf_mul(vf_set1(wz[z]), ty)) : ty;
	}
	vf_storek(gx + j, acc, n);
}

static void SL_SFX(up2_adj)(size_t w, size_t nz, const float *wz, size_t ny, const float *wy,
                            const float *const *rows, float *gx)
{
	/* columns 0, 1 and w - 1 by the edge rules; inside (2 <= i <= w - 2)
	 * input i gets g[2i-1] 0.25, g[2i] 0.75, g[2i+1] 0.75, g[2i+2] 0.25 */
	for (size_t i = 0; i < w && i < 2; i++)
		gx[i] = sl_up2_adj_at(w, nz, wz, ny, wy, rows, i);
	if (w > 2)
		gx[w - 1] = sl_up2_adj_at(w, nz, wz, ny, wy, rows, w - 1);
	if (w < 4)
		return;
	size_t j = 2, end = w - 1;
	for (; j + SL_W <= end; j += SL_W)
		up2_adj_step(nz, wz, ny, wy, rows, j, SL_W, gx);
	/* the tail: the last whole vector again (same values) or partial */
	if (j < end && end - 2 >= SL_W)
		up2_adj_step(nz, wz, ny, wy, rows, end - SL_W, SL_W, gx);
	else if (j < end)
		up2_adj_step(nz, wz, ny, wy, rows, j, end - j, gx);
}

static void SL_SFX(near2)(size_t w, const float *x, float *y)
{
	for (size_t j = 0; j < w; j += SL_W) {
		size_t n = w - j < SL_W ? w - j : SL_W;
		vf v = vf_loadk(x + j, n), lo, hi;
		vf_inter(v, v, &lo, &hi);
		store2k(y + 2 * j, lo, hi, n);
	}
}

static void SL_SFX(near2_adj)(size_t w, const float *g, float *acc)
{
	for (size_t j = 0; j < w; j += SL_W) {
		size_t n = w - j < SL_W ? w - j : SL_W;
		vf e, o;
		pool_load(g + 2 * j, n, &e, &o);
		vf_storek(acc + j, vf_add(vf_loadk(acc + j, n), vf_add(e, o)), n);
	}
}

static void SL_SFX(sgd)(size_t n, float *p, const float *g, float *buf, const sl_sgd_par *o)
{
	vf lr = vf_set1(o->neg_lr), wd = vf_set1(o->wd), mom = vf_set1(o->momentum);
	vf damp = vf_set1(o->one_m_damp);
	int use_wd = o->wd != 0.0f, use_mom = o->momentum != 0.0f;
	NN_EACH(n, {
		vf pv = vf_loadk(p + i, k), d = vf_loadk(g + i, k);
		if (use_wd)
			d = vf_add(d, vf_mul(wd, pv));
		if (use_mom) {
			vf b = o->first ? d
			                : vf_add(vf_mul(vf_loadk(buf + i, k), mom), vf_mul(damp, d));
			vf_storek(buf + i, b, k);
			d = o->nesterov ? vf_add(d, vf_mul(mom, b)) : b;
		}
		vf_storek(p + i, vf_add(pv, vf_mul(lr, d)), k);
	})
}

static void SL_SFX(adam)(size_t n, float *p, const float *g, float *m, float *v,
                         const sl_adam_par *o)
{
	vf decay = vf_set1(o->decay), wd = vf_set1(o->wd);
	vf b1 = vf_set1(o->beta1), c1 = vf_set1(o->one_m_beta1);
	vf b2 = vf_set1(o->beta2), c2 = vf_set1(o->one_m_beta2);
	vf bc2 = vf_set1(o->bc2_sqrt), eps = vf_set1(o->eps), step = vf_set1(o->neg_step);
	int use_decay = o->decay != 1.0f, use_wd = o->wd != 0.0f;
	NN_EACH(n, {
		vf pv = vf_loadk(p + i, k), gv = vf_loadk(g + i, k);
		if (use_decay)
			pv = vf_mul(pv, decay);
		if (use_wd)
			gv = vf_add(gv, vf_mul(wd, pv));
		vf mv = vf_add(vf_mul(vf_loadk(m + i, k), b1), vf_mul(c1, gv));
		vf vv = vf_add(vf_mul(vf_loadk(v + i, k), b2), vf_mul(vf_mul(c2, gv), gv));
		vf denom = vf_add(vf_div(vf_sqrt(vv), bc2), eps);
		vf_storek(m + i, mv, k);
		vf_storek(v + i, vv, k);
		vf_storek(p + i, vf_add(pv, vf_div(vf_mul(step, mv), denom)), k);
	})
}

static const sl_nnkern SL_SFX(sl_nnkern) = {
	.act = SL_SFX(act),
	.act_bwd = SL_SFX(act_bwd),
	.pool2 = SL_SFX(pool2),
	.pool2_bwd = SL_SFX(pool2_bwd),
	.moments = SL_SFX(moments),
	.affine = SL_SFX(affine),
	.norm_bstats = SL_SFX(norm_bstats),
	.norm_bwd = SL_SFX(norm_bwd),
	.lerp = SL_SFX(lerp),
	.axpy = SL_SFX(axpy),
	.up2 = SL_SFX(up2),
	.up2_adj = SL_SFX(up2_adj),
	.near2 = SL_SFX(near2),
	.near2_adj = SL_SFX(near2_adj),
	.sgd = SL_SFX(sgd),
	.adam = SL_SFX(adam),
};

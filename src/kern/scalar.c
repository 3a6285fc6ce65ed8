/*
 * scalar.c — the reference backend: plain C, libm, double accumulators.
 *
 * Every SIMD kernel is checked against these on the same data. The
 * elementary functions are glibc's float functions (correctly rounded or
 * within 1 ulp), composed with the same stable forms as vmath.h.
 */
#include <assert.h>
#include <math.h>

#include "kern.h"

static void vexp__scalar(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = expf(x[i]);
}

static void vlog__scalar(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = logf(x[i]);
}

static void vlog1p__scalar(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = log1pf(x[i]);
}

static inline float sigmoidf(float x)
{
	float z = expf(-fabsf(x));
	return (x < 0.0f ? z : 1.0f) / (1.0f + z);
}

static void vsigmoid__scalar(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = sigmoidf(x[i]);
}

static inline float softplusf(float x)
{
	/* a NaN x gives NaN through expf */
	return (x > 0.0f ? x : 0.0f) + log1pf(expf(-fabsf(x)));
}

static void vsoftplus__scalar(size_t n, const float *x, float *y)
{
	for (size_t i = 0; i < n; i++)
		y[i] = softplusf(x[i]);
}

static void sigpq__scalar(size_t n, const float *x, float *p, float *q, float *spn)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = sigmoidf(x[i]);
		q[i] = sigmoidf(-x[i]);
		if (spn)
			spn[i] = softplusf(-x[i]);
	}
}

static void vpow__scalar(size_t n, const float *x, float g, float *y)
{
	assert(g >= 0.0f);
	for (size_t i = 0; i < n; i++)
		y[i] = powf(x[i], g);
}

static double sum__scalar(size_t n, const float *x)
{
	assert(n <= SL_BLOCK);
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)x[i];
	return s;
}

static void binop__scalar(int op, size_t n, const float *a, const float *b, float v, int swap,
                          float *out)
{
	for (size_t i = 0; i < n; i++) {
		float x = a[i], y = b ? b[i] : v;
		if (swap) {
			float tmp = x;
			x = y;
			y = tmp;
		}
		out[i] = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
	}
}

static double dot__scalar(size_t n, const float *a, const float *b)
{
	assert(n <= SL_BLOCK);
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)(a[i] * b[i]);
	return s;
}

static void minmax__scalar(size_t n, const float *x, float *mn, float *mx)
{
	assert(n >= 1);
	float a = x[0], b = x[0];
	int nan = 0;
	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		nan |= isnan(v);
		a = v < a ? v : a;
		b = v > b ? v : b;
	}
	if (nan)
		a = b = nanf("");
	*mn = a;
	*mx = b;
}

static void softmax__scalar(size_t C, size_t M, size_t s0, size_t s1, const float *x, float *y)
{
	assert(C >= 1 && s0 <= s1 && s1 <= M);
	for (size_t s = s0; s < s1; s++) {
		float mx = x[s];
		for (size_t c = 1; c < C; c++)
			mx = x[c * M + s] > mx ? x[c * M + s] : mx;
		float sum = 0.0f;
		for (size_t c = 0; c < C; c++) {
			float e = expf(x[c * M + s] - mx);
			y[c * M + s] = e;
			sum += e;
		}
		for (size_t c = 0; c < C; c++)
			y[c * M + s] /= sum;
	}
}

const sl_kern sl_kern_scalar = {
	.name = "scalar",
	.exp = vexp__scalar,
	.log = vlog__scalar,
	.log1p = vlog1p__scalar,
	.sigmoid = vsigmoid__scalar,
	.softplus = vsoftplus__scalar,
	.pow = vpow__scalar,
	.sum = sum__scalar,
	.dot = dot__scalar,
	.binop = binop__scalar,
	.minmax = minmax__scalar,
	.softmax = softmax__scalar,
	.sigpq = sigpq__scalar,
	.loss_stats = sl_loss_stats__scalar,
	.loss_fused = sl_loss_fused__scalar,
	.loss_check = sl_loss_check__scalar,
	.nn = &sl_nnkern_scalar,
};

/*
 * part.h — what the functional losses (loss.c) and the criteria
 * (criterion.c) share: a loss compiled with its options, and the
 * evaluation of one or more compiled parts on a call's data, in three steps
 * (prepare: every check and the run's components; run: buffers and the
 * passes; push: the results).
 */
#ifndef SL_BIND_PART_H
#define SL_BIND_PART_H

#include "../loss/loss.h"
#include "../loss/registry.h"
#include "bind.h"

/* The most parts of a combination: one region and one pixel component each
 * (a preset has two), and one slot kept free. */
#define SL_MAXPARTS (SL_MAXREG - 1)

enum { SL_LIST_WEIGHT, SL_LIST_ALPHA, SL_NLIST };

/* A loss with its options, compiled: every value checked, every default
 * resolved, lists copied. */
typedef struct sl_part {
	int id;                 /* SL_L_* */
	unsigned given;         /* the options the table had: bits of SL_O_* */
	int act, red, incl_bg, batch, grad;
	double v[SL_O_COUNT];   /* numbers, booleans (0/1) and enum indices: as given,
	                           else the loss's default */
	int alpha_off;          /* alpha is false (given, or the default) */
	int pos_auto;           /* pos_weight = "auto" */
	sl_tensor *mask, *out;
	/* lists (weight, alpha): values, length, and the first entry out of
	 * range (1-based, 0 if none), reported once the length is checked */
	const double *list[SL_NLIST];
	size_t nlist[SL_NLIST], bad[SL_NLIST];
	double badv[SL_NLIST];
	/* spacing: one number > 0 per spatial axis (checked against the data's
	 * dimensions later), 1 per axis when not given */
	double spacing[3];
	int nspacing;           /* 0: not given */
} sl_part;

/* The id of the loss whose name is the string at idx, or -1. */
int sl_loss_find(lua_State *L, int idx);
/* Compiles the options table at oi (nil: none) for loss id into *p; the
 * lists are copied into memory pushed on the stack (a userdata, alive as
 * long as the caller's frame). */
void sl_part_compile(lua_State *L, const char *fn, int id, int oi, sl_part *p);
/* A list entry out of range (checked against the data's C later, after the
 * list's length) as an error now. */
void sl_part_check_entries(lua_State *L, const char *fn, const sl_part *p);
/* The combinations of options that are errors; C = 0 (no data yet, a
 * criterion being built) leaves out what depends on the data. */
void sl_part_check(lua_State *L, const char *fn, const sl_part *p, size_t C, int nparts);

/* Per-class float arrays of one part, on the C stack up to SL_LOCALC classes. */
#define SL_LOCALC 64

/* What a component of a run is: comp_kind[k] & 3. */
enum { SL_COMP_PIXEL, SL_COMP_REGION, SL_COMP_GENERIC };

/* One evaluation of compiled parts. The caller sets the inputs, then calls
 * sl_eval_prepare, sl_eval_run and sl_eval_push. */
typedef struct sl_eval {
	/* inputs */
	const char *fn;
	int nparts;
	const sl_part *const *parts;
	const double *weights;
	sl_tensor *x, *t;
	sl_tensor *mask;           /* the call's mask, or NULL: the parts' */
	sl_tensor *out;            /* receives the gradient, or NULL */
	int out_idx;               /* stack index of out */
	int want_grad;
	int scratch_out;           /* out is the caller's own buffer (criteria): it may
	                              be written before every check is done, and is
	                              replaced by a fresh tensor if it shares storage
	                              with an input */
	int stats_only;            /* sl_eval_run computes the batch-summed (C, SL_NSTAT_PUBLIC)
	                              statistics, nothing else */
	/* set by sl_eval_prepare */
	size_t N, C, M;
	int act, red, labels;
	sl_lossrun run;
	/* the components of each part: comp_part[k] its part, comp_kind[k] =
	 * index << 2 | SL_COMP_* */
	int comp_part[2 * SL_MAXREG], comp_kind[2 * SL_MAXREG], ncomp;
	sl_splitpix split[SL_MAXGEN]; /* the pixel parts of segloss.core.debug_split */
	float cwbuf[SL_MAXPARTS][2][SL_LOCALC];
	/* set by sl_eval_run: stack indices of the results */
	int vals_idx, grad_idx, stats_idx;
	sl_tensor *vals, *stats;
} sl_eval;

/* Every check of the parts against the data, and the run's components. */
void sl_eval_prepare(lua_State *L, sl_eval *ev);
/* The doubles of work memory sl_eval_run needs (statistics, region values). */
size_t sl_eval_worksize(const sl_eval *ev);
/* The output tensors, then the passes, with `work` of sl_eval_worksize
 * doubles; raises the run's error. */
void sl_eval_run(lua_State *L, sl_eval *ev, double *work);
/* Pushes the results: the loss (a number, or a tensor for reduction "none")
 * and the gradient (or nil); or, with stats_only, the statistics. Returns
 * their number. */
int sl_eval_push(lua_State *L, sl_eval *ev);

#endif

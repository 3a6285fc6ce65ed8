/*
 * opt.h — an option as data: its name, the values it takes, its range and
 * its default. Lua-free: the loss registry (src/loss/registry.c) and the
 * metrics describe their options with it; the binding's option walker
 * (src/bind/opts.c) checks a Lua table against such descriptors, and
 * segloss.losses() exports them.
 */
#ifndef SL_OPT_H
#define SL_OPT_H

/* What an option takes. */
enum {
	SL_OT_BOOL,         /* true or false */
	SL_OT_ENUM,         /* one of `choices` */
	SL_OT_NUMBER,       /* a number in lo..hi */
	SL_OT_INT,          /* an integer in lo..hi (an integral float is one) */
	SL_OT_TENSOR,       /* a segloss.Tensor */
	SL_OT_CHANNELS,     /* a table or tensor of one number in lo..hi per channel
	                       (its length is checked against the data) */
	SL_OT_NUM_AUTO,     /* a number in lo..hi, or the string "auto" */
	SL_OT_NUM_FALSE_CHANNELS, /* a number in lo..hi, false, or a table of one
	                             number in lo..hi per channel */
	SL_OT_NUMBERS,      /* a table of numbers, checked by its user (spacing) */
	SL_OT_COUNT
};

/* How a default is given. */
enum {
	SL_DEF_NONE,   /* no value: the option is absent (mask, out, weight...) */
	SL_DEF_VALUE,  /* `v`: a number, a boolean (0/1), or an index into choices */
	SL_DEF_FALSE,  /* false (focal's alpha with softmax) */
	SL_DEF_FROM,   /* the value of the option with index `v` (smooth_nr: smooth) */
	SL_DEF_TEXT,   /* computed from the data: `text` says how */
};

typedef struct sl_default {
	unsigned char kind; /* SL_DEF_* */
	double v;
	const char *text;
} sl_default;

#define SL_DEFV(x) {SL_DEF_VALUE, (x), 0}
#define SL_DEFFALSE {SL_DEF_FALSE, 0.0, 0}
#define SL_DEFFROM(o) {SL_DEF_FROM, (double)(o), 0}
#define SL_DEFTEXT(s) {SL_DEF_TEXT, 0.0, (s)}

typedef struct sl_optdesc {
	const char *name;
	int type;                   /* SL_OT_* */
	const char *const *choices; /* SL_OT_ENUM: NULL-terminated */
	/* the range of numbers: hi = INFINITY is no upper end (then numbers
	 * must be finite), hi = FLT_MAX is float32's range */
	double lo, hi;
	unsigned char lo_open, hi_open;
	const char *expect;   /* what the value must be, in messages ("a number in
	                         (0, 1) no smaller than ..."), when the text made
	                         from the type and range will not do */
	sl_default def;
	const char *doc;      /* one line for the reference */
} sl_optdesc;

#endif

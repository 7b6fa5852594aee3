/* The knob table: one row per field of struct clopt_knobs. Everything that lists knobs (the
 * text parser and printer, the tuning database's schema, the tuner's space) is generated
 * from it; so can the solver's range checks and -D text (min, max, pow2, define). */
#ifndef CLOPT_TUNE_KNOBS_H
#define CLOPT_TUNE_KNOBS_H

#include "clopt.h"

#include <stddef.h>

/* A word the text may use for a value (layout=contig), or a number with its own meaning
 * (pf=off). */
struct clopt_knob_word {
    const char *text;
    size_t value;
};

/* How the kernel's -D value comes from the field. */
enum clopt_knob_define {
    CLOPT_DEFINE_VALUE,      /* the value itself */
    CLOPT_DEFINE_IS_TWO,     /* 1 when the value is 2 (partials=group, acc=kahan) */
    CLOPT_DEFINE_IS_512,     /* 1 when the value is 512 (simd) */
    CLOPT_DEFINE_ONE_IS_OFF, /* 0 when the value is 1 ("off"), else the value (pf) */
};

#define CLOPT_KNOB_WORDS 4
#define CLOPT_KNOB_SPACE 4

struct clopt_knob_type {
    const char *name;   /* text name: clopt_knobs_parse, the database, the space ("fblock") */
    const char *field;  /* the field of struct clopt_knobs ("loss_block") */
    size_t offset;      /* offsetof the field */
    int is_int;         /* the field is an int (else a size_t) */
    const char *define; /* the kernel's define ("CLOPT_FBLOCK") */
    enum clopt_knob_define define_rule;
    /* Valid values once the device's defaults are filled in (0 is always "the default",
     * except for gpcu, whose 0 is a setting). max 2^20 for wg and rwg: the device's limit
     * applies too. pow2: powers of two only (above 1 for pf, whose 1 is "off"). */
    size_t min, max;
    int pow2;
    /* Text: words for values (the first `shown` are named in messages); enumerated: only
     * the words (no other number); else a whole number from parse_min to parse_max (the
     * parser leaves the finer ranges to the solver), below_min the message under it. */
    struct clopt_knob_word words[CLOPT_KNOB_WORDS];
    size_t shown;
    int enumerated;
    size_t parse_min, parse_max;
    const char *below_min;
    /* Printing: the text of 0 ("def", or what 0 means), and whether the knob is printed
     * after the others (fuse: the text format predates the schema's order). */
    const char *zero_text;
    int print_last;
    /* Database: absent from entries written before the knob existed (db_absent is then its
     * value); 0 accepted as "the default"; stored_zero: what a 0 field is stored as. */
    int db_optional;
    size_t db_absent;
    int db_zero_ok;
    size_t stored_zero;
    /* The tuner's pruned candidates for the device type (0-terminated; none: the default). */
    size_t cpu_space[CLOPT_KNOB_SPACE], gpu_space[CLOPT_KNOB_SPACE];
};

/* In the database's (and the space's) order; clopt_knob_print_order gives the text's. */
extern const struct clopt_knob_type clopt_knob_table[];
extern const size_t clopt_knob_count;

/* Row index of the i-th knob in printing order. */
size_t clopt_knob_print_order(size_t i);

size_t clopt_knob_get(const struct clopt_knob_type *t, const struct clopt_knobs *k);
void clopt_knob_set(const struct clopt_knob_type *t, struct clopt_knobs *k, size_t value);

/* The row named name (len characters), or NULL. */
const struct clopt_knob_type *clopt_knob_find(const char *name, size_t len);

/* Parses one value for the knob t into k. label starts messages about a bad number
 * ("wg", or "tune_options.space wg"), item the messages about the rest ("wg=0"). */
int clopt_knob_parse_value(const struct clopt_knob_type *t, const char *value, const char *label,
                           struct clopt_knobs *k, char *err, size_t errlen);

/* dst gets every field src sets (0 means "not set" for every knob but gpcu, whose 0 is its
 * default anyway). */
void clopt_knobs_merge(struct clopt_knobs *dst, const struct clopt_knobs *src);

/* Every knob of k (defaults filled in) against its row's range or words: CLOPT_OK, or
 * CLOPT_ERR_INVALID_ARG naming the first field outside (knobs.FIELD) in err. Limits that
 * depend on the device or on other knobs are the solver's to check. */
int clopt_knobs_check(const struct clopt_knobs *k, char *err, size_t errlen);

/* " -DCLOPT_WG=16 -DCLOPT_EPW=4096 ...": every knob as the kernels see it, in table order.
 * CLOPT_ERR_OUT_OF_MEMORY when text is too small. */
int clopt_knobs_defines(const struct clopt_knobs *k, char *text, size_t size);

/* "wg, epw, ..." in printing order (print_order) or the table's; into text. */
void clopt_knob_list(char *text, size_t size, int print_order);

#endif /* CLOPT_TUNE_KNOBS_H */

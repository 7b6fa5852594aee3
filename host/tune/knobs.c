/* The knob table (see knobs.h) and what is made from it: knobs as text, parsed and printed. */
#include "knobs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KNOB(f) .field = #f, .offset = offsetof(struct clopt_knobs, f)
#define MAX_2_20 ((size_t)1 << 20)

/* The order is the database's and the space's: gpcu, fuse, pf and simd came later, in that
 * order. The text prints fuse last (print_last), as it always has. */
const struct clopt_knob_type clopt_knob_table[] = {
    {.name = "wg",
     KNOB(work_group),
     .define = "CLOPT_WG",
     .min = 1,
     .max = MAX_2_20,
     .pow2 = 1,
     .parse_min = 1,
     .parse_max = MAX_2_20,
     .below_min = "must be at least 1",
     .zero_text = "def",
     .cpu_space = {4, 16, 64},
     .gpu_space = {64, 128, 256, 512}},
    {.name = "epw",
     KNOB(elems_per_item),
     .define = "CLOPT_EPW",
     .min = 1,
     .max = MAX_2_20,
     .pow2 = 1,
     .parse_min = 1,
     .parse_max = MAX_2_20,
     .below_min = "must be at least 1",
     .zero_text = "def",
     .cpu_space = {1024, 4096, 16384},
     .gpu_space = {4, 16, 64}},
    {.name = "vw",
     KNOB(vector_width),
     .define = "CLOPT_VW",
     .min = 1,
     .max = 16,
     .pow2 = 1,
     .parse_min = 1,
     .parse_max = MAX_2_20,
     .below_min = "must be at least 1",
     .zero_text = "def",
     .cpu_space = {8, 16},
     .gpu_space = {1, 2, 4}},
    /* One knob, three names: "fblock" in text and the database, loss_block in the struct,
     * CLOPT_FBLOCK in the kernel. */
    {.name = "fblock",
     KNOB(loss_block),
     .define = "CLOPT_FBLOCK",
     .min = 1,
     .max = 1024,
     .pow2 = 1,
     .parse_min = 1,
     .parse_max = MAX_2_20,
     .below_min = "must be at least 1",
     .zero_text = "def"},
    {.name = "layout",
     KNOB(layout),
     .is_int = 1,
     .define = "CLOPT_LAYOUT",
     .min = 1,
     .max = 2,
     .words = {{"contig", 1}, {"strided", 2}, {"1", 1}, {"2", 2}},
     .shown = 2,
     .enumerated = 1,
     .zero_text = "def"},
    {.name = "partials",
     KNOB(group_partials),
     .is_int = 1,
     .define = "CLOPT_GROUP_PARTIALS",
     .define_rule = CLOPT_DEFINE_IS_TWO,
     .min = 1,
     .max = 2,
     .words = {{"item", 1}, {"group", 2}},
     .shown = 2,
     .enumerated = 1,
     .zero_text = "def"},
    {.name = "rwg",
     KNOB(reduce_group),
     .define = "CLOPT_RWG",
     .min = 1,
     .max = MAX_2_20,
     .pow2 = 1,
     .parse_min = 1,
     .parse_max = MAX_2_20,
     .below_min = "must be at least 1",
     .zero_text = "def"},
    {.name = "acc",
     KNOB(accumulate),
     .is_int = 1,
     .define = "CLOPT_ACC_KAHAN",
     .define_rule = CLOPT_DEFINE_IS_TWO,
     .min = 1,
     .max = 2,
     .words = {{"double", 1}, {"kahan", 2}},
     .shown = 2,
     .enumerated = 1,
     .zero_text = "def"},
    {.name = "gpcu",
     KNOB(groups_per_cu),
     .define = "CLOPT_GPCU",
     .min = 0,
     .max = 1024,
     .parse_min = 0,
     .parse_max = 1024,
     .zero_text = "0",
     .db_optional = 1,
     .db_absent = 0},
    {.name = "fuse",
     KNOB(fuse),
     .define = "CLOPT_FUSE",
     .min = 1,
     .max = 32,
     .parse_min = 1,
     .parse_max = 32,
     .below_min = "must be at least 1",
     .zero_text = "1",
     .print_last = 1,
     .db_optional = 1,
     .db_absent = 1,
     .stored_zero = 1},
    {.name = "pf",
     KNOB(prefetch),
     .define = "CLOPT_PREFETCH",
     .define_rule = CLOPT_DEFINE_ONE_IS_OFF,
     .min = 1,
     .max = MAX_2_20,
     .pow2 = 1,
     .words = {{"off", 1}},
     .shown = 1,
     .parse_min = 2,
     .parse_max = MAX_2_20,
     .below_min = "use off or a distance of at least 2 elements",
     .zero_text = "def",
     .db_optional = 1,
     .db_absent = 0},
    {.name = "simd",
     KNOB(simd_bits),
     .define = "CLOPT_SIMD512",
     .define_rule = CLOPT_DEFINE_IS_512,
     .min = 256,
     .max = 512,
     .words = {{"256", 256}, {"512", 512}},
     .shown = 2,
     .enumerated = 1,
     .zero_text = "def",
     .db_optional = 1,
     .db_absent = 0,
     .db_zero_ok = 1},
};
const size_t clopt_knob_count = sizeof clopt_knob_table / sizeof *clopt_knob_table;

size_t clopt_knob_print_order(size_t i)
{
    /* The knobs not printed last, in table order, then those printed last. */
    for (int last = 0; last < 2; ++last)
        for (size_t r = 0; r < clopt_knob_count; ++r)
            if (clopt_knob_table[r].print_last == last && i-- == 0)
                return r;
    return clopt_knob_count;
}

size_t clopt_knob_get(const struct clopt_knob_type *t, const struct clopt_knobs *k)
{
    const char *p = (const char *)k + t->offset;
    if (t->is_int) {
        int v;
        memcpy(&v, p, sizeof v);
        return v > 0 ? (size_t)v : 0;
    }
    size_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

void clopt_knob_set(const struct clopt_knob_type *t, struct clopt_knobs *k, size_t value)
{
    char *p = (char *)k + t->offset;
    if (t->is_int) {
        const int v = (int)value;
        memcpy(p, &v, sizeof v);
    } else {
        memcpy(p, &value, sizeof value);
    }
}

const struct clopt_knob_type *clopt_knob_find(const char *name, size_t len)
{
    for (size_t r = 0; r < clopt_knob_count; ++r)
        if (strlen(clopt_knob_table[r].name) == len &&
            !strncmp(clopt_knob_table[r].name, name, len))
            return &clopt_knob_table[r];
    return NULL;
}

const char *clopt_knob_name(size_t index, const char **field)
{
    const size_t r = clopt_knob_print_order(index);
    if (r >= clopt_knob_count)
        return NULL;
    if (field)
        *field = clopt_knob_table[r].field;
    return clopt_knob_table[r].name;
}

void clopt_knob_list(char *text, size_t size, int print_order)
{
    size_t used = 0;
    if (size)
        text[0] = '\0';
    for (size_t i = 0; i < clopt_knob_count && used < size; ++i) {
        const size_t r = print_order ? clopt_knob_print_order(i) : i;
        const int n =
            snprintf(text + used, size - used, "%s%s", i ? ", " : "", clopt_knob_table[r].name);
        used += n > 0 ? (size_t)n : 0;
    }
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CLOPT_ERR_INVALID_ARG;
}

static int is_power_of_two(size_t x)
{
    return x && !(x & (x - 1));
}

/* The value an enumerated knob may take, or a number in its range. */
static int in_range(const struct clopt_knob_type *t, size_t v)
{
    if (t->enumerated) {
        for (size_t w = 0; w < CLOPT_KNOB_WORDS && t->words[w].text; ++w)
            if (t->words[w].value == v)
                return 1;
        return 0;
    }
    return v >= t->min && v <= t->max && (!t->pow2 || is_power_of_two(v));
}

int clopt_knobs_check(const struct clopt_knobs *k, char *err, size_t errlen)
{
    for (size_t r = 0; r < clopt_knob_count; ++r) {
        const struct clopt_knob_type *t = &clopt_knob_table[r];
        const size_t v = clopt_knob_get(t, k);
        if (in_range(t, v))
            continue;
        if (!t->enumerated)
            return fail(err, errlen, "knobs.%s=%zu is out of range: need %s in [%zu, %zu]",
                        t->field, v, t->pow2 ? "a power of two" : "a whole number", t->min, t->max);
        char words[96] = "";
        for (size_t w = 0; w < t->shown; ++w)
            snprintf(words + strlen(words), sizeof words - strlen(words), "%s%zu (%s)",
                     w ? " or " : "", t->words[w].value, t->words[w].text);
        return fail(err, errlen, "knobs.%s=%zu is out of range: use %s", t->field, v, words);
    }
    return CLOPT_OK;
}

/* The kernel's value of a knob, by its define rule. */
static size_t define_value(const struct clopt_knob_type *t, size_t v)
{
    switch (t->define_rule) {
    case CLOPT_DEFINE_IS_TWO:
        return v == 2;
    case CLOPT_DEFINE_IS_512:
        return v == 512;
    case CLOPT_DEFINE_ONE_IS_OFF:
        return v > 1 ? v : 0;
    case CLOPT_DEFINE_VALUE:
        break;
    }
    return v;
}

int clopt_knobs_defines(const struct clopt_knobs *k, char *text, size_t size)
{
    size_t used = 0;
    if (size)
        text[0] = '\0';
    for (size_t r = 0; r < clopt_knob_count; ++r) {
        const struct clopt_knob_type *t = &clopt_knob_table[r];
        const int n = snprintf(text + used, size - used, " -D%s=%zu", t->define,
                               define_value(t, clopt_knob_get(t, k)));
        if (n < 0 || (size_t)n >= size - used)
            return CLOPT_ERR_OUT_OF_MEMORY;
        used += (size_t)n;
    }
    return CLOPT_OK;
}

int clopt_knob_parse_value(const struct clopt_knob_type *t, const char *value, const char *label,
                           struct clopt_knobs *k, char *err, size_t errlen)
{
    for (size_t w = 0; w < CLOPT_KNOB_WORDS && t->words[w].text; ++w)
        if (!strcmp(value, t->words[w].text)) {
            clopt_knob_set(t, k, t->words[w].value);
            return CLOPT_OK;
        }
    if (t->enumerated) {
        char use[96] = "";
        for (size_t w = 0; w < t->shown; ++w)
            snprintf(use + strlen(use), sizeof use - strlen(use), "%s%s",
                     w == 0              ? ""
                     : w + 1 == t->shown ? " or "
                                         : ", ",
                     t->words[w].text);
        return fail(err, errlen, "%s=%s: use %s", t->name, value, use);
    }
    uint64_t v;
    const char *why;
    if (clopt_parse_count(value, t->parse_max, &v, &why)) {
        if (t->parse_max >= 1000000)
            return fail(err, errlen,
                        "%s '%s': %s (need a whole number <= %llu, e.g. 1000000, 1e6 or 2^20)",
                        label, value, why, (unsigned long long)t->parse_max);
        return fail(err, errlen, "%s '%s': %s (need a whole number <= %llu)", label, value, why,
                    (unsigned long long)t->parse_max);
    }
    if (v < t->parse_min)
        return fail(err, errlen, "%s=%s: %s", t->name, value, t->below_min);
    clopt_knob_set(t, k, (size_t)v);
    return CLOPT_OK;
}

int clopt_knobs_parse(const char *text, struct clopt_knobs *knobs, char *err, size_t errlen)
{
    if (!text || !knobs)
        return fail(err, errlen, "clopt_knobs_parse needs text and knobs");
    char *copy = strdup(text);
    if (!copy) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return CLOPT_ERR_OUT_OF_MEMORY;
    }
    int rc = CLOPT_OK;
    char *save = NULL;
    /* Empty items (",,") are skipped, as strtok does. */
    for (char *item = strtok_r(copy, ",", &save); item && rc == CLOPT_OK;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            rc = fail(err, errlen, "'%s': need KEY=VALUE", item);
            break;
        }
        *eq = '\0';
        const struct clopt_knob_type *t = clopt_knob_find(item, strlen(item));
        if (!t) {
            char names[128];
            clopt_knob_list(names, sizeof names, 1);
            rc = fail(err, errlen, "unknown knob '%s' (knobs: %s)", item, names);
            break;
        }
        char label[64]; /* "fuse": number errors name the knob */
        snprintf(label, sizeof label, "%.40s", item);
        rc = clopt_knob_parse_value(t, eq + 1, label, knobs, err, errlen);
    }
    free(copy);
    return rc;
}

int clopt_knobs_format(const struct clopt_knobs *knobs, char *text, size_t size)
{
    if (!text || !size)
        return CLOPT_ERR_INVALID_ARG;
    text[0] = '\0';
    if (!knobs)
        return CLOPT_ERR_INVALID_ARG;
    size_t used = 0;
    for (size_t i = 0; i < clopt_knob_count; ++i) {
        const struct clopt_knob_type *t = &clopt_knob_table[clopt_knob_print_order(i)];
        const size_t v = clopt_knob_get(t, knobs);
        char value[24];
        const char *shown = v ? NULL : t->zero_text;
        for (size_t w = 0; w < CLOPT_KNOB_WORDS && v && !shown && t->words[w].text; ++w)
            if (t->words[w].value == v)
                shown = t->words[w].text;
        if (!shown) {
            snprintf(value, sizeof value, "%zu", v);
            shown = value;
        }
        const int n = snprintf(text + used, size - used, "%s%s=%s", i ? "," : "", t->name, shown);
        if (n < 0 || (size_t)n >= size - used)
            return CLOPT_ERR_INVALID_ARG;
        used += (size_t)n;
    }
    return CLOPT_OK;
}

void clopt_knobs_merge(struct clopt_knobs *dst, const struct clopt_knobs *src)
{
    for (size_t r = 0; r < clopt_knob_count; ++r) {
        const size_t v = clopt_knob_get(&clopt_knob_table[r], src);
        if (v)
            clopt_knob_set(&clopt_knob_table[r], dst, v);
    }
}

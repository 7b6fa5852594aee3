/* The tuner's space: --space text, the pruned default lists, the candidates and their
 * order. */
#include "tune.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int space_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int space_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CLOPT_ERR_INVALID_ARG;
}

/* The values of one knob, "V|V|..." (cut in place), into sp. */
static int parse_values(const struct clopt_knob_type *t, char *values, size_t *count,
                        struct clopt_knobs *out, char *err, size_t errlen)
{
    *count = 0;
    char *save = NULL;
    for (char *v = strtok_r(values, "|", &save); v; v = strtok_r(NULL, "|", &save)) {
        char why[400];
        if (strlen(t->name) + 1 + strlen(v) >= 96) /* as "KEY=V" in 96 bytes */
            return space_fail(err, errlen, "tune_options.space %s: value '%s' is too long", t->name,
                              v);
        if (*count == CLOPT_SPACE_VALUES)
            return space_fail(err, errlen, "tune_options.space %s: at most %d values", t->name,
                              CLOPT_SPACE_VALUES);
        memset(&out[*count], 0, sizeof out[*count]);
        if (clopt_knob_parse_value(t, v, t->name, &out[*count], why, sizeof why))
            return space_fail(err, errlen, "tune_options.space %s", why);
        ++*count;
    }
    if (*count == 0)
        return space_fail(err, errlen, "tune_options.space %s: no values", t->name);
    return CLOPT_OK;
}

int clopt_space_parse(const char *spec, struct clopt_space *sp, char *err, size_t errlen)
{
    memset(sp, 0, sizeof *sp);
    if (!spec || !*spec)
        return CLOPT_OK;
    char *copy = strdup(spec);
    if (!copy) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return CLOPT_ERR_OUT_OF_MEMORY;
    }
    int rc = CLOPT_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && rc == CLOPT_OK;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        const struct clopt_knob_type *t = eq ? clopt_knob_find(item, (size_t)(eq - item)) : NULL;
        if (!t) {
            char names[128];
            clopt_knob_list(names, sizeof names, 0);
            rc = space_fail(err, errlen,
                            "tune_options.space '%s': use KEY=V|V|... with KEY one of %s", spec,
                            names);
            break;
        }
        const size_t row = (size_t)(t - clopt_knob_table);
        rc = parse_values(t, eq + 1, &sp->count[row], sp->values[row], err, errlen);
    }
    free(copy);
    return rc;
}

int clopt_tune_space_check(const char *space, char *err, size_t errlen)
{
    /* 16 x 8 knob sets: too large for the stack's taste; on the heap, not in a static, so
     * that two threads may check spaces at once. */
    struct clopt_space *sp = malloc(sizeof *sp);
    if (!sp) {
        if (err && errlen)
            snprintf(err, errlen, "out of host memory checking tune_options.space");
        return CLOPT_ERR_OUT_OF_MEMORY;
    }
    const int rc = clopt_space_parse(space, sp, err, errlen);
    free(sp);
    return rc;
}

int clopt_space_candidates(struct clopt_space *sp, int cpu, struct clopt_tune_candidate **out,
                           size_t *count, char *err, size_t errlen)
{
    *out = NULL;
    *count = 0;
    /* Knobs left out: wg, epw and vw from a pruned list for the device type, the others at
     * their defaults. */
    for (size_t r = 0; r < clopt_knob_count; ++r) {
        const struct clopt_knob_type *t = &clopt_knob_table[r];
        const size_t *list = cpu ? t->cpu_space : t->gpu_space;
        if (sp->count[r])
            continue;
        for (; sp->count[r] < CLOPT_KNOB_SPACE && list[sp->count[r]]; ++sp->count[r]) {
            memset(&sp->values[r][sp->count[r]], 0, sizeof sp->values[r][0]);
            clopt_knob_set(t, &sp->values[r][sp->count[r]], list[sp->count[r]]);
        }
    }
    size_t total = 1;
    for (size_t r = 0; r < clopt_knob_count; ++r)
        if (sp->count[r])
            total *= sp->count[r];
    if (total > CLOPT_SPACE_MAX_CANDIDATES)
        return space_fail(err, errlen,
                          "tune_options.space: %zu combinations; at most %d (give fewer values)",
                          total, CLOPT_SPACE_MAX_CANDIDATES);
    struct clopt_tune_candidate *c = calloc(total, sizeof *c);
    if (!c) {
        if (err && errlen)
            snprintf(err, errlen, "out of host memory");
        return CLOPT_ERR_OUT_OF_MEMORY;
    }
    /* Every combination; a vector wider than the elements per work-item cannot be built
     * and is left out. */
    size_t n = 0, digit[CLOPT_SPACE_KNOBS] = {0};
    for (size_t i = 0; i < total; ++i) {
        struct clopt_knobs k;
        memset(&k, 0, sizeof k);
        for (size_t r = 0; r < clopt_knob_count; ++r)
            if (sp->count[r])
                clopt_knobs_merge(&k, &sp->values[r][digit[r]]);
        if (!(k.vector_width && k.elems_per_item && k.vector_width > k.elems_per_item))
            c[n++].knobs = k;
        for (size_t r = 0; r < clopt_knob_count; ++r) {
            if (!sp->count[r])
                continue;
            if (++digit[r] < sp->count[r])
                break;
            digit[r] = 0;
        }
    }
    *out = c;
    *count = n;
    return CLOPT_OK;
}

void clopt_space_shuffle(struct clopt_tune_candidate *c, size_t count, uint64_t seed)
{
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = count; i > 1; --i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const size_t j = (size_t)((state >> 33) % i);
        const struct clopt_tune_candidate t = c[i - 1];
        c[i - 1] = c[j];
        c[j] = t;
    }
}

/* See resume_options.h. */
#include "resume_options.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The configuration as strings, one per line, ending at an empty one (see cut_lines). */
struct lines {
    char *text, *end;
};

/* The value of key (NULL when absent). */
static const char *value_of(const struct lines *c, const char *key)
{
    const size_t n = strlen(key);
    for (char *line = c->text; line < c->end; line += strlen(line) + 1)
        if (!strncmp(line, key, n) && line[n] == '=')
            return line + n + 1;
    return NULL;
}

/* Each "param.KEY=VALUE" line as --param KEY=VALUE, unless --param KEY was given. A file is
 * named by its content, with its name on an "info.param.KEY.file" line (format 2). */
static int take_params(struct run_args *a, const struct lines *c)
{
    for (char *line = c->text; line < c->end; line += strlen(line) + 1) {
        char *eq = strchr(line, '=');
        if (strncmp(line, "param.", 6) != 0 || !eq)
            continue;
        *eq = '\0'; /* line + 6 is the key from here on */
        const char *key = line + 6, *value = eq + 1;
        int given = 0;
        for (size_t i = 0; i < a->opts.n_params; ++i)
            given |= !strcmp(a->params[i].key, key);
        char info_key[160];
        snprintf(info_key, sizeof info_key, "info.param.%s.file", key);
        const char *file = value_of(c, info_key);
        if (given)
            continue;
        if (a->opts.n_params == MAX_PARAMS) {
            print_error("--resume: the checkpoint has more than %d parameters", MAX_PARAMS);
            return EXIT_USAGE;
        }
        a->params[a->opts.n_params++] = (struct clopt_param){key, file ? file : value};
    }
    return 0;
}

/* A hyper-parameter from the checkpoint, where its flag (--NAME with '-' for '_') was not
 * given and the optimizer reads it with another value than its default (setting one it
 * ignores is refused). */
static void take_hyper(struct run_args *a, const struct lines *c, const char *name)
{
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", name);
    for (char *p = flag; *p; ++p)
        if (*p == '_')
            *p = '-';
    const char *text = value_of(c, name);
    double value, fallback;
    const char *why;
    if (!text || flag_given(a, flag) || clopt_parse_double(text, &value, &why) ||
        clopt_hyper_default(a->opts.optimizer, name, &fallback) != CLOPT_OK || value == fallback)
        return;
    clopt_options_set_hyper(&a->opts, name, value);
}

/* A number from an "info." line where the flag was not given (NaN lines stay unset). */
static void take_number(struct run_args *a, const struct lines *c, const char *key,
                        const char *flag, double *field)
{
    const char *text = value_of(c, key);
    double value;
    const char *why;
    if (text && !flag_given(a, flag) && clopt_parse_double(text, &value, &why) == 0)
        *field = value;
}

static void take_count(struct run_args *a, const struct lines *c, const char *key, const char *flag,
                       uint64_t *field)
{
    const char *text = value_of(c, key);
    uint64_t value;
    const char *why;
    if (text && !flag_given(a, flag) && clopt_parse_count(text, UINT64_MAX, &value, &why) == 0)
        *field = value;
}

/* The shape theta had ("info.shape=S0,S1,..."), so that --out writes it again, unless an
 * --init file gives one. */
static void take_shape(struct run_args *a, const struct lines *c)
{
    const char *text = value_of(c, "info.shape");
    if (!text || a->init_file || a->opts.n_axes)
        return;
    size_t shape[CLOPT_MAX_AXES], n_axes = 0;
    for (const char *at = text; *at && n_axes < CLOPT_MAX_AXES;) {
        char *end;
        const unsigned long long axis = strtoull(at, &end, 10);
        if (end == at || axis == 0 || (*end && *end != ','))
            return; /* not a shape clopt wrote: keep theta 1-D */
        shape[n_axes++] = (size_t)axis;
        at = *end ? end + 1 : end;
    }
    a->opts.n_axes = n_axes;
    memcpy(a->opts.shape, shape, n_axes * sizeof *shape);
}

/* Everything else the configuration holds: objective, dimension, precision, optimizer,
 * hyper-parameters, loss_every, and the learning rate, schedule and limits of its run. */
static void take_singles(struct run_args *a, const struct lines *c)
{
    const char *text;
    if (!flag_given(a, "--objective")) {
        /* A file objective is named by its content, and its file on an info line. */
        const char *file = value_of(c, "info.objective.file");
        if ((text = file ? file : value_of(c, "objective")))
            a->opts.objective = text;
    }
    if (!flag_given(a, "--optimizer") && (text = value_of(c, "optimizer")))
        a->opts.optimizer = text;
    if (!flag_given(a, "--schedule") && (text = value_of(c, "info.schedule")) &&
        strcmp(text, "constant") != 0)
        a->opts.schedule = text;
    if (!a->dim_given && !a->init_file && (text = value_of(c, "dim"))) {
        uint64_t dim;
        const char *why;
        if (clopt_parse_count(text, (uint64_t)1 << 48, &dim, &why) == 0) {
            a->opts.dim = (size_t)dim;
            a->dim_given = 1;
        }
    }
    if (!flag_given(a, "--precision") && (text = value_of(c, "precision")))
        a->opts.precision = !strcmp(text, "double") ? CLOPT_DOUBLE : CLOPT_FLOAT;
    for (size_t i = 0; clopt_hyper_name(i); ++i)
        take_hyper(a, c, clopt_hyper_name(i));
    take_count(a, c, "loss_every", "--loss-every", &a->opts.loss_every);
    /* gd's Barzilai-Borwein step (CLOPT_STEP_BB1/BB2), which only its runs' files have. */
    take_number(a, c, "gd_step", "--step", &a->opts.gd_step);
    take_number(a, c, "info.lr", "--lr", &a->opts.lr);
    take_number(a, c, "info.gtol", "--gtol", &a->opts.gtol);
    take_number(a, c, "info.ftol", "--ftol", &a->opts.ftol);
    take_number(a, c, "info.target", "--target", &a->opts.target);
    if (!a->iters_given)
        take_count(a, c, "info.max_iters", "--iters", &a->opts.max_iters);
    take_shape(a, c);
}

int options_from_checkpoint(struct run_args *a)
{
    if (!a->resume_path)
        return 0;
    static struct clopt_checkpoint_info info; /* 8 KiB of configuration */
    char err[512];
    const int status = clopt_checkpoint_info(a->resume_path, &info, err, sizeof err);
    /* A damaged file or no checkpoint at all: the resume itself says so, as it always did,
     * once the solver reads it (the options are not needed for that). */
    if (status == CLOPT_ERR_BAD_FILE)
        return 0;
    if (status != CLOPT_OK) {
        print_error("--resume: %s", err);
        return status == CLOPT_ERR_OUT_OF_MEMORY ? EXIT_FAILURE : EXIT_USAGE;
    }
    /* The options point into the run's own copy, cut into lines. */
    const size_t size = strlen(info.config) + 1;
    a->from_checkpoint = malloc(size);
    if (!a->from_checkpoint) {
        print_error("out of memory");
        return EXIT_FAILURE;
    }
    memcpy(a->from_checkpoint, info.config, size);
    struct lines c = {a->from_checkpoint, a->from_checkpoint + size - 1};
    for (char *p = c.text; p < c.end; ++p)
        if (*p == '\n')
            *p = '\0';
    take_singles(a, &c);
    return take_params(a, &c);
}

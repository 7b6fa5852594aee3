/* What the solver learns about an objective before building it: its numeric parameters as
 * -D defines, checked against the objectives table, and the shape of a user's file. */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The widest stencil a user's file may declare; halos of this size are kept per shard. */
#define MAX_STENCIL_RADIUS 16
/* The widest box a user's grid objective may declare (its halo per shard side grows with R). */
#define MAX_GRID_RADIUS 8

/* Parses a whole string as a finite double in the C locale's format, whatever the
 * caller's LC_NUMERIC. */
static int parse_param_value(const char *text, double *value)
{
    if (!text || !*text || isspace((unsigned char)text[0]))
        return 0;
    char *end;
    *value = clopt_strtod_c(text, &end);
    return *end == '\0' && isfinite(*value);
}

/* Checks parameter i's key: its spelling, that it is not given twice, and that a built-in
 * objective has it. *spec is the table entry (NULL for a user's file). */
static int check_param_key(struct clopt_context *ctx, const struct clopt_objective_type *obj,
                           const struct clopt_options *opts, size_t i,
                           const struct clopt_param_spec **spec)
{
    const struct clopt_param *p = &opts->params[i];
    *spec = NULL;
    if (!p->key || !*p->key || strlen(p->key) > 64)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.params needs KEY=VALUE");
    for (const char *c = p->key; *c; ++c)
        if (!isalnum((unsigned char)*c) && *c != '_')
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "options.params key '%s' may hold only letters, digits and '_'",
                              p->key);
    for (size_t k = 0; k < i; ++k)
        if (!strcasecmp(opts->params[k].key, p->key))
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "options.params %s is given twice",
                              p->key);
    if (!obj)
        return CLOPT_OK;
    for (size_t k = 0; k < obj->n_params; ++k)
        if (strcmp(obj->params[k].key, p->key) == 0)
            *spec = &obj->params[k];
    if (!*spec)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "objective '%s' has no parameter '%s'%s",
                          obj->name, p->key, obj->n_params ? " (see clopt objectives)" : "");
    return CLOPT_OK;
}

/* Appends " -DCLOPT_PARAM_KEY=value" for one numeric parameter to *text. */
static int append_param_define(struct clopt_context *ctx, const struct clopt_param *p,
                               const struct clopt_param_spec *spec, char **text)
{
    double value;
    if (!parse_param_value(p->value, &value))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.params %s=%s: the value must be a finite number", p->key,
                          p->value ? p->value : "");
    if (spec && !(value >= spec->min_value && value <= spec->max_value))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "options.params %s=%s is out of range [%g, %g]", p->key, p->value,
                          spec->min_value, spec->max_value);
    char upper[65];
    size_t k = 0;
    for (; p->key[k]; ++k)
        upper[k] = (char)toupper((unsigned char)p->key[k]);
    upper[k] = '\0';
    /* Always a floating literal (1 / CLOPT_PARAM_A must not divide integers); a double
     * literal: objectives cast it to real. In the C locale: "5,0e-01" is no number. */
    char literal[40];
    if (clopt_format_c(literal, sizeof literal, "%.17e", value) < 0)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    char *grown = clopt_format("%s -DCLOPT_PARAM_%s=%s", *text, upper, literal);
    if (!grown)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    free(*text);
    *text = grown;
    return CLOPT_OK;
}

int clopt_param_defines(struct clopt_context *ctx, const struct clopt_objective_type *obj,
                        const struct clopt_options *opts, char **defines)
{
    char *text = clopt_format("%s", "");
    if (!text)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; i < opts->n_params; ++i) {
        const struct clopt_param *p = &opts->params[i];
        const struct clopt_param_spec *spec;
        int status = check_param_key(ctx, obj, opts, i, &spec);
        if (status == CLOPT_OK && spec && spec->is_file) {
            /* A data file: read when the solver loads the data vector, not a define. */
            if (!p->value || !*p->value)
                status = clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                    "options.params %s= needs a file name", p->key);
            if (status == CLOPT_OK)
                continue;
        }
        if (status == CLOPT_OK)
            status = append_param_define(ctx, p, spec, &text);
        if (status != CLOPT_OK) {
            free(text);
            return status;
        }
    }
    *defines = text;
    return CLOPT_OK;
}

/* The radius R of "#define NAME R" (CLOPT_STENCIL_RADIUS, CLOPT_GRID_RADIUS) on a line of
 * text; 0 when no line has that form. */
static size_t declared_radius(const char *text, const char *name)
{
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *c = line;
        while (*c == ' ' || *c == '\t')
            ++c;
        if (*c++ != '#')
            continue;
        while (*c == ' ' || *c == '\t')
            ++c;
        if (strncmp(c, "define", 6) != 0)
            continue;
        c += 6;
        if (*c != ' ' && *c != '\t')
            continue;
        while (*c == ' ' || *c == '\t')
            ++c;
        if (strncmp(c, name, strlen(name)) != 0)
            continue;
        c += strlen(name);
        if (*c != ' ' && *c != '\t')
            continue;
        while (*c == ' ' || *c == '\t')
            ++c;
        size_t radius = 0;
        int digits = 0;
        while (isdigit((unsigned char)*c) && radius <= MAX_STENCIL_RADIUS) {
            radius = radius * 10 + (size_t)(*c++ - '0');
            ++digits;
        }
        if (digits && !isalnum((unsigned char)*c) && *c != '_' && *c != '.')
            return radius;
    }
    return 0;
}

/* Blanks out comments in place (newlines kept, so lines stay lines): a file whose comment
 * says "unlike clopt_fdf_stencil" is still a separable objective. String and character
 * literals are stepped over whole, so a "//" inside one starts no comment. */
static void blank_comments(char *text)
{
    for (char *c = text; *c;) {
        if (*c == '"' || *c == '\'') {
            const char quote = *c++;
            while (*c && *c != quote && *c != '\n')
                c += c[0] == '\\' && c[1] ? 2 : 1;
            if (*c == quote)
                ++c;
        } else if (c[0] == '/' && c[1] == '/') {
            for (; *c && *c != '\n'; ++c)
                *c = ' ';
        } else if (c[0] == '/' && c[1] == '*') {
            c[0] = c[1] = ' ';
            for (c += 2; *c && !(c[0] == '*' && c[1] == '/'); ++c)
                if (*c != '\n')
                    *c = ' ';
            if (*c)
                c[0] = c[1] = ' ';
        } else {
            ++c;
        }
    }
}

/* Whether name occurs in text as a whole identifier (not inside clopt_fdf_stencil2). */
static int has_identifier(const char *text, const char *name)
{
    const size_t n = strlen(name);
    for (const char *at = strstr(text, name); at; at = strstr(at + 1, name)) {
        const int starts = at == text || !(isalnum((unsigned char)at[-1]) || at[-1] == '_');
        const int ends = !(isalnum((unsigned char)at[n]) || at[n] == '_');
        if (starts && ends)
            return 1;
    }
    return 0;
}

int clopt_inspect_user_objective(struct clopt_context *ctx, const char *path, size_t *radius,
                                 int *grid)
{
    char *text = NULL;
    size_t length = 0;
    *radius = 0;
    *grid = 0;
    int status = clopt_read_file(ctx, path, &text, &length);
    if (status != CLOPT_OK)
        return status;
    blank_comments(text);
    if (has_identifier(text, "clopt_fdf_data")) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                            "objective file '%s' defines clopt_fdf_data: objectives with a data "
                            "vector are built-in only (shifted_sphere); use clopt_fdf or "
                            "clopt_fdf_stencil",
                            path);
    } else if (has_identifier(text, "clopt_fdf_grid")) {
        *grid = 1;
        *radius = declared_radius(text, "CLOPT_GRID_RADIUS");
        if (*radius < 1 || *radius > MAX_GRID_RADIUS)
            status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                                "objective file '%s' defines clopt_fdf_grid but no line "
                                "'#define CLOPT_GRID_RADIUS R' with R from 1 to %d (see README)",
                                path, MAX_GRID_RADIUS);
    } else if (has_identifier(text, "clopt_fdf_stencil")) {
        *radius = declared_radius(text, "CLOPT_STENCIL_RADIUS");
        if (*radius < 1 || *radius > MAX_STENCIL_RADIUS)
            status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                                "objective file '%s' defines clopt_fdf_stencil but no line "
                                "'#define CLOPT_STENCIL_RADIUS R' with R from 1 to %d (see README)",
                                path, MAX_STENCIL_RADIUS);
    } else if (!has_identifier(text, "clopt_fdf")) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                            "objective file '%s' defines no clopt_fdf: it must define "
                            "real clopt_fdf(real x, ulong i, real *g), clopt_fdf_stencil or "
                            "clopt_fdf_grid "
                            "(see README)",
                            path);
    }
    free(text);
    return status;
}

#include "schedule.h"
#include "numparse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The longest schedule text; every field buffer below is this large, so no field can be cut
 * (a cut gamma of many digits once read as 9e62). */
#define MAX_SPEC 256

/* Splits text at the first ':' into a field copy; returns the rest or NULL. */
static const char *next_field(const char *text, char *field, size_t size)
{
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n >= size)
        n = size - 1;
    memcpy(field, text, n);
    field[n] = '\0';
    return colon ? colon + 1 : NULL;
}

static int parse_main(const char *spec, struct clopt_schedule *out, const char **why)
{
    char kind[MAX_SPEC], a[MAX_SPEC], b[MAX_SPEC];
    const char *rest = next_field(spec, kind, sizeof kind);
    if (!strcmp(kind, "constant")) {
        out->kind = CLOPT_SCHEDULE_CONSTANT;
        if (rest) {
            *why = "'constant' takes no values";
            return -1;
        }
        return 0;
    }
    if (strcmp(kind, "step") && strcmp(kind, "exp") && strcmp(kind, "cosine")) {
        *why = "unknown schedule: use constant, step:EVERY:GAMMA, exp:GAMMA, "
               "cosine:T_MAX[:ETA_MIN] or warmup:STEPS[+OTHER]";
        return -1;
    }
    if (!rest) {
        *why = "needs values after ':' (step:EVERY:GAMMA, exp:GAMMA, cosine:T_MAX[:ETA_MIN])";
        return -1;
    }
    rest = next_field(rest, a, sizeof a);
    if (!strcmp(kind, "step")) {
        if (!rest) {
            *why = "step needs EVERY:GAMMA";
            return -1;
        }
        if (next_field(rest, b, sizeof b)) {
            *why = "step takes two values";
            return -1;
        }
        if (clopt_parse_count(a, UINT64_MAX, &out->every, why) || out->every == 0) {
            *why = "step: EVERY must be a whole number >= 1";
            return -1;
        }
        if (clopt_parse_double(b, &out->gamma, why) || !(out->gamma > 0)) {
            *why = "step: GAMMA must be a number > 0";
            return -1;
        }
        out->kind = CLOPT_SCHEDULE_STEP;
        return 0;
    }
    if (!strcmp(kind, "exp")) {
        if (rest) {
            *why = "exp takes one value";
            return -1;
        }
        if (clopt_parse_double(a, &out->gamma, why) || !(out->gamma > 0)) {
            *why = "exp: GAMMA must be a number > 0";
            return -1;
        }
        out->kind = CLOPT_SCHEDULE_EXP;
        return 0;
    }
    if (!strcmp(kind, "cosine")) {
        uint64_t t_max;
        if (clopt_parse_count(a, UINT64_MAX, &t_max, why) || t_max == 0) {
            *why = "cosine: T_MAX must be a whole number >= 1";
            return -1;
        }
        out->t_max = (double)t_max;
        out->eta_min = 0;
        if (rest) {
            if (next_field(rest, b, sizeof b)) {
                *why = "cosine takes at most two values";
                return -1;
            }
            if (clopt_parse_double(b, &out->eta_min, why) || out->eta_min < 0) {
                *why = "cosine: ETA_MIN must be a number >= 0";
                return -1;
            }
        }
        out->kind = CLOPT_SCHEDULE_COSINE;
        return 0;
    }
    *why = "unknown schedule: use constant, step:EVERY:GAMMA, exp:GAMMA, cosine:T_MAX[:ETA_MIN] "
           "or warmup:STEPS[+OTHER]";
    return -1;
}

int clopt_schedule_parse(const char *spec, struct clopt_schedule *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->kind = CLOPT_SCHEDULE_CONSTANT;
    if (!spec || !*spec)
        return 0;
    if (strlen(spec) >= MAX_SPEC) {
        *why = "schedule too long";
        return -1;
    }
    if (strncmp(spec, "warmup:", 7) != 0)
        return parse_main(spec, out, why);
    char steps[MAX_SPEC];
    const char *plus = strchr(spec + 7, '+');
    size_t n = plus ? (size_t)(plus - (spec + 7)) : strlen(spec + 7);
    if (n == 0 || n >= sizeof steps) {
        *why = "warmup needs STEPS";
        return -1;
    }
    memcpy(steps, spec + 7, n);
    steps[n] = '\0';
    if (clopt_parse_count(steps, UINT64_MAX, &out->warmup, why) || out->warmup == 0) {
        *why = "warmup: STEPS must be a whole number >= 1";
        return -1;
    }
    if (!plus)
        return 0;
    if (!strncmp(plus + 1, "warmup", 6)) {
        *why = "warmup cannot follow warmup";
        return -1;
    }
    return parse_main(plus + 1, out, why);
}

double clopt_schedule_lr(const struct clopt_schedule *s, double base, uint64_t t)
{
    if (t < s->warmup)
        return base * (double)(t + 1) / (double)s->warmup;
    t -= s->warmup;
    switch (s->kind) {
    case CLOPT_SCHEDULE_STEP:
        return base * pow(s->gamma, (double)(t / s->every));
    case CLOPT_SCHEDULE_EXP:
        return base * pow(s->gamma, (double)t);
    case CLOPT_SCHEDULE_COSINE:
        return s->eta_min + (base - s->eta_min) *
                                (1.0 + cos(3.14159265358979323846 * (double)t / s->t_max)) / 2.0;
    case CLOPT_SCHEDULE_CONSTANT:
    default:
        return base;
    }
}

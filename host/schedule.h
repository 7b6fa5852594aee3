/* Learning-rate schedules, evaluated on the host per step. */
#ifndef CLOPT_SCHEDULE_H
#define CLOPT_SCHEDULE_H

#include <stdint.h>

enum clopt_schedule_kind {
    CLOPT_SCHEDULE_CONSTANT = 0,
    CLOPT_SCHEDULE_STEP,   /* lr * gamma^floor(t / every), torch StepLR */
    CLOPT_SCHEDULE_EXP,    /* lr * gamma^t, torch ExponentialLR */
    CLOPT_SCHEDULE_COSINE, /* eta_min + (lr - eta_min)(1 + cos(pi t / t_max)) / 2 */
};

struct clopt_schedule {
    uint64_t warmup;               /* steps of linear warm-up, lr (t + 1) / warmup; 0 = none */
    enum clopt_schedule_kind kind; /* after the warm-up, with t counted from its end */
    uint64_t every;
    double gamma, t_max, eta_min;
};

/* Parses SPEC (NULL or "" = constant). On failure returns -1 and *why names the problem. */
int clopt_schedule_parse(const char *spec, struct clopt_schedule *out, const char **why);

/* The learning rate of step t (0-based). */
double clopt_schedule_lr(const struct clopt_schedule *s, double base, uint64_t t);

#endif

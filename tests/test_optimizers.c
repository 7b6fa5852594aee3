/* Every optimizer against a double-precision CPU reference of the torch.optim formulas,
 * step by step with theta and every state vector compared; and every optimizer reaching
 * the minimum of the sphere and of a well-conditioned ellipsoid. */
#include "schedule.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 12
#define COND 10.0
#define FLOAT_RTOL 3e-7
#define FLOAT_ATOL 1e-7
#define DOUBLE_RTOL 1e-12
#define DOUBLE_ATOL 1e-14
#define MAX_STATE 3

static struct clopt_context *ctx;

static void setup(void)
{
    ctx = test_context();
}

static void teardown(void)
{
    clopt_context_destroy(ctx);
}

TestSuite(optimizers, .init = setup, .fini = teardown);

struct config {
    const char *optimizer;
    double lr, momentum, dampening, beta1, beta2, eps, weight_decay, alpha, clip;
    int amsgrad, maximize;
    const char *schedule; /* only "step:3:0.5" is modelled by the reference */
    double clip_norm;
};

static double scheduled_lr(const struct config *c, uint64_t t)
{
    if (c->schedule && !strcmp(c->schedule, "step:3:0.5"))
        return c->lr * pow(0.5, (double)(t / 3));
    return c->lr;
}

/* One torch.optim step in double; t counts from 1; s holds the state vectors' values. */
static void reference_step(const struct config *c, uint64_t t, double *x, double s[MAX_STATE],
                           double g)
{
    const double lr = scheduled_lr(c, t - 1);
    if (c->clip > 0)
        g = fmin(fmax(g, -c->clip), c->clip);
    if (c->maximize)
        g = -g;
    const char *o = c->optimizer;
    if (!strcmp(o, "adamw"))
        *x *= 1 - lr * c->weight_decay;
    else
        g += c->weight_decay * *x;
    if (!strcmp(o, "gd")) {
        *x -= lr * g;
    } else if (!strcmp(o, "momentum") || !strcmp(o, "nesterov")) {
        s[0] = t == 1 ? g : c->momentum * s[0] + (1 - c->dampening) * g;
        *x -= lr * (!strcmp(o, "nesterov") ? g + c->momentum * s[0] : s[0]);
    } else if (!strcmp(o, "adam") || !strcmp(o, "adamw")) {
        s[0] = s[0] + (1 - c->beta1) * (g - s[0]);
        s[1] = c->beta2 * s[1] + (1 - c->beta2) * g * g;
        double v = s[1];
        if (c->amsgrad) {
            s[2] = fmax(s[2], s[1]);
            v = s[2];
        }
        const double bc1 = 1 - pow(c->beta1, (double)t), bc2 = 1 - pow(c->beta2, (double)t);
        *x -= lr / bc1 * s[0] / (sqrt(v) / sqrt(bc2) + c->eps);
    } else if (!strcmp(o, "rmsprop")) {
        s[0] = c->alpha * s[0] + (1 - c->alpha) * g * g;
        const double avg = sqrt(s[0]) + c->eps;
        if (c->momentum > 0) {
            s[1] = c->momentum * s[1] + g / avg;
            *x -= lr * s[1];
        } else {
            *x -= lr * g / avg;
        }
    } else if (!strcmp(o, "adagrad")) {
        s[0] += g * g;
        *x -= lr * g / (sqrt(s[0]) + c->eps);
    } else {
        cr_assert_fail("no reference for %s", o);
    }
}

static double gradient(const char *objective, double x, size_t i, size_t n)
{
    const double c =
        !strcmp(objective, "ellipsoid") && n > 1 ? pow(COND, (double)i / (double)(n - 1)) : 1.0;
    return 2.0 * c * x;
}

static void fill_options(struct clopt_options *o, const struct config *c)
{
    clopt_options_init(o);
    o->optimizer = c->optimizer;
    o->lr = c->lr;
    o->momentum = c->momentum;
    o->dampening = c->dampening;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->eps = c->eps;
    o->weight_decay = c->weight_decay;
    o->alpha = c->alpha;
    o->clip_value = c->clip;
    o->amsgrad = c->amsgrad;
    o->maximize = c->maximize;
    o->schedule = c->schedule;
    o->clip_norm = c->clip_norm;
}

/* NAN fields take the optimizer's defaults, as in clopt_options_init; a field the optimizer
 * does not use must stay NAN (the solver refuses it). */
static const struct config configs[] = {
    {"gd", 0.1, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0, 0, 0, NULL, 0},
    {"gd", 0.1, NAN, NAN, NAN, NAN, NAN, 0.05, NAN, 0.5, 0, 1, "step:3:0.5", 0},
    {"momentum", 0.05, 0.9, 0.1, NAN, NAN, NAN, 0.01, NAN, 0, 0, 0, NULL, 0},
    {"nesterov", 0.05, 0.8, 0, NAN, NAN, NAN, NAN, NAN, 0, 0, 0, NULL, 0},
    {"adam", 0.01, NAN, NAN, 0.9, 0.999, 1e-8, 0, NAN, 0, 0, 0, NULL, 0},
    {"adam", 0.01, NAN, NAN, 0.8, 0.99, 1e-6, 0.01, NAN, 0, 1, 0, "step:3:0.5", 0},
    {"adamw", 0.01, NAN, NAN, 0.9, 0.999, 1e-8, 0.05, NAN, 0, 0, 0, NULL, 0},
    {"adamw", 0.01, NAN, NAN, 0.9, 0.999, 1e-8, 0.05, NAN, 0, 1, 0, NULL, 0},
    {"rmsprop", 0.01, NAN, NAN, NAN, NAN, 1e-8, 0, 0.9, 0, 0, 0, NULL, 0},
    {"rmsprop", 0.01, 0.5, NAN, NAN, NAN, 1e-8, 0.01, 0.99, 0, 0, 0, NULL, 0},
    {"adagrad", 0.1, NAN, NAN, NAN, NAN, 1e-10, 0, NAN, 0, 0, 0, NULL, 0},
    {"adam", 0.01, NAN, NAN, 0.9, 0.999, 1e-8, 0, NAN, 0, 0, 0, NULL, 1.0},
    {"momentum", 0.05, 0.9, 0, NAN, NAN, NAN, 0, NAN, 0, 0, 0, NULL, 0.5},
};

/* The defaults the reference needs where a config leaves NAN. */
static struct config resolved(const struct config *c)
{
    struct config r = *c;
    const int sgd = !strcmp(c->optimizer, "momentum") || !strcmp(c->optimizer, "nesterov");
    if (isnan(r.momentum))
        r.momentum = sgd ? 0.9 : 0;
    if (isnan(r.dampening))
        r.dampening = 0;
    if (isnan(r.beta1))
        r.beta1 = 0.9;
    if (isnan(r.beta2))
        r.beta2 = 0.999;
    if (isnan(r.eps))
        r.eps = !strcmp(c->optimizer, "adagrad") ? 1e-10 : 1e-8;
    if (isnan(r.weight_decay))
        r.weight_decay = !strcmp(c->optimizer, "adamw") ? 1e-2 : 0;
    if (isnan(r.alpha))
        r.alpha = 0.99;
    return r;
}

/* STEPS single-step runs; before each, the reference takes the device's theta and state,
 * and after it both are compared element by element. */
static void check_against_reference(const struct config *given, const char *objective, size_t n,
                                    enum clopt_precision precision, size_t max_shard_bytes)
{
    if (test_skip_double_part(precision == CLOPT_DOUBLE))
        return;
    struct clopt_param cond = {"cond", "10"};
    struct clopt_options o;
    fill_options(&o, given);
    const struct config resolved_config = resolved(given);
    const struct config *c = &resolved_config;
    o.objective = objective;
    if (!strcmp(objective, "ellipsoid")) {
        o.params = &cond;
        o.n_params = 1;
    }
    o.dim = n;
    o.precision = precision;
    o.max_iters = 1;
    o.seed = 11;
    o.max_shard_bytes = max_shard_bytes;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s: %s", c->optimizer,
                 clopt_errmsg(ctx));
    const size_t n_state = clopt_solver_state_count(s);
    cr_assert_leq(n_state, MAX_STATE);
    double *before = malloc((1 + MAX_STATE) * n * sizeof *before);
    double *after = malloc((1 + MAX_STATE) * n * sizeof *after);
    cr_assert(before && after);
    const int dbl = precision == CLOPT_DOUBLE;
    const double rtol = dbl ? DOUBLE_RTOL : FLOAT_RTOL, atol = dbl ? DOUBLE_ATOL : FLOAT_ATOL;
    for (uint64_t t = 1; t <= STEPS; ++t) {
        cr_assert_eq(clopt_solver_read_theta(s, before, CLOPT_DOUBLE, 0, n), CLOPT_OK);
        for (size_t k = 0; k < n_state; ++k)
            cr_assert_eq(clopt_solver_read_state(s, k, before + (k + 1) * n, CLOPT_DOUBLE, 0, n),
                         CLOPT_OK);
        struct clopt_result r;
        cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_steps(s), t);
        cr_assert_eq(clopt_solver_read_theta(s, after, CLOPT_DOUBLE, 0, n), CLOPT_OK);
        for (size_t k = 0; k < n_state; ++k)
            cr_assert_eq(clopt_solver_read_state(s, k, after + (k + 1) * n, CLOPT_DOUBLE, 0, n),
                         CLOPT_OK);
        /* Global-norm clipping scales every element by one factor from all of g. */
        double norm2 = 0;
        for (size_t i = 0; i < n; ++i) {
            const double g = gradient(objective, before[i], i, n);
            norm2 += g * g;
        }
        const double clip_scale =
            c->clip_norm > 0 ? fmin(1.0, c->clip_norm / (sqrt(norm2) + 1e-6)) : 1.0;
        size_t bad = 0;
        for (size_t i = 0; i < n; ++i) {
            double x = before[i], state[MAX_STATE] = {0};
            for (size_t k = 0; k < n_state; ++k)
                state[k] = before[(k + 1) * n + i];
            const double g = gradient(objective, before[i], i, n);
            /* The same step without the gradient: what g adds to each state vector, in
             * that vector's own units (g for a momentum, g^2 for a second moment). */
            double x0 = before[i], state0[MAX_STATE] = {0};
            for (size_t k = 0; k < n_state; ++k)
                state0[k] = before[(k + 1) * n + i];
            reference_step(c, t, &x0, state0, 0.0);
            reference_step(c, t, &x, state, g * clip_scale);
            /* theta is compared relative to its own size before and after the step and to
             * the step g makes (which may be larger than both). Each state vector relative
             * to its size before and after and to g's part in it:
             * when b = mu b + g nearly cancels, the float ellipsoid coefficient (exact to
             * ~1e-7) leaves an error of that size relative to g's part, not to b. (One
             * scale for all vectors once mixed g with g^2.) */
            const double theta_tol =
                atol + rtol * fmax(fmax(fabs(before[i]), fabs(x)), fabs(x - x0));
            if (!close_enough(after[i], x, rtol, theta_tol) && bad++ < 3)
                cr_log_error("%s %s n=%zu step %llu: theta[%zu] = %.17g, expected %.17g",
                             c->optimizer, objective, n, (unsigned long long)t, i, after[i], x);
            for (size_t k = 0; k < n_state; ++k) {
                const double scale = fmax(fmax(fabs(before[(k + 1) * n + i]), fabs(state[k])),
                                          fabs(state[k] - state0[k]));
                const double tol_abs = atol + rtol * scale;
                if (!close_enough(after[(k + 1) * n + i], state[k], rtol, tol_abs) && bad++ < 3)
                    cr_log_error("%s %s step %llu: state %zu [%zu] = %.17g, expected %.17g",
                                 c->optimizer, objective, (unsigned long long)t, k, i,
                                 after[(k + 1) * n + i], state[k]);
            }
        }
        cr_assert_eq(bad, 0, "%s on %s (%s, n = %zu): %zu mismatches at step %llu", c->optimizer,
                     objective, dbl ? "double" : "float", n, bad, (unsigned long long)t);
    }
    free(before);
    free(after);
    clopt_solver_destroy(s);
}

Test(optimizers, every_optimizer_matches_reference_step_by_step)
{
    const char *objectives[] = {"sphere", "ellipsoid"};
    for (size_t i = 0; i < sizeof configs / sizeof *configs; ++i) {
        for (size_t ob = 0; ob < 2; ++ob)
            for (int p = 0; p < 2; ++p)
                check_against_reference(&configs[i], objectives[ob], 93,
                                        p ? CLOPT_DOUBLE : CLOPT_FLOAT, 0);
    }
}

Test(optimizers, every_configuration_matches_reference_on_many_shards)
{
    /* Odd size over 5 shards of 4 tiles (CPU tiles: 16 x 4096 elements). */
    const size_t n = 4 * 65536 * 4 + 4101;
    for (size_t i = 0; i < sizeof configs / sizeof *configs; ++i) {
        check_against_reference(&configs[i], "ellipsoid", n, CLOPT_FLOAT, 4 * 65536 * 4);
    }
}

struct convergence {
    const char *optimizer;
    double lr, momentum;
    const char *schedule;
    uint64_t budget; /* iterations; the README's table lists these */
};

Test(optimizers, every_optimizer_reaches_the_minimum)
{
    const struct convergence cases[] = {
        {"gd", 0.04, NAN, NULL, 300},         {"momentum", 0.02, 0.5, NULL, 300},
        {"nesterov", 0.02, 0.5, NULL, 300},   {"adam", 0.1, NAN, "exp:0.99", 400},
        {"adamw", 0.1, NAN, "exp:0.99", 400}, {"rmsprop", 0.02, NAN, "exp:0.997", 700},
        {"adagrad", 0.5, NAN, NULL, 300},
    };
    struct clopt_param cond = {"cond", "10"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i)
        for (int ob = 0; ob < 2; ++ob) {
            struct clopt_options o;
            clopt_options_init(&o);
            o.optimizer = cases[i].optimizer;
            o.lr = cases[i].lr;
            o.momentum = cases[i].momentum;
            o.schedule = cases[i].schedule;
            o.dim = 1000;
            o.seed = 3;
            o.max_iters = 0;
            if (ob) {
                o.objective = "ellipsoid";
                o.params = &cond;
                o.n_params = 1;
            }
            struct clopt_solver *s = NULL;
            cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
            double initial, grad_norm;
            cr_assert_eq(clopt_solver_evaluate(s, &initial, &grad_norm), CLOPT_OK);
            clopt_solver_destroy(s);
            o.max_iters = cases[i].budget;
            cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
            struct clopt_result r;
            cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
            cr_expect_leq(r.loss, 1e-8 * initial, "%s on %s: loss %g after %llu iterations from %g",
                          cases[i].optimizer, ob ? "ellipsoid" : "sphere", r.loss,
                          (unsigned long long)r.iterations, initial);
            clopt_solver_destroy(s);
        }
}

Test(optimizers, hyper_parameters_are_range_checked)
{
    const struct {
        const char *optimizer;
        const char *field;
        double value;
        const char *message;
    } cases[] = {
        {"adam", "beta1", 1.0, "options.beta1"},
        {"adam", "beta2", -0.1, "options.beta2"},
        {"adam", "eps", 0.0, "options.eps"},
        {"gd", "lr", -1.0, "options.lr"},
        {"momentum", "momentum", 1.0, "options.momentum"},
        {"momentum", "momentum", 0.0, "> 0"},
        {"rmsprop", "alpha", 1.0, "options.alpha"},
        {"sgd", "lr", 0.1, "unknown optimizer"},
        {"adamw", "weight_decay", -1, "options.weight_decay"},
        {"nesterov", "dampening", 0.5, "dampening 0"},
        {"gd", "clip", -1, "options.clip_value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        struct clopt_options o;
        clopt_options_init(&o);
        o.optimizer = cases[i].optimizer;
        o.dim = 10;
        const char *f = cases[i].field;
        double *field = !strcmp(f, "beta1")       ? &o.beta1
                        : !strcmp(f, "beta2")     ? &o.beta2
                        : !strcmp(f, "eps")       ? &o.eps
                        : !strcmp(f, "lr")        ? &o.lr
                        : !strcmp(f, "momentum")  ? &o.momentum
                        : !strcmp(f, "alpha")     ? &o.alpha
                        : !strcmp(f, "clip")      ? &o.clip_value
                        : !strcmp(f, "dampening") ? &o.dampening
                                                  : &o.weight_decay;
        *field = cases[i].value;
        struct clopt_solver *s = NULL;
        cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG, "case %zu", i);
        cr_expect(strstr(clopt_errmsg(ctx), cases[i].message) != NULL, "case %zu: %s", i,
                  clopt_errmsg(ctx));
        clopt_solver_destroy(s);
    }
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = 10;
    o.schedule = "cosine:0";
    struct clopt_solver *s = NULL;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(clopt_errmsg(ctx), "options.schedule") != NULL, "%s", clopt_errmsg(ctx));
}

/* A hyper-parameter the optimizer ignores would silently do nothing: it is refused, with
 * the library's name for it and the optimizers that use it. Those every optimizer uses are
 * always accepted. */
Test(optimizers, a_hyper_parameter_the_optimizer_ignores_is_refused)
{
    const struct {
        const char *optimizer;
        const char *field;
        const char *message;
    } refused[] = {
        {"gd", "momentum",
         "options.momentum is not used by optimizer 'gd'; it is used by momentum, nesterov, "
         "rmsprop"},
        {"adam", "alpha", "options.alpha is not used by optimizer 'adam'; it is used by rmsprop"},
        {"momentum", "beta1",
         "options.beta1 is not used by optimizer 'momentum'; it is used by adam, adamw"},
        {"adagrad", "dampening",
         "options.dampening is not used by optimizer 'adagrad'; it is used by momentum, nesterov"},
        {"rmsprop", "amsgrad",
         "options.amsgrad is not used by optimizer 'rmsprop'; it is used by adam, adamw"},
        {"gd", "eps",
         "options.eps is not used by optimizer 'gd'; it is used by adam, adamw, rmsprop, adagrad"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; ++i) {
        struct clopt_options o;
        clopt_options_init(&o);
        o.optimizer = refused[i].optimizer;
        o.dim = 10;
        const char *f = refused[i].field;
        if (!strcmp(f, "amsgrad"))
            o.amsgrad = 1;
        else
            *(!strcmp(f, "momentum")    ? &o.momentum
              : !strcmp(f, "alpha")     ? &o.alpha
              : !strcmp(f, "beta1")     ? &o.beta1
              : !strcmp(f, "dampening") ? &o.dampening
                                        : &o.eps) = 0.5;
        struct clopt_solver *s = NULL;
        cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG, "case %zu", i);
        cr_expect_null(s, "case %zu", i);
        cr_expect_str_eq(clopt_errmsg(ctx), refused[i].message, "case %zu", i);
        clopt_solver_destroy(s);
    }
    /* lr, weight_decay, maximize, clip_value and clip_norm: every optimizer uses them. */
    struct clopt_options o;
    clopt_options_init(&o);
    o.optimizer = "gd";
    o.dim = 10;
    o.lr = 0.01;
    o.weight_decay = 0.1;
    o.maximize = 1;
    o.clip_value = 1;
    o.clip_norm = 1;
    struct clopt_solver *s = NULL;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
}

Test(optimizers, divergence_replay_restores_optimizer_state)
{
    /* Momentum with a huge step diverges; the kept theta must be the one a direct run of
     * that many iterations gives, which needs the velocity replayed too. */
    struct clopt_options o;
    clopt_options_init(&o);
    o.optimizer = "momentum";
    o.lr = 2.0;
    o.dim = 100;
    o.max_iters = 1000;
    o.init = CLOPT_INIT_CONST;
    o.init_value = 1.0;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_ERR_DIVERGED);
    float kept[100], direct[100];
    cr_assert_eq(clopt_solver_read_theta(s, kept, CLOPT_FLOAT, 0, 100), CLOPT_OK);
    clopt_solver_destroy(s);
    o.max_iters = r.iterations;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r2;
    cr_assert_eq(clopt_solver_run(s, &r2), CLOPT_STOP_MAX_ITERS);
    cr_assert_eq(clopt_solver_read_theta(s, direct, CLOPT_FLOAT, 0, 100), CLOPT_OK);
    cr_expect_eq(memcmp(kept, direct, sizeof kept), 0);
    clopt_solver_destroy(s);
}

Test(optimizers, schedules_follow_their_formulas)
{
    struct clopt_schedule sch;
    const char *why = NULL;
    const double pi = 3.14159265358979323846;
    cr_assert_eq(clopt_schedule_parse("step:3:0.5", &sch, &why), 0, "%s", why);
    cr_expect_eq(clopt_schedule_lr(&sch, 1.0, 2), 1.0);
    cr_expect_eq(clopt_schedule_lr(&sch, 1.0, 3), 0.5);
    cr_expect_eq(clopt_schedule_lr(&sch, 1.0, 7), 0.25);
    cr_assert_eq(clopt_schedule_parse("exp:0.9", &sch, &why), 0, "%s", why);
    cr_expect(close_enough(clopt_schedule_lr(&sch, 2.0, 5), 2.0 * pow(0.9, 5), 1e-15, 0));
    cr_assert_eq(clopt_schedule_parse("cosine:10:0.1", &sch, &why), 0, "%s", why);
    cr_expect(close_enough(clopt_schedule_lr(&sch, 1.0, 0), 1.0, 1e-15, 0));
    cr_expect(close_enough(clopt_schedule_lr(&sch, 1.0, 5), 0.1 + 0.9 * 0.5, 1e-15, 0));
    cr_expect(close_enough(clopt_schedule_lr(&sch, 1.0, 10), 0.1, 1e-15, 0));
    cr_assert_eq(clopt_schedule_parse("warmup:4+cosine:10", &sch, &why), 0, "%s", why);
    cr_expect(close_enough(clopt_schedule_lr(&sch, 1.0, 0), 0.25, 1e-15, 0));
    cr_expect(close_enough(clopt_schedule_lr(&sch, 1.0, 3), 1.0, 1e-15, 0));
    cr_expect(
        close_enough(clopt_schedule_lr(&sch, 1.0, 4 + 3), 0.5 * (1 + cos(pi * 3 / 10)), 1e-15, 0));
    cr_assert_eq(clopt_schedule_parse(NULL, &sch, &why), 0);
    cr_expect_eq(clopt_schedule_lr(&sch, 0.3, 1000), 0.3);
    const char *bad[] = {"step:3",     "exp:-1", "cosine:0", "warmup:0", "warmup:3+warmup:2",
                         "constant:1", "linear"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; ++i)
        cr_expect_eq(clopt_schedule_parse(bad[i], &sch, &why), -1, "'%s' accepted", bad[i]);
}

static int record_losses(void *user, const struct clopt_progress *p)
{
    double *losses = user;
    if (p->iteration < 4)
        losses[p->iteration] = p->loss;
    return 0;
}

/* A value written with more characters than a fixed field once held is read whole, never cut
 * (0.9 as 9 and 62 zeros then e-63 was read as 9e62), and one past the length limit is
 * refused. */
Test(optimizers, long_schedule_values_are_read_whole)
{
    char spec[300] = "exp:9";
    for (int i = 0; i < 62; ++i)
        strcat(spec, "0");
    strcat(spec, "e-63");
    struct clopt_schedule sch;
    const char *why = NULL;
    cr_assert_eq(clopt_schedule_parse(spec, &sch, &why), 0, "%s", why);
    cr_expect_eq(sch.gamma, 0.9);
    char warm[300] = "warmup:";
    for (int i = 0; i < 70; ++i)
        strcat(warm, "0");
    strcat(warm, "5+step:");
    for (int i = 0; i < 70; ++i)
        strcat(warm, "0");
    strcat(warm, "3:0.5");
    cr_assert_eq(clopt_schedule_parse(warm, &sch, &why), 0, "%s", why);
    cr_expect_eq(sch.warmup, 5);
    cr_expect_eq(sch.every, 3);
    char too_long[300];
    memset(too_long, '0', 299);
    memcpy(too_long, "exp:0.", 6);
    too_long[299] = '\0';
    cr_expect_eq(clopt_schedule_parse(too_long, &sch, &why), -1);
    cr_expect_str_eq(why, "schedule too long");
}

Test(optimizers, clip_norm_reports_the_loss_of_each_iterate)
{
    /* theta = 1 everywhere: ||g|| = 2 sqrt(n) and clipping to 1 moves every element by
     * lr / sqrt(n) per step, so L(theta_t) = n (1 - t lr / sqrt(n))^2. */
    const size_t n = 1000;
    const double lr = 0.5;
    double losses[4] = {NAN, NAN, NAN, NAN};
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = n;
    o.init = CLOPT_INIT_CONST;
    o.init_value = 1.0;
    o.lr = lr;
    o.clip_norm = 1.0;
    o.max_iters = 4;
    o.progress = record_losses;
    o.progress_user = losses;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result r;
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS, "%s", clopt_errmsg(ctx));
    for (int t = 0; t < 4; ++t) {
        const double x = 1.0 - t * lr / sqrt((double)n);
        cr_expect(close_enough(losses[t], (double)n * x * x, 1e-6, 0), "t = %d: %.17g vs %.17g", t,
                  losses[t], (double)n * x * x);
    }
    clopt_solver_destroy(s);
}

Test(optimizers, multimodal_objectives_reach_their_known_minima)
{
    SKIP_WITHOUT_FP64();
    /* From inside the global minimum's basin, gradient descent finds it within 300 steps:
     * Styblinski-Tang from -3 (minimum -39.16616570377142 per element at -2.9035...),
     * Rastrigin from U[-0.4, 0.4) (minimum 0 at 0). */
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = 1000;
    o.max_iters = 300;
    o.objective = "styblinski_tang";
    o.init = CLOPT_INIT_CONST;
    o.init_value = -3.0;
    o.lr = 0.01;
    o.precision = CLOPT_DOUBLE;
    struct clopt_solver *s = NULL;
    struct clopt_result r;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS);
    cr_expect(close_enough(r.loss, -39.16616570377142 * 1000, 1e-9, 0), "loss %.17g", r.loss);
    clopt_solver_destroy(s);
    o.objective = "rastrigin";
    o.init = CLOPT_INIT_UNIFORM;
    o.init_value = 0.4;
    o.lr = 0.004;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_run(s, &r), CLOPT_STOP_MAX_ITERS);
    cr_expect_leq(r.loss, 1e-10, "loss %g", r.loss);
    clopt_solver_destroy(s);
}

/* Copies theta, the state vectors and the step count of one solver into a fresh one, as a
 * resume from a checkpoint would. */
static void transplant(struct clopt_solver *from, struct clopt_solver *to, size_t n)
{
    double *buffer = malloc(n * sizeof *buffer);
    cr_assert_not_null(buffer);
    cr_assert_eq(clopt_solver_read_theta(from, buffer, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    cr_assert_eq(clopt_solver_write_theta(to, buffer, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    for (size_t k = 0; k < clopt_solver_state_count(from); ++k) {
        cr_assert_eq(clopt_solver_read_state(from, k, buffer, CLOPT_DOUBLE, 0, n), CLOPT_OK);
        cr_assert_eq(clopt_solver_write_state(to, k, buffer, CLOPT_DOUBLE, 0, n), CLOPT_OK);
    }
    clopt_solver_set_steps(to, clopt_solver_steps(from));
    free(buffer);
}

Test(optimizers, written_state_and_step_count_continue_a_run_exactly)
{
    SKIP_WITHOUT_FP64();
    const char *names[] = {"momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"};
    const size_t n = 777;
    for (size_t i = 0; i < sizeof names / sizeof *names; ++i) {
        struct clopt_options o;
        clopt_options_init(&o);
        o.optimizer = names[i];
        o.dim = n;
        o.seed = 5;
        o.max_iters = 5;
        o.precision = CLOPT_DOUBLE;
        struct clopt_solver *straight = NULL, *first = NULL, *resumed = NULL;
        struct clopt_result r;
        cr_assert_eq(clopt_solver_create(&straight, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_create(&first, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_assert_eq(clopt_solver_run(first, &r), CLOPT_STOP_MAX_ITERS);
        cr_assert_eq(clopt_solver_run(straight, &r), CLOPT_STOP_MAX_ITERS);
        cr_assert_eq(clopt_solver_run(straight, &r), CLOPT_STOP_MAX_ITERS);
        o.init = CLOPT_INIT_NONE;
        cr_assert_eq(clopt_solver_create(&resumed, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        transplant(first, resumed, n);
        cr_assert_eq(clopt_solver_run(resumed, &r), CLOPT_STOP_MAX_ITERS);
        double a[777], b[777];
        cr_assert_eq(clopt_solver_read_theta(straight, a, CLOPT_DOUBLE, 0, n), CLOPT_OK);
        cr_assert_eq(clopt_solver_read_theta(resumed, b, CLOPT_DOUBLE, 0, n), CLOPT_OK);
        cr_expect_eq(memcmp(a, b, sizeof a), 0, "%s: 5 + 5 steps differ from 10", names[i]);
        clopt_solver_destroy(straight);
        clopt_solver_destroy(first);
        clopt_solver_destroy(resumed);
    }
}

/* lbfgs and cg checkpoints: a run stopped at iteration K and resumed to N ends with the bits
 * of one that ran to N at once, whether the checkpoint is the closing one, a periodic one
 * (--checkpoint-every) or the one a stop request (SIGINT/SIGTERM's flag) writes; on a 1-D
 * stencil objective split into many shards, float and double. */
#include "testutil.h"
#include "internal.h" /* clopt_crc32c, to forge a matching checksum */

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

CONTEXT_TEMP_DIR_SUITE(qn_resume);

#define N 1000
#define ITERS 25

struct watch {
    uint64_t at;                 /* the iteration it acts at */
    const char *from, *to;       /* renames from to `to` there (a periodic checkpoint kept) */
    volatile sig_atomic_t *stop; /* or sets *stop there, as the CLI's signal handler does */
};

static int on_progress(void *user, const struct clopt_progress *p)
{
    struct watch *w = user;
    if (p->iteration != w->at)
        return 0;
    if (w->from)
        cr_assert_eq(rename(w->from, w->to), 0, "the periodic checkpoint is not on disk");
    if (w->stop)
        *w->stop = 1;
    return 0;
}

static void options(struct clopt_options *o, const char *optimizer, enum clopt_precision prec)
{
    clopt_options_init(o);
    o->objective = "rosenbrock"; /* a 1-D stencil: halos between the shards */
    o->dim = N;
    o->optimizer = optimizer;
    o->precision = prec;
    o->init = CLOPT_INIT_NORMAL;
    o->init_value = 0.5;
    o->seed = 11;
    o->max_iters = ITERS;
    o->knobs.work_group = 4;
    o->knobs.elems_per_item = 8;
    const size_t elem = prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    o->max_shard_bytes = 3 * 32 * elem; /* 96 elements per shard */
}

/* Runs o (resuming from `resume` when given) and returns its theta in out. */
static int run(struct clopt_options *o, const char *resume, void *out, struct clopt_result *res,
               struct clopt_checkpoint_report *report)
{
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, o), CLOPT_OK, "create: %s", clopt_errmsg(ctx));
    if (resume)
        cr_assert_eq(clopt_solver_resume(s, resume), CLOPT_OK, "resume: %s", clopt_errmsg(ctx));
    const int status = clopt_solver_run(s, res);
    cr_assert(status > 0, "run: %d %s", status, clopt_errmsg(ctx));
    cr_assert_eq(clopt_solver_read_theta(s, out, o->precision, 0, N), CLOPT_OK);
    if (report)
        cr_assert_eq(clopt_solver_checkpoint_report(s, report), CLOPT_OK);
    clopt_solver_destroy(s);
    return status;
}

static void same(const char *what, const char *optimizer, const double *a,
                 const struct clopt_result *ra, const double *b, const struct clopt_result *rb,
                 size_t elem)
{
    cr_expect_gt(rb->shards, 10);
    cr_expect_eq(ra->iterations, rb->iterations, "%s %s: iterations", what, optimizer);
    cr_expect_eq(ra->evaluations, rb->evaluations, "%s %s: evaluations", what, optimizer);
    cr_expect(memcmp(&ra->loss, &rb->loss, sizeof ra->loss) == 0, "%s %s: loss %.17g vs %.17g",
              what, optimizer, ra->loss, rb->loss);
    cr_expect(memcmp(a, b, N * elem) == 0,
              "%s %s (%zu-byte): theta differs from the run "
              "without a stop",
              what, optimizer, elem);
}

static void resume_bits(const char *optimizer, enum clopt_precision prec)
{
    const size_t elem = prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    double full[N], part[N];
    struct clopt_result rf, rp;
    struct clopt_options o;
    options(&o, optimizer, prec);
    run(&o, NULL, full, &rf, NULL);
    cr_assert_eq(rf.iterations, ITERS, "%s: the run should reach the iteration limit", optimizer);

    /* The closing checkpoint of a run with a lower limit. */
    char *path = path_in(dir, "closing.ckpt");
    options(&o, optimizer, prec);
    o.max_iters = 10;
    o.checkpoint = path;
    struct clopt_checkpoint_report report;
    run(&o, NULL, part, &rp, &report);
    cr_expect_eq(report.written, 1);
    cr_expect(report.final_written);
    options(&o, optimizer, prec);
    run(&o, path, part, &rp, NULL);
    same("closing checkpoint", optimizer, full, &rf, part, &rp, elem);

    /* Periodic checkpoints (7, 14, 21, then the closing one at 25): the one at 14 is kept aside
     * and resumed. */
    char *kept = path_in(dir, "periodic.ckpt");
    struct watch w = {.at = 15, .from = path, .to = kept};
    options(&o, optimizer, prec);
    o.checkpoint = path;
    o.checkpoint_every = 7;
    o.progress = on_progress;
    o.progress_user = &w;
    run(&o, NULL, part, &rp, &report);
    cr_expect_eq(report.written, 4, "%s: checkpoints written", optimizer);
    cr_expect_eq(report.last_written, ITERS);
    same("checkpoint-every run", optimizer, full, &rf, part, &rp, elem);
    options(&o, optimizer, prec);
    run(&o, kept, part, &rp, NULL);
    same("periodic checkpoint", optimizer, full, &rf, part, &rp, elem);
    /* The closing one at the limit: nothing is left to do. */
    run(&o, path, part, &rp, NULL);
    same("checkpoint at the limit", optimizer, full, &rf, part, &rp, elem);

    /* A stop request (the flag the CLI's SIGINT/SIGTERM handler sets) at iteration 12. */
    volatile sig_atomic_t stop = 0;
    struct watch ws = {.at = 12, .stop = &stop};
    options(&o, optimizer, prec);
    o.checkpoint = path;
    o.progress = on_progress;
    o.progress_user = &ws;
    o.stop = &stop;
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_solver_run(s, &rp), CLOPT_STOP_CANCELLED);
    cr_expect_eq(rp.iterations, 12);
    cr_assert_eq(clopt_solver_checkpoint_report(s, &report), CLOPT_OK);
    cr_expect(report.final_written && report.last_written == 12);
    clopt_solver_destroy(s);
    options(&o, optimizer, prec);
    run(&o, path, part, &rp, NULL);
    same("stop request", optimizer, full, &rf, part, &rp, elem);
    free(kept);
    free(path);
}

Test(qn_resume, lbfgs_double)
{
    resume_bits("lbfgs", CLOPT_DOUBLE);
}

Test(qn_resume, lbfgs_float)
{
    resume_bits("lbfgs", CLOPT_FLOAT);
}

Test(qn_resume, cg_double)
{
    resume_bits("cg", CLOPT_DOUBLE);
}

Test(qn_resume, cg_float)
{
    resume_bits("cg", CLOPT_FLOAT);
}

/* A checkpoint of another optimizer, history or dot-product tile is refused with one line. */
Test(qn_resume, other_settings_are_refused)
{
    char *path = path_in(dir, "lbfgs.ckpt");
    struct clopt_options o;
    options(&o, "lbfgs", CLOPT_DOUBLE);
    o.max_iters = 3;
    o.checkpoint = path;
    double theta[N];
    struct clopt_result res;
    run(&o, NULL, theta, &res, NULL);
    const char *others[] = {"cg", "adam"};
    for (size_t i = 0; i < 2; ++i) {
        options(&o, others[i], CLOPT_DOUBLE);
        struct clopt_solver *s;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_expect_eq(clopt_solver_resume(s, path), CLOPT_ERR_INVALID_ARG, "%s", others[i]);
        cr_expect(strstr(clopt_errmsg(ctx), "optimizer") != NULL, "%s", clopt_errmsg(ctx));
        clopt_solver_destroy(s);
    }
    options(&o, "lbfgs", CLOPT_DOUBLE);
    o.history = 5;
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_solver_resume(s, path), CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(clopt_errmsg(ctx), "history") != NULL, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    /* Other knobs fold the dot products in other tiles: other bits, so refused. */
    options(&o, "lbfgs", CLOPT_DOUBLE);
    o.knobs.work_group = 8;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_solver_resume(s, path), CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(clopt_errmsg(ctx), "--tune") != NULL, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    free(path);
}

/* `clopt checkpoint info` and `export` read the lbfgs/cg layout: the iteration, and x as
 * theta. */
Test(qn_resume, info_and_export)
{
    char *path = path_in(dir, "cg.ckpt");
    char *out = path_in(dir, "theta.npy");
    struct clopt_options o;
    options(&o, "cg", CLOPT_DOUBLE);
    o.max_iters = 4;
    o.checkpoint = path;
    double theta[N];
    struct clopt_result res;
    run(&o, NULL, theta, &res, NULL);
    static struct clopt_checkpoint_info info;
    char err[512] = "";
    cr_assert_eq(clopt_checkpoint_info(path, &info, err, sizeof err), CLOPT_OK, "%s", err);
    cr_expect_eq(info.iteration, 4);
    cr_expect_eq(info.n, N);
    cr_expect_str_eq(info.optimizer, "cg");
    cr_assert_eq(clopt_checkpoint_export(path, out, NULL, err, sizeof err), CLOPT_OK, "%s", err);
    /* The .npy's data are its last N doubles. */
    FILE *f = fopen(out, "rb");
    cr_assert(f);
    double saved[N];
    cr_assert_eq(fseek(f, -(long)sizeof saved, SEEK_END), 0);
    cr_assert_eq(fread(saved, sizeof *saved, N, f), N);
    fclose(f);
    cr_expect(memcmp(saved, theta, sizeof saved) == 0, "export's theta is not the run's");
    free(out);
    free(path);
}

/* Offset in a checkpoint image of the data of its section number `index` (0: config), and
 * its length. */
static size_t section_at(const unsigned char *b, size_t index, uint64_t *length)
{
    size_t at = 20; /* the file's header */
    for (size_t i = 0;; ++i) {
        memcpy(length, b + at + 8, 8);
        if (i == index)
            return at + 20;
        at += 20 + (size_t)*length + 4;
    }
}

/* theta[0] of the file set to v, with the theta section's checksum made to match, so that
 * only the reader's own checks can tell. */
static void write_with_theta0(const char *from, const char *to, double v)
{
    size_t size;
    unsigned char *b = read_binary(from, &size);
    cr_assert(b);
    uint64_t length;
    const size_t theta = section_at(b, 2, &length);
    memcpy(b + theta, &v, sizeof v);
    const uint32_t crc = clopt_crc32c(0, b + theta, (size_t)length);
    memcpy(b + theta + length, &crc, 4);
    FILE *f = fopen(to, "wb");
    cr_assert(f && fwrite(b, 1, size, f) == size && fclose(f) == 0);
    free(b);
}

/* The file's own checks, now made while it streams (no process holds theta or the vectors
 * whole): a theta that is not the x of the vectors, or not finite, is refused with one line
 * even where the checksums hold; the file as written resumes. */
Test(qn_resume, a_theta_that_is_not_x_or_not_finite_is_refused)
{
    char *path = path_in(dir, "x.ckpt"), *bad = path_in(dir, "bad.ckpt");
    struct clopt_options o;
    options(&o, "lbfgs", CLOPT_DOUBLE);
    o.max_iters = 3;
    o.checkpoint = path;
    double theta[N];
    struct clopt_result res;
    run(&o, NULL, theta, &res, NULL);
    o.checkpoint = NULL;
    const double values[] = {theta[0] + 1, NAN};
    const char *says[] = {"is not the x", "not finite"};
    for (size_t i = 0; i < 2; ++i) {
        write_with_theta0(path, bad, values[i]);
        struct clopt_solver *s;
        cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
        cr_expect_eq(clopt_solver_resume(s, bad), CLOPT_ERR_BAD_FILE, "%s", says[i]);
        cr_expect(strstr(clopt_errmsg(ctx), says[i]) != NULL, "%s", clopt_errmsg(ctx));
        clopt_solver_destroy(s);
    }
    struct clopt_solver *s;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_solver_resume(s, path), CLOPT_OK, "%s", clopt_errmsg(ctx));
    clopt_solver_destroy(s);
    free(path), free(bad);
}

/* Tuning through the library alone: knobs text, the tuner, the tuning database, and a run
 * whose knobs come from it; no CLI. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TUNE_DIM 4096
#define TUNE_ITERS 4
#define KNOBS_TEXT 160

CONTEXT_TEMP_DIR_SUITE(tune);

static int same_knobs(const struct clopt_knobs *a, const struct clopt_knobs *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* Knob sets made from every value the text can name: parse(format(k)) == k. */
Test(tune, knobs_text_round_trips)
{
    const char *texts[] = {
        "wg=16,epw=4096,vw=16,fblock=16,layout=contig,partials=item,rwg=1,acc=double,gpcu=0,"
        "pf=1024,simd=512,fuse=1",
        "wg=256,epw=16,vw=1,fblock=1,layout=strided,partials=group,rwg=256,acc=kahan,gpcu=8,"
        "pf=off,simd=256,fuse=32",
        "wg=1,epw=1,vw=1,fblock=1024,layout=1,partials=item,rwg=1024,acc=double,gpcu=1024,"
        "pf=2,simd=512,fuse=8",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; ++i) {
        struct clopt_knobs k, again;
        memset(&k, 0, sizeof k);
        memset(&again, 0, sizeof again);
        char err[256], text[KNOBS_TEXT];
        cr_assert_eq(clopt_knobs_parse(texts[i], &k, err, sizeof err), CLOPT_OK, "%s", err);
        cr_assert_eq(clopt_knobs_format(&k, text, sizeof text), CLOPT_OK);
        cr_assert_eq(clopt_knobs_parse(text, &again, err, sizeof err), CLOPT_OK, "%s", err);
        cr_expect(same_knobs(&k, &again), "%s -> %s", texts[i], text);
    }
    /* Zero fields print as the default (gpcu's 0 is 0, fuse's 0 means 1). */
    struct clopt_knobs zero;
    memset(&zero, 0, sizeof zero);
    char text[KNOBS_TEXT];
    cr_assert_eq(clopt_knobs_format(&zero, text, sizeof text), CLOPT_OK);
    cr_expect_str_eq(text, "wg=def,epw=def,vw=def,fblock=def,layout=def,partials=def,rwg=def,"
                           "acc=def,gpcu=0,pf=def,simd=def,fuse=1");
    /* The three names of one knob. */
    struct clopt_knobs k;
    memset(&k, 0, sizeof k);
    cr_assert_eq(clopt_knobs_parse("fblock=64", &k, NULL, 0), CLOPT_OK);
    cr_expect_eq(k.loss_block, 64);
    const char *field = NULL, *name;
    size_t count = 0;
    for (size_t i = 0; (name = clopt_knob_name(i, &field)) != NULL; ++i, ++count)
        if (!strcmp(name, "fblock"))
            cr_expect_str_eq(field, "loss_block");
    cr_expect_eq(count, 12);
}

Test(tune, knobs_text_errors_name_the_item)
{
    const struct {
        const char *text, *message;
    } cases[] = {
        {"wg", "'wg': need KEY=VALUE"},
        {"bogus=1", "unknown knob 'bogus'"},
        {"layout=diagonal", "layout=diagonal: use contig or strided"},
        {"partials=1", "partials=1: use item or group"},
        {"acc=float", "acc=float: use double or kahan"},
        {"simd=384", "simd=384: use 256 or 512"},
        {"fuse=0", "fuse=0: must be at least 1"},
        {"fuse=33", "fuse '33'"},
        {"gpcu=1025", "<= 1024"},
        {"pf=1", "pf=1: use off or a distance of at least 2 elements"},
        {"wg=x", "wg 'x'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        struct clopt_knobs k;
        memset(&k, 0, sizeof k);
        char err[256] = "";
        cr_expect_eq(clopt_knobs_parse(cases[i].text, &k, err, sizeof err), CLOPT_ERR_INVALID_ARG,
                     "%s", cases[i].text);
        cr_expect(strstr(err, cases[i].message) != NULL, "%s: %s", cases[i].text, err);
    }
    char err[256];
    cr_expect_eq(clopt_tune_space_check("wg=4|16,epw=1024", err, sizeof err), CLOPT_OK);
    cr_expect_eq(clopt_tune_space_check("foo=1", err, sizeof err), CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(err, "tune_options.space") != NULL, "%s", err);
    cr_expect_eq(clopt_tune_space_check("wg=", err, sizeof err), CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(err, "no values") != NULL, "%s", err);
}

static void small_problem(struct clopt_options *o)
{
    clopt_options_init(o);
    o->dim = TUNE_DIM;
    o->max_iters = TUNE_ITERS;
}

static int count_progress(void *user, const struct clopt_tune_progress *p)
{
    size_t *calls = user;
    ++*calls;
    cr_expect(p->index <= p->count);
    return 0;
}

/* tune -> database -> run: the run's knobs are the stored winner. */
Test(tune, tune_store_lookup_run)
{
    struct clopt_options problem;
    small_problem(&problem);
    struct clopt_tune_options topts;
    clopt_tune_options_init(&topts);
    cr_expect_eq(topts.reps, 3);
    topts.space = "wg=4|16,epw=256,vw=8|16";
    topts.budget_seconds = 60;
    topts.reps = 1;
    size_t calls = 0;
    topts.progress = count_progress;
    topts.progress_user = &calls;
    struct clopt_tune_result r;
    const int status = clopt_tune(ctx, &problem, &topts, &r);
    cr_assert_eq(status, CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(r.count, 4);
    cr_expect_eq(r.tried, 4);
    cr_expect_eq(calls, 1 + r.tried);
    for (size_t c = 0; c < r.tried; ++c)
        cr_expect(r.candidates[c].ok && strstr(r.candidates[c].note, "bit-identical"), "%s",
                  r.candidates[c].note);
    cr_expect(r.knobs.work_group != 0 && r.knobs.elems_per_item != 0);

    char *path = path_in(dir, "sub/tuning.json");
    struct clopt_tuning_db *db = NULL;
    char err[256];
    cr_assert_eq(clopt_tuning_db_open(&db, path, err, sizeof err), CLOPT_OK, "%s", err);
    cr_expect_str_eq(clopt_tuning_db_path(db), path);
    struct clopt_knobs found_knobs;
    int found = 1;
    cr_assert_eq(clopt_tuning_db_lookup(db, ctx, &problem, &found_knobs, &found, NULL, 0),
                 CLOPT_OK);
    cr_expect_eq(found, 0, "no file yet");
    int replaced = 1;
    cr_assert_eq(clopt_tuning_db_store(db, ctx, &problem, &r.knobs, r.gbytes_per_second,
                                       r.default_gbytes_per_second, &replaced),
                 CLOPT_OK, "%s", clopt_tuning_db_errmsg(db));
    cr_expect_eq(replaced, 0);
    char how[64];
    cr_assert_eq(clopt_tuning_db_lookup(db, ctx, &problem, &found_knobs, &found, how, sizeof how),
                 CLOPT_OK, "%s", clopt_tuning_db_errmsg(db));
    cr_assert_eq(found, 1);
    cr_expect_str_eq(how, "exact size class 2^12");
    cr_expect(same_knobs(&found_knobs, &r.knobs));

    /* A run with the stored knobs uses exactly them. */
    problem.knobs = found_knobs;
    struct clopt_solver *solver = NULL;
    cr_assert_eq(clopt_solver_create(&solver, ctx, &problem), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_result result;
    cr_expect_eq(clopt_solver_run(solver, &result), CLOPT_STOP_MAX_ITERS);
    cr_expect(same_knobs(&result.knobs, &r.knobs));
    clopt_solver_destroy(solver);

    /* A corrupted file: the lookup says so, a store replaces it. */
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{{{ not json", f);
    fclose(f);
    cr_expect_eq(clopt_tuning_db_lookup(db, ctx, &problem, &found_knobs, &found, NULL, 0),
                 CLOPT_ERR_BAD_FILE);
    cr_expect(strstr(clopt_tuning_db_errmsg(db), "corrupted") != NULL);
    cr_expect_eq(clopt_tuning_db_store(db, ctx, &problem, &r.knobs, 1, 1, &replaced), CLOPT_OK);
    cr_expect_eq(replaced, 1);
    /* Knobs the database cannot hold. */
    struct clopt_knobs zero;
    memset(&zero, 0, sizeof zero);
    cr_expect_eq(clopt_tuning_db_store(db, ctx, &problem, &zero, 1, 1, NULL),
                 CLOPT_ERR_INVALID_ARG);
    cr_expect(strstr(clopt_tuning_db_errmsg(db), "knobs.work_group") != NULL);
    clopt_tuning_db_close(db);
    clopt_tune_result_free(&r);
    free(path);
}

/* Every candidate refused (fuse needs more iterations than the run has): bad input. */
Test(tune, refused_candidates_are_invalid_input)
{
    struct clopt_options problem;
    small_problem(&problem);
    struct clopt_tune_options topts;
    clopt_tune_options_init(&topts);
    topts.space = "wg=16,epw=256,vw=8,fuse=8";
    topts.reps = 1;
    struct clopt_tune_result r;
    cr_expect_eq(clopt_tune(ctx, &problem, &topts, &r), CLOPT_ERR_INVALID_ARG);
    cr_expect_eq(r.tried, 1);
    cr_expect(strstr(clopt_errmsg(ctx), "options.max_iters") != NULL, "%s", clopt_errmsg(ctx));
    clopt_tune_result_free(&r);
    topts.space = "wg=3x";
    cr_expect_eq(clopt_tune(ctx, &problem, &topts, &r), CLOPT_ERR_INVALID_ARG);
    clopt_tune_result_free(&r);
}

Test(tune, bench_step_times_the_step)
{
    struct clopt_options problem;
    small_problem(&problem);
    struct clopt_step_timing t;
    cr_assert_eq(clopt_bench_step(ctx, &problem, 2, &t), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(t.iterations, TUNE_ITERS);
    cr_expect_eq(t.reps, 2);
    cr_expect(t.bytes_per_element == 8, "%g", t.bytes_per_element);
    cr_expect(t.knobs.work_group != 0);
    cr_expect_eq(clopt_bench_step(ctx, &problem, 0, &t), CLOPT_ERR_INVALID_ARG);
}

/* The tuning database picks the kernels that run: a file or directory others could have
 * written, a symlink, or a FIFO is not used (a lookup says why and does not block) and is
 * never replaced (issue 16, items 6 and 12). */
Test(tune, a_database_others_could_have_written_is_not_used)
{
    struct clopt_options problem;
    clopt_options_init(&problem);
    problem.dim = TUNE_DIM;
    struct clopt_knobs knobs;
    memset(&knobs, 0, sizeof knobs);
    char err[256], *path = path_in(dir, "tuning.json");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{\"version\": 1, \"entries\": []}\n", f);
    fclose(f);
    struct clopt_tuning_db *db = NULL;
    cr_assert_eq(clopt_tuning_db_open(&db, path, err, sizeof err), CLOPT_OK, "%s", err);
    int found = 1;
    cr_expect_eq(clopt_tuning_db_lookup(db, ctx, &problem, &knobs, &found, NULL, 0), CLOPT_OK, "%s",
                 clopt_tuning_db_errmsg(db));

    cr_assert_eq(chmod(path, 0666), 0);
    cr_expect_eq(clopt_tuning_db_lookup(db, ctx, &problem, &knobs, &found, NULL, 0), CLOPT_ERR_IO);
    cr_expect(strstr(clopt_tuning_db_errmsg(db), "writable by group or others"), "%s",
              clopt_tuning_db_errmsg(db));
    struct clopt_knobs full;
    memset(&full, 0, sizeof full);
    cr_assert_eq(clopt_knobs_parse("wg=16,epw=16,vw=1,fblock=1,layout=contig,partials=item,"
                                   "rwg=1,acc=double,gpcu=0,pf=1024,simd=512,fuse=1",
                                   &full, err, sizeof err),
                 CLOPT_OK, "%s", err);
    cr_expect_eq(clopt_tuning_db_store(db, ctx, &problem, &full, 1, 1, NULL), CLOPT_ERR_IO, "%s",
                 clopt_tuning_db_errmsg(db));
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0666, "an untrusted database was replaced");
    cr_assert_eq(chmod(path, 0644), 0);

    cr_assert_eq(chmod(dir, 0777), 0);
    cr_expect_eq(clopt_tuning_db_lookup(db, ctx, &problem, &knobs, &found, NULL, 0), CLOPT_ERR_IO);
    cr_expect(strstr(clopt_tuning_db_errmsg(db), "its directory"), "%s",
              clopt_tuning_db_errmsg(db));
    cr_assert_eq(chmod(dir, 0700), 0);

    char *real = path_in(dir, "real.json");
    cr_assert_eq(rename(path, real), 0);
    cr_assert_eq(symlink(real, path), 0);
    cr_expect_eq(clopt_tuning_db_lookup(db, ctx, &problem, &knobs, &found, NULL, 0), CLOPT_ERR_IO);
    cr_expect(strstr(clopt_tuning_db_errmsg(db), "symlink"), "%s", clopt_tuning_db_errmsg(db));
    cr_assert_eq(unlink(path), 0);

    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_expect_eq(clopt_tuning_db_lookup(db, ctx, &problem, &knobs, &found, NULL, 0), CLOPT_ERR_IO);
    cr_expect(strstr(clopt_tuning_db_errmsg(db), "not a regular file"), "%s",
              clopt_tuning_db_errmsg(db));
    clopt_tuning_db_close(db);
    free(real);
    free(path);
}

/* The default path is as long as XDG_CACHE_HOME makes it: a long one was cut at 511
 * characters into the path of another directory (issue 16, item 12). */
Test(tune, a_long_xdg_cache_home_is_not_cut_short)
{
    char xdg[700];
    memset(xdg, 'x', sizeof xdg - 1);
    xdg[0] = '/';
    for (size_t k = 200; k < sizeof xdg - 1; k += 200)
        xdg[k] = '/';
    xdg[sizeof xdg - 1] = '\0';
    cr_assert_eq(setenv("XDG_CACHE_HOME", xdg, 1), 0);
    struct clopt_tuning_db *db = NULL;
    char err[256];
    cr_assert_eq(clopt_tuning_db_open(&db, NULL, err, sizeof err), CLOPT_OK, "%s", err);
    char expected[800];
    snprintf(expected, sizeof expected, "%s/clopt/tuning.json", xdg);
    cr_expect_str_eq(clopt_tuning_db_path(db), expected);
    clopt_tuning_db_close(db);
}

/* A copy of kernels/ in which upd_gd.cl is wrong in the variants with vector width 4
 * only: the step is 1.5 times too long there. */
static char *wrong_kernel_dir(void)
{
    char *kd = path_in(dir, "kernels");
    cr_assert_eq(mkdir(kd, 0700), 0);
    DIR *d = opendir(CLOPT_SOURCE_DIR "/kernels");
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".cl"))
            continue;
        char from[512];
        snprintf(from, sizeof from, "%s/kernels/%s", CLOPT_SOURCE_DIR, e->d_name);
        FILE *in = fopen(from, "rb");
        cr_assert_not_null(in);
        static char text[1 << 17];
        const size_t n = fread(text, 1, sizeof text - 1, in);
        fclose(in);
        text[n] = '\0';
        char *to = path_in(kd, e->d_name);
        FILE *out = fopen(to, "wb");
        cr_assert_not_null(out);
        const char *step = "    *x -= h0 * g;\n";
        char *at = strcmp(e->d_name, "upd_gd.cl") ? NULL : strstr(text, step);
        if (!strcmp(e->d_name, "upd_gd.cl"))
            cr_assert_not_null(at, "upd_gd.cl no longer has the line this test changes");
        if (at) {
            fwrite(text, 1, (size_t)(at - text), out);
            fputs("#if CLOPT_VW == 4\n    *x -= h0 * g * (real)1.5;\n#else\n", out);
            fputs(step, out);
            fputs("#endif\n", out);
            fputs(at + strlen(step), out);
        } else {
            fwrite(text, 1, n, out);
        }
        cr_assert_eq(fclose(out), 0);
        free(to);
    }
    closedir(d);
    return kd;
}

/* The tuner verifies every candidate against the default knobs and never chooses one
 * that computes another theta. */
Test(tune, a_wrong_candidate_is_refused, .timeout = 600)
{
    char *kd = wrong_kernel_dir();
    struct clopt_context_options copts;
    clopt_context_options_init(&copts);
    copts.kernel_dir = kd;
    struct clopt_context *wrong = NULL;
    cr_assert_eq(clopt_context_create(&wrong, &copts), CLOPT_OK, "%s", clopt_errmsg(wrong));
    struct clopt_options problem;
    small_problem(&problem);
    problem.optimizer = "gd";
    struct clopt_tune_options topts;
    clopt_tune_options_init(&topts);
    topts.reps = 1;
    /* Only the wrong candidate: nothing may be chosen. */
    topts.space = "wg=1,epw=256,vw=4";
    struct clopt_tune_result r;
    cr_expect_eq(clopt_tune(wrong, &problem, &topts, &r), CLOPT_ERR_NO_CANDIDATE, "%s",
                 clopt_errmsg(wrong));
    cr_assert_eq(r.tried, 1);
    cr_expect(!r.candidates[0].ok && !r.candidates[0].refused, "%s", r.candidates[0].note);
    cr_expect(strstr(r.candidates[0].note, "differ") != NULL, "%s", r.candidates[0].note);
    clopt_tune_result_free(&r);
    /* With a right one beside it, the right one or the defaults win, whatever the speeds. */
    topts.space = "wg=1,epw=256,vw=4|8";
    cr_assert_eq(clopt_tune(wrong, &problem, &topts, &r), CLOPT_OK, "%s", clopt_errmsg(wrong));
    cr_expect_neq(r.knobs.vector_width, 4);
    for (size_t c = 0; c < r.tried; ++c)
        cr_expect_eq(r.candidates[c].ok, r.candidates[c].knobs.vector_width != 4, "vw %zu: %s",
                     r.candidates[c].knobs.vector_width, r.candidates[c].note);
    clopt_tune_result_free(&r);
    clopt_context_destroy(wrong);
    free(kd);
}

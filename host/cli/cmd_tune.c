/* clopt tune: the library's tuner (clopt_tune) on the problem of the run options, its
 * progress and table, and the choice stored in the tuning database. */
#include "args.h"
#include "commands.h"
#include "report.h"
#include "setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_REPS 3
#define TUNE_ITERS 20

/* A library note with its names in flags, printed after fmt's text. */
static void print_note(FILE *f, const char *note)
{
    char *shown = cli_flag_names(note);
    fprintf(f, "%s\n", shown ? shown : note);
    free(shown);
}

struct tune_view {
    const struct run_args *a;
};

static int on_tune_progress(void *user, const struct clopt_tune_progress *p)
{
    const struct run_args *a = ((const struct tune_view *)user)->a;
    char text[160];
    if (a->quiet)
        return 0;
    if (p->index == 0) {
        knobs_text(p->default_knobs, text, sizeof text);
        fprintf(stderr, "clopt: tune %s, %s, %s, n = %zu: default %s: %.2f GB/s\n",
                a->opts.objective, a->opts.optimizer, precision_name(a->opts.precision),
                a->opts.dim, text, p->default_gbytes_per_second);
        return 0;
    }
    const struct clopt_tune_candidate *t = p->candidate;
    knobs_text(&t->knobs, text, sizeof text);
    if (t->ok)
        fprintf(stderr, "clopt: tune [%zu/%zu] %s: %.2f GB/s (%.2fx the default), ", p->index,
                p->count, text, t->gbytes_per_second,
                p->default_gbytes_per_second > 0
                    ? t->gbytes_per_second / p->default_gbytes_per_second
                    : 0);
    else
        fprintf(stderr, "clopt: tune [%zu/%zu] %s: ", p->index, p->count, text);
    print_note(stderr, t->note);
    return 0;
}

/* The candidates tried, in the order tried. */
static void print_table(const struct clopt_tune_result *r)
{
    char text[160];
    printf("%-108s %9s %7s  %s\n", "knobs", "GB/s", "vs def", "check");
    for (size_t c = 0; c < r->tried; ++c) {
        const struct clopt_tune_candidate *t = &r->candidates[c];
        knobs_text(&t->knobs, text, sizeof text);
        if (t->ok)
            printf("%-108s %9.2f %7.2f  ", text, t->gbytes_per_second,
                   r->default_gbytes_per_second > 0
                       ? t->gbytes_per_second / r->default_gbytes_per_second
                       : 0);
        else
            printf("%-108s %9s %7s  ", text, "-", "-");
        print_note(stdout, t->note);
    }
}

static int check_tune_args(const struct run_args *a)
{
    if (a->out_path || a->trace_path || a->init_file || a->resume_path || a->opts.checkpoint ||
        a->knobs_given || a->csv_path) {
        print_error("clopt tune searches the knobs of a run: --tune, --out, --trace, --init FILE, "
                    "--resume, --checkpoint and --csv do not apply (use --space)");
        return EXIT_USAGE;
    }
    if (a->iters_given && a->opts.max_iters == 0) {
        print_error("--iters must be at least 1 for clopt tune");
        return EXIT_USAGE;
    }
    char err[512];
    if (clopt_tune_space_check(a->space, err, sizeof err) != CLOPT_OK) {
        print_library_error(NULL, err);
        return EXIT_USAGE;
    }
    return a->json_path ? check_output_path("--json", a->json_path) : 0;
}

/* --space with '/' between a knob's values (wg=64/128: no shell quoting) in the library's
 * form (wg=64|128), as a new string; NULL when out of memory. */
static char *library_space(const char *space)
{
    char *text = strdup(space);
    for (char *c = text; c && *c; ++c)
        if (*c == '/')
            *c = '|';
    return text;
}

/* Stores the choice; the database's path when stored, else NULL after saying why. */
static const char *store_choice(const struct run_args *a, struct clopt_context *ctx,
                                const struct clopt_tune_result *r, struct clopt_tuning_db **db)
{
    char err[256];
    *db = open_tuning_db(a, err, sizeof err);
    if (!*db)
        return NULL;
    int replaced = 0;
    const int status = clopt_tuning_db_store(*db, ctx, &a->opts, &r->knobs, r->gbytes_per_second,
                                             r->default_gbytes_per_second, &replaced);
    if (replaced)
        fprintf(stderr, "clopt: warning: %s; it was replaced\n", clopt_tuning_db_errmsg(*db));
    return status == CLOPT_OK ? clopt_tuning_db_path(*db) : NULL;
}

/* The choice: stored first (a closed stdout must not lose it), then the table, the JSON
 * and the "best" line; the exit status. */
static int report_choice(const struct run_args *a, struct clopt_context *ctx,
                         const struct clopt_tune_result *r)
{
    struct clopt_tuning_db *db = NULL;
    const char *stored = store_choice(a, ctx, r, &db);
    int rc = 0;
    if (!(a->json_path && !strcmp(a->json_path, "-")))
        print_table(r);
    char text[160];
    knobs_text(&r->knobs, text, sizeof text);
    if (a->json_path) {
        cJSON *root = cJSON_CreateObject();
        int ok = root && cJSON_AddStringToObject(root, "knobs", text) &&
                 cJSON_AddNumberToObject(root, "gbytes_per_second", r->gbytes_per_second) &&
                 cJSON_AddNumberToObject(root, "default_gbytes_per_second",
                                         r->default_gbytes_per_second) &&
                 cJSON_AddNumberToObject(root, "tried", (double)r->tried) &&
                 cJSON_AddStringToObject(root, "tuning_db", stored ? stored : "");
        if (emit_json(a->json_path, root, ok))
            rc = EXIT_FAILURE;
    }
    char ratio_text[64];
    snprintf(ratio_text, sizeof ratio_text, "%.2fx the default knobs",
             r->default_gbytes_per_second > 0 ? r->gbytes_per_second / r->default_gbytes_per_second
                                              : 0);
    if (!(a->json_path && !strcmp(a->json_path, "-")))
        printf("best        %s: %.2f GB/s, %s%s%s\n", text, r->gbytes_per_second,
               r->defaults_won ? "the built-in defaults (no candidate was faster)" : ratio_text,
               stored ? "; stored in " : "", stored ? stored : "");
    if (!stored) {
        if (db)
            print_library_error(NULL, clopt_tuning_db_errmsg(db));
        else
            print_error("neither XDG_CACHE_HOME nor HOME is set: use --tuning-db FILE");
        rc = EXIT_FAILURE;
    }
    clopt_tuning_db_close(db);
    return rc;
}

int cmd_tune(int argc, char **argv)
{
    static struct run_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_run_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    char *space = a.space ? library_space(a.space) : NULL;
    if (a.space && !space) {
        print_error("out of memory");
        return EXIT_FAILURE;
    }
    a.space = space;
    struct clopt_context *ctx = NULL;
    if ((rc = check_tune_args(&a)) != 0 ||
        (rc = open_context(a.device, a.devices, a.kernel_dir, a.program_cache, &ctx)) != 0) {
        free(space);
        return rc;
    }
    struct tune_view view = {&a};
    struct clopt_tune_options topts;
    clopt_tune_options_init(&topts);
    topts.space = a.space;
    topts.budget_seconds = a.budget;
    topts.reps = a.reps ? (unsigned)a.reps : TUNE_REPS;
    topts.progress = on_tune_progress;
    topts.progress_user = &view;
    a.opts.max_iters = a.iters_given ? a.opts.max_iters : TUNE_ITERS;
    struct clopt_tune_result r;
    /* on_tune_progress prints nothing under --quiet, so muting the driver loses nothing. */
    const struct muted muted = mute_driver_output(a.quiet);
    const int status = clopt_tune(ctx, &a.opts, &topts, &r);
    restore_driver_output(muted);
    if (status != CLOPT_OK) {
        /* The table once the reference ran (its knobs are filled in then). */
        if (r.default_knobs.work_group && !(a.json_path && !strcmp(a.json_path, "-")))
            print_table(&r);
        print_library_error(NULL, clopt_errmsg(ctx));
        rc = exit_code_for(status, ends_with(a.opts.objective, ".cl") || a.kernel_dir);
    } else {
        rc = report_choice(&a, ctx, &r);
    }
    clopt_tune_result_free(&r);
    close_context(ctx, a.program_cache);
    free(space);
    return rc;
}

/* See setup.h. */
#include "setup.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int open_context(const char *device, const char *kernel_dir, const char *program_cache,
                 struct clopt_context **ctx)
{
    struct clopt_context_options copts;
    clopt_context_options_init(&copts);
    copts.device = device;
    copts.kernel_dir = kernel_dir;
    copts.program_cache = program_cache;
    const int status = clopt_context_create(ctx, &copts);
    if (status == CLOPT_OK)
        return 0;
    print_library_error(NULL, *ctx ? clopt_errmsg(*ctx) : clopt_strerror(status));
    clopt_context_destroy(*ctx);
    *ctx = NULL;
    /* A --device that matches nothing is a usage error; no device at all is not. */
    return status == CLOPT_ERR_NO_DEVICE && device && *device ? EXIT_USAGE : EXIT_FAILURE;
}

void close_context(struct clopt_context *ctx, const char *cache_dir)
{
    struct clopt_cache_stats st;
    if (ctx && cache_dir && clopt_context_cache_stats(ctx, &st) == CLOPT_OK && st.store_failures)
        fprintf(stderr,
                "clopt: warning: could not store compiled kernels in the program cache '%s' "
                "(%llu failed): check the directory, or use --program-cache off\n",
                cache_dir, (unsigned long long)st.store_failures);
    clopt_context_destroy(ctx);
}

struct clopt_tuning_db *open_tuning_db(const struct run_args *a, char *err, size_t errlen)
{
    const char *env = getenv("CLOPT_TUNING_DB");
    const char *path = a->tuning_db ? a->tuning_db : env && *env ? env : NULL;
    struct clopt_tuning_db *db = NULL;
    clopt_tuning_db_open(&db, path, err, errlen);
    return db;
}

void knobs_from_database(struct run_args *a, struct clopt_context *ctx)
{
    char how[128], err[256];
    snprintf(a->knob_source, sizeof a->knob_source, "%s",
             a->knobs_given ? "--tune" : "built-in defaults");
    if (a->knobs_given)
        return;
    struct clopt_tuning_db *db = open_tuning_db(a, err, sizeof err);
    if (!db)
        return; /* no home for the default database: the built-in knobs */
    struct clopt_knobs knobs;
    int found = 0;
    const int status = clopt_tuning_db_lookup(db, ctx, &a->opts, &knobs, &found, how, sizeof how);
    if (status == CLOPT_OK && found) {
        a->opts.knobs = knobs;
        char *shown = cli_flag_names(how);
        snprintf(a->knob_source, sizeof a->knob_source, "tuning database %s, %s",
                 clopt_tuning_db_path(db), shown ? shown : how);
        free(shown);
    } else if (status != CLOPT_OK) {
        fprintf(stderr, "clopt: warning: %s; using the built-in knobs\n",
                clopt_tuning_db_errmsg(db));
        snprintf(a->knob_source, sizeof a->knob_source,
                 "built-in defaults (the tuning database is corrupted)");
    }
    clopt_tuning_db_close(db);
}

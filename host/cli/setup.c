/* See setup.h. */
#include "setup.h"
#include "report.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_HOME_MAX 3840 /* PATH_MAX (4096) less room for the caches' own names */

/* PoCL keeps its kernel cache under $XDG_CACHE_HOME and finds no device at all when it
 * cannot make a directory there: say so instead of "no OpenCL device found". */
static int check_cache_home(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    struct stat st;
    const char *why;
    if (!xdg || !*xdg)
        return 0;
    /* Room for what goes under it: clopt/programs/<32 hex digits>, PoCL's kcache tree. */
    if (strlen(xdg) > CACHE_HOME_MAX) {
        print_error("XDG_CACHE_HOME is %zu characters long: the caches under it would not fit "
                    "in a path (at most %d characters for it); use a shorter path",
                    strlen(xdg), CACHE_HOME_MAX);
        return EXIT_USAGE;
    }
    if (stat(xdg, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        why = "a file is in the way";
    } else if (errno == ENOENT) {
        return 0; /* made when first needed */
    } else {
        why = errno == ENOTDIR ? "a file is in the way" : strerror(errno);
    }
    print_error("XDG_CACHE_HOME '%s' is not a directory (%s): the OpenCL driver and clopt keep "
                "their caches there; point it at a directory or unset it",
                xdg, why);
    return EXIT_USAGE;
}

struct muted mute_driver_output(int quiet)
{
    struct muted m = {-1, NULL};
    if (!quiet)
        return m;
    fflush(stderr);
    m.capture = tmpfile();
    m.saved = m.capture ? dup(STDERR_FILENO) : -1;
    if (m.saved < 0 || dup2(fileno(m.capture), STDERR_FILENO) < 0) {
        if (m.saved >= 0)
            close(m.saved);
        if (m.capture)
            fclose(m.capture);
        return (struct muted){-1, NULL};
    }
    return m;
}

/* "1 error generated.", "2 warnings generated.", "1 warning and 1 error generated.": what
 * clang's diagnostics engine prints by itself when PoCL builds a program. */
static int is_compiler_chatter(const char *line)
{
    return isdigit((unsigned char)line[0]) && strstr(line, " generated.") != NULL;
}

void restore_driver_output(struct muted m)
{
    if (m.saved < 0)
        return;
    fflush(stderr);
    dup2(m.saved, STDERR_FILENO);
    close(m.saved);
    /* Everything else is passed on, in order: a sanitizer's report, fault-injection
     * traces, a driver's real warning. */
    char line[1024];
    rewind(m.capture);
    while (fgets(line, sizeof line, m.capture))
        if (!is_compiler_chatter(line))
            fputs(line, stderr);
    fclose(m.capture);
}

int open_context(const char *device, const char *devices, const char *kernel_dir,
                 const char *program_cache, struct clopt_context **ctx)
{
    *ctx = NULL;
    const int rc = check_cache_home();
    if (rc)
        return rc;
    struct clopt_context_options copts;
    clopt_context_options_init(&copts);
    copts.device = device;
    copts.devices = devices;
    copts.kernel_dir = kernel_dir;
    copts.program_cache = program_cache;
    const int status = clopt_context_create(ctx, &copts);
    if (status == CLOPT_OK)
        return 0;
    print_library_error(NULL, *ctx ? clopt_errmsg(*ctx) : clopt_strerror(status));
    clopt_context_destroy(*ctx);
    *ctx = NULL;
    /* A --device that matches nothing is a usage error; no device at all is not. */
    if (status == CLOPT_ERR_INVALID_ARG)
        return EXIT_USAGE; /* a malformed or unfit --devices list */
    return status == CLOPT_ERR_NO_DEVICE && ((device && *device) || (devices && *devices))
               ? EXIT_USAGE
               : EXIT_FAILURE;
}

void close_context(struct clopt_context *ctx, const char *cache_dir)
{
    const char *distrust = clopt_context_cache_problem(ctx);
    if (distrust) {
        char *text = cli_flag_names(distrust);
        fprintf(stderr, "clopt: warning: %s\n", text ? text : distrust);
        free(text);
    }
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
                 "built-in defaults (the tuning database was not used)");
    }
    clopt_tuning_db_close(db);
}

/* What the commands set up before their work: the context on the chosen device, and the
 * knobs from the tuning database. */
#ifndef CLOPT_CLI_SETUP_H
#define CLOPT_CLI_SETUP_H

#include "args.h"

#include <stdio.h>

/* A context on the chosen device, caching programs in program_cache (NULL: not), or the
 * status to exit with after saying why. */
int open_context(const char *device, const char *devices, const char *kernel_dir,
                 const char *program_cache, struct clopt_context **ctx);

/* Under --quiet (quiet non-zero), catches what is written to stderr while the library
 * builds kernels, and restore_driver_output passes it on less the compiler's own chatter:
 * PoCL's clang writes "1 error generated." straight to stderr, and clopt's message already
 * carries the build log. Only around library calls whose callbacks print nothing under
 * --quiet. saved is -1 when nothing was changed (not quiet, or no temporary file). */
struct muted {
    int saved;     /* the real stderr */
    FILE *capture; /* what was written meanwhile */
};
struct muted mute_driver_output(int quiet);
void restore_driver_output(struct muted m);

/* Destroys the context, first saying (one warning line) why the program cache was not
 * trusted, and (one line) if compiled kernels could not be stored in the program cache:
 * the run did not need it, but the next one rebuilds. */
void close_context(struct clopt_context *ctx, const char *cache_dir);

/* The tuning database of --tuning-db, else $CLOPT_TUNING_DB, else the library's default
 * path; NULL (err says why) when there is none or no memory. */
struct clopt_tuning_db *open_tuning_db(const struct run_args *a, char *err, size_t errlen);

/* Takes the knobs from the tuning database unless --tune gave them, and notes where they
 * came from in a->knob_source. A corrupted database is reported and ignored. */
void knobs_from_database(struct run_args *a, struct clopt_context *ctx);

#endif /* CLOPT_CLI_SETUP_H */

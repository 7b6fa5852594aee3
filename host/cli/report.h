/* What the clopt CLI writes: one-line errors (with the library's names turned into flags),
 * exit codes, reports to files or stdout, the run's JSON and text summary. */
#ifndef CLOPT_CLI_REPORT_H
#define CLOPT_CLI_REPORT_H

#include "clopt.h"

#include <cjson/cJSON.h>
#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_DIVERGED 3
#define EXIT_CHECK_FAILED 4

struct run_args;

/* clopt --help: the summary with the command list. */
void print_usage(FILE *f);
/* A command's own help (its usage, options, exit status); -1 for an unknown command. */
int print_command_usage(FILE *f, const char *command);

/* "clopt: error: ..." on stderr, one line. */
void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A library message with its names of fields (options.dim, knobs.work_group, ...) turned
 * into the flags that set them (--dim, --tune wg), as a new string (NULL when out of
 * memory). */
char *cli_flag_names(const char *message);

/* print_error of a library message, in flags; prefix (may be NULL) goes before it. */
void print_library_error(const char *prefix, const char *message);

/* The exit status for a library status; user_objective: the user's own kernel files are
 * involved, so their failing to build is bad input. An I/O error is 1 either way. */
int exit_code_for(int status, int user_objective);

/* Opens path for a report ("-": stdout); NULL after saying why. flag names it. */
FILE *open_report(const char *flag, const char *path);
int close_report(const char *flag, const char *path, FILE *f);

/* Writes root (when ok: every field was added) as JSON to path ("-": stdout), and frees
 * it. */
int emit_json(const char *path, cJSON *root, int ok);

const char *stop_name(int status);
const char *precision_name(enum clopt_precision p);

/* The knobs as text (clopt_knobs_format). */
void knobs_text(const struct clopt_knobs *k, char *text, size_t size);

/* What clopt run measures beside the library's result. */
struct run_stats {
    double initial_loss;          /* the first evaluation of this run; NaN when none */
    double iterations_per_second; /* of this run (after a resume: the iterations it added) */
};

/* clopt run's summary: JSON to path, and text to f. */
int write_run_json(const char *path, const struct run_args *a, const struct clopt_context *ctx,
                   const struct clopt_solver *solver, const struct clopt_result *r,
                   const struct run_stats *stats, int status);
void print_run_summary(FILE *f, const struct run_args *a, const struct clopt_device_info *dev,
                       const struct clopt_result *r, const struct run_stats *stats, int status);

#endif /* CLOPT_CLI_REPORT_H */

/* The clopt CLI's flags: number flags, --param, --init, --tune, output paths, and the run
 * option table shared by run, bench and tune. */
#ifndef CLOPT_CLI_ARGS_H
#define CLOPT_CLI_ARGS_H

#include "clopt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MAX_PARAMS 32

struct run_args {
    const char *command; /* run, bench or tune: argv[0] */
    struct clopt_options opts;
    struct clopt_param params[MAX_PARAMS];
    int dim_given;
    int shape_given; /* --shape: opts.n_axes and opts.shape are set, opts.dim is their product */
    const char *init_file;
    const char *init_spec; /* --init as given; NULL: the default */
    const char *out_path;
    const char *trace_path;
    const char *json_path;
    const char *device;
    const char *devices; /* --devices LIST|all; NULL: one device */
    const char *kernel_dir;
    const char *program_cache; /* the directory in use (resolved), NULL: off */
    const char *resume_path;
    const char *csv_path; /* bench */
    uint64_t reps;        /* bench; 0 when not given */
    int iters_given;
    int knobs_given;       /* --tune: the tuning database is not consulted */
    const char *tuning_db; /* --tuning-db */
    const char *space;     /* tune: --space */
    double budget;         /* tune: --budget seconds, 0 = exhaustive */
    char knob_source[600]; /* where the knobs came from, for the summary */
    char program_cache_buffer[4096];
    int quiet;
    unsigned char given[64]; /* by row of the run option table: the flag was on the line */
    char *from_checkpoint;   /* --resume: the checkpoint's configuration, which options
                                taken from it point into (heap; freed by the command) */
};

/* Each returns 0, or prints why and returns -1 (EXIT_USAGE for the *_flag ones that say
 * so). flag names the option in messages. */
int parse_double_flag(const char *flag, const char *text, double *value);
int parse_count_flag(const char *flag, const char *text, uint64_t max, uint64_t *value);
/* A whole number from 1 to max; EXIT_USAGE after saying why. */
int parse_positive_flag(const char *flag, const char *text, uint64_t max, uint64_t *value);

/* --shape S0,S1[,S2]: 1 to 3 axis lengths, each >= 1, product at most 2^48; EXIT_USAGE
 * after saying why. */
int parse_shape_flag(const char *flag, const char *text, size_t *n_axes, size_t *shape);

/* --init SPEC into a->opts (or a->init_file). */
int parse_init(struct run_args *a, const char *spec);

/* KEY=VAL,... into k (clopt_knobs_parse); flag is --tune or --space, for messages. */
int parse_knobs_flag(struct clopt_knobs *k, const char *spec, const char *flag);

/* Splits one --param KEY=VALUE into params[*count] (the text is cut at '='); EXIT_USAGE. */
int add_param(char *arg, struct clopt_param *params, size_t *count);

/* The message for what getopt_long returned on a bad command line, and the usage status;
 * also checks that nothing but options is left (c = -1). */
int usage_error(int c, int argc, char **argv, const char *command);

/* The program cache's directory: the flag's value (NULL when not given), else
 * $CLOPT_PROGRAM_CACHE, else $XDG_CACHE_HOME/clopt/programs, else
 * $HOME/.cache/clopt/programs. NULL means no cache: "off", or no home to put it in. */
const char *program_cache_dir(const char *flag, char *buffer, size_t size);

/* Fails early, before any work, when an output file could not be written: its directory is
 * missing or read-only, or the path is a directory. */
int check_output_path(const char *flag, const char *path);

/* Opens an input file for reading without waiting on a FIFO: NULL, with the reason in why,
 * when it cannot be opened or is not a regular file. */
FILE *open_input_file(const char *path, char *why, size_t size);

/* check_output_path for an output written to a new file that is renamed over path (--out,
 * --checkpoint): an existing path that is not a regular file or a symlink (/dev/null, a
 * FIFO) would be replaced by a regular file, so it is refused as well. */
int check_renamed_output(const char *flag, const char *path);

int ends_with(const char *s, const char *suffix);

/* Whether the command line gave flag ("--lr"). */
int flag_given(const struct run_args *a, const char *flag);

/* run, bench and tune: returns 0, EXIT_USAGE on a bad flag, or -1 after printing help. */
int parse_run_args(int argc, char **argv, struct run_args *a);

/* The word of a hyper-parameter stored as a code ("wolfe" for line_search 2), or NULL. */
const char *hyper_word(const char *name, double value);

#endif /* CLOPT_CLI_ARGS_H */

/* clopt's measuring and tuning API: the device's bandwidth, a step's speed, knobs as text,
 * the tuning database and the tuner. clopt.h includes this header; it is kept apart only so
 * that each header stays readable. Conventions are clopt.h's. */
#ifndef CLOPT_TUNE_H
#define CLOPT_TUNE_H

#include "clopt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The device's memory bandwidth, STREAM-style: a copy b = a and an in-place scale a = s a
 * over n elements (fewer if two such buffers do not fit the device), each counted as one
 * read and one write per element, timed by profiling events after two warm-up rounds; the
 * medians of `reps` rounds. */
struct clopt_bandwidth {
    size_t n;      /* elements moved */
    unsigned reps; /* timed rounds */
    double copy_seconds, scale_seconds;
    double copy_gbytes_per_second, scale_gbytes_per_second;
};

CLOPT_API int clopt_measure_bandwidth(struct clopt_context *ctx, size_t n,
                                      enum clopt_precision precision, unsigned reps,
                                      struct clopt_bandwidth *out);

/* The fused step's speed for a problem: a solver is made from `problem` (its knobs as given,
 * 0 fields filled with the device's defaults; its progress callback, checkpoint and stop
 * flag are not used), run once untimed (first-touch page faults, caches), then `reps` times
 * (1..1000) for problem->max_iters iterations each (>= 1); the median wall-clock time of a
 * run is reported. Errors: clopt_errmsg(ctx). */
struct clopt_step_timing {
    uint64_t iterations;      /* per timed run: problem->max_iters */
    unsigned reps;            /* timed runs */
    double seconds;           /* median seconds of one run of `iterations` iterations */
    double bytes_per_iter;    /* bytes one iteration must move (theta and state) */
    double bytes_per_element; /* the same per element */
    double gbytes_per_second; /* bytes_per_iter * iterations / seconds / 1e9 (0 if no time) */
    double element_iterations_per_second; /* dim * iterations / seconds */
    double loss;                          /* L(theta) after the last run */
    struct clopt_knobs knobs;             /* the knobs used, defaults filled in */
};

CLOPT_API int clopt_bench_step(struct clopt_context *ctx, const struct clopt_options *problem,
                               unsigned reps, struct clopt_step_timing *out);

/* Kernel knobs as text: "KEY=VALUE,..." with the keys (in printing order) wg, epw, vw,
 * fblock (knobs.loss_block), layout=contig|strided|1|2, partials=item|group, rwg,
 * acc=double|kahan, gpcu, pf=off|N, simd=256|512, fuse. Counts accept what
 * clopt_parse_count does (1024, 2^10). */

/* Sets the knobs named in text, leaving the others as they are (so several texts can be
 * laid over each other). Checks what text alone can tell (a known key, a whole number, a
 * known word); the ranges that depend on the device are checked by clopt_solver_create.
 * Returns CLOPT_OK, or CLOPT_ERR_INVALID_ARG with one line in err naming the item in the
 * text's own words ("wg 'x': not a number ...", "layout=diagonal: use contig or strided",
 * "unknown knob 'foo' (knobs: ...)"); CLOPT_ERR_OUT_OF_MEMORY. knobs may be partly set after
 * a failure. err may be NULL. */
CLOPT_API int clopt_knobs_parse(const char *text, struct clopt_knobs *knobs, char *err,
                                size_t errlen);

/* Writes every knob as "wg=16,epw=4096,vw=16,fblock=16,layout=contig,partials=item,rwg=1,
 * acc=double,gpcu=0,pf=1024,simd=512,fuse=1": "def" for a field left at 0 (the device's
 * default), gpcu's 0 as 0 and fuse's 0 as 1 (their meanings). The text is cut to fit size
 * (at least 160 bytes always suffice). Returns CLOPT_OK, or CLOPT_ERR_INVALID_ARG when text
 * is NULL or size is 0, or when it did not fit. */
CLOPT_API int clopt_knobs_format(const struct clopt_knobs *knobs, char *text, size_t size);

/* The knob at index (0, 1, ... in printing order): its text name ("rwg"), and in *field
 * (when not NULL) its field in struct clopt_knobs ("reduce_group"). NULL past the last. */
CLOPT_API const char *clopt_knob_name(size_t index, const char **field);

/* The tuning database: the best knobs clopt_tune found per device and problem, in a JSON
 * file shared by every program using clopt. An entry is keyed by platform, device and
 * driver version (clopt_context_device), objective, optimizer, precision and the size
 * class floor(log2(dim)). Lookups and stores read the file each time, so a handle sees
 * what other processes stored; a store writes a temporary file and renames it.
 *
 * Trust boundary: the database picks the kernels that run, so it is read only when the
 * file is a regular file owned by the effective user (or root) and not writable by group
 * or others, opened without following a symlink and without blocking (a FIFO never hangs
 * a lookup), in a directory owned by that user (or root) that group and others cannot
 * write (a sticky directory such as /tmp aside). Anything else is not used: lookups return
 * CLOPT_ERR_IO with the reason, and stores refuse to replace it. */
struct clopt_tuning_db;

/* Opens the database at path; NULL or "" means $XDG_CACHE_HOME/clopt/tuning.json, else
 * $HOME/.cache/clopt/tuning.json, however long. The file need not exist (stores create it and its
 * directories). Returns CLOPT_OK; CLOPT_ERR_INVALID_ARG when no path is given and neither
 * variable is set; CLOPT_ERR_OUT_OF_MEMORY. *db is NULL on failure; err (may be NULL) says
 * why. */
CLOPT_API int clopt_tuning_db_open(struct clopt_tuning_db **db, const char *path, char *err,
                                   size_t errlen);

CLOPT_API void clopt_tuning_db_close(struct clopt_tuning_db *db);

/* The file's path; the message of the last failure (or of what a store replaced). */
CLOPT_API const char *clopt_tuning_db_path(const struct clopt_tuning_db *db);
CLOPT_API const char *clopt_tuning_db_errmsg(const struct clopt_tuning_db *db);

/* The knobs for problem on ctx's device: the entry of the same size class, else of the
 * nearest one. *found is 1 when an entry served (then knobs and how, e.g. "exact size class
 * 2^20" or "nearest size class 2^18", are set), 0 when the file or an entry is absent. The
 * key holds no clipping: with problem->clip_norm > 0, a fused entry is served with fuse = 1
 * and how says so. Returns CLOPT_OK; CLOPT_ERR_IO (unreadable or not trusted) or CLOPT_ERR_BAD_FILE
 * (corrupted: not JSON, another version, a malformed entry or a knob out of range), with
 * clopt_tuning_db_errmsg saying why: callers go on with the default knobs;
 * CLOPT_ERR_INVALID_ARG. how may be NULL. */
CLOPT_API int clopt_tuning_db_lookup(struct clopt_tuning_db *db, const struct clopt_context *ctx,
                                     const struct clopt_options *problem, struct clopt_knobs *knobs,
                                     int *found, char *how, size_t how_size);

/* Adds or replaces the entry of problem's size class, keeping the others. knobs should be
 * complete (as clopt_tune_result.knobs or clopt_result.knobs give them): a field the
 * database cannot hold (0 where a value is needed, or out of range) is CLOPT_ERR_INVALID_ARG.
 * A corrupted file is replaced: *replaced (may be NULL) is then 1 and
 * clopt_tuning_db_errmsg says what was wrong with it; one that is not trusted is never
 * replaced (CLOPT_ERR_IO). Returns CLOPT_OK, CLOPT_ERR_IO or
 * CLOPT_ERR_OUT_OF_MEMORY (message on the handle). */
CLOPT_API int clopt_tuning_db_store(struct clopt_tuning_db *db, const struct clopt_context *ctx,
                                    const struct clopt_options *problem,
                                    const struct clopt_knobs *knobs, double gbytes_per_second,
                                    double default_gbytes_per_second, int *replaced);

/* The tuner: the default knobs run first (the reference: problem->knobs is not used), then
 * every candidate of the space; each candidate must give the reference's theta bit for bit
 * (the update of an element does not depend on the knobs; with clip_norm, rounding of the
 * norm may differ and is allowed) and its loss within 1e-5 relative (the knobs change the
 * summation order). Verified candidates are timed as clopt_bench_step times the step
 * (problem->max_iters iterations per run, median of reps runs); the fastest is chosen, and
 * the default knobs compete too. */
struct clopt_tune_candidate {
    struct clopt_knobs knobs; /* as in the space; once run and verified, with the defaults
                                 filled in */
    int ok;                   /* verified and timed */
    int refused;              /* the solver refused the knobs for this problem (bad input) */
    double gbytes_per_second; /* when ok */
    char note[200];           /* the verification, or why it was discarded (library names:
                                 options.FIELD) */
};

struct clopt_tune_progress {
    size_t index; /* 0: the default knobs were timed; k >= 1: the k-th
                     candidate of `count` was tried */
    size_t count; /* candidates in the space */
    const struct clopt_tune_candidate *candidate; /* the k-th; NULL for index 0 */
    const struct clopt_knobs *default_knobs;      /* filled in */
    double default_gbytes_per_second;
};

/* Return non-zero to stop the search, as an exhausted budget does. */
typedef int (*clopt_tune_progress_fn)(void *user, const struct clopt_tune_progress *progress);

struct clopt_tune_options {
    size_t struct_size; /* set by clopt_tune_options_init(); see "Option structs" in clopt.h */
    /* The values to try, "KEY=V|V|...,KEY=V|...", KEY any knob of clopt_knobs_parse (at most
     * 8 values each, 4096 combinations); knobs not named keep their defaults, except wg,
     * epw and vw, which get a pruned list for the device type (CPU: wg 4|16|64,
     * epw 1024|4096|16384, vw 8|16; GPU: wg 64|128|256|512, epw 4|16|64, vw 1|2|4). A
     * vector width above the elements per work-item is left out. NULL or "" (default):
     * the pruned lists only. */
    const char *space;
    /* > 0: start no candidate after this many seconds (from the end of the reference), and
     * try them in a random order drawn from problem->seed, so the time is spread over the
     * space; 0 (default): every candidate, in order. */
    double budget_seconds;
    unsigned reps;                   /* timed runs per candidate, 1..1000; default 3 */
    clopt_tune_progress_fn progress; /* may be NULL (default) */
    void *progress_user;
};

/* Defaults for a struct of `size` bytes (the library's part of clopt_tune_options_init). */
CLOPT_API void clopt_tune_options_init_size(struct clopt_tune_options *opts, size_t size);
static inline void clopt_tune_options_init(struct clopt_tune_options *opts)
{
    clopt_tune_options_init_size(opts, sizeof *opts);
}

struct clopt_tune_result {
    struct clopt_knobs knobs;         /* the choice, filled in: the fastest verified candidate,
                                         or the default knobs when they were faster */
    double gbytes_per_second;         /* its speed */
    int defaults_won;                 /* no candidate was faster than the defaults */
    struct clopt_knobs default_knobs; /* the reference's knobs, filled in (all 0 when the
                                         reference did not run) */
    double default_gbytes_per_second;
    size_t count;                            /* candidates in the space */
    size_t tried;                            /* of which were tried (budget, cancel) */
    struct clopt_tune_candidate *candidates; /* the `tried` ones, in the order tried; free
                                                with clopt_tune_result_free */
};

/* Returns CLOPT_OK with a choice; CLOPT_ERR_INVALID_ARG for a bad space or when every
 * candidate tried was refused for this problem (e.g. fuse with a stencil objective);
 * CLOPT_ERR_NO_CANDIDATE when none ran and verified; another error when the default knobs
 * do not run. clopt_errmsg(ctx) explains. result is filled as far as known in every case
 * (candidates tried so far); release it with clopt_tune_result_free. topts may be NULL. */
CLOPT_API int clopt_tune(struct clopt_context *ctx, const struct clopt_options *problem,
                         const struct clopt_tune_options *topts, struct clopt_tune_result *result);

CLOPT_API void clopt_tune_result_free(struct clopt_tune_result *result);

/* Checks a space text without a device (what can be checked before clopt_tune: the keys,
 * the values, their counts). Returns CLOPT_OK or CLOPT_ERR_INVALID_ARG with err (may be
 * NULL) naming the problem ("tune_options.space ..."). */
CLOPT_API int clopt_tune_space_check(const char *space, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* CLOPT_TUNE_H */

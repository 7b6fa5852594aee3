/* Library internals shared between host/ files; not installed. */
#ifndef CLOPT_INTERNAL_H
#define CLOPT_INTERNAL_H

#include "clopt.h"

#include <stdarg.h>
#include <stdio.h>

struct clopt_context {
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    struct clopt_device_info info;
    char *kernel_dir;       /* NULL: embedded kernels */
    char *errmsg;           /* last failure, heap-allocated */
    char *program_cache;    /* directory of the program cache; NULL: no caching */
    char *cache_device_key; /* the device's part of every cache key, made on first use */
    struct clopt_cache_stats cache_stats;
    char *cache_problem;      /* why the program cache is not trusted (then unused); NULL: fine */
    int cache_dir_trusted;    /* the directory exists and passed clopt_untrusted() */
    struct clopt_ranks ranks; /* size <= 1: a single process (host/solver/ranks.c) */
    /* Several devices (context_options.devices): all n_devices share `context`, each with
     * its own in-order queue; devices[0] is `device` and queues[0] is `queue`. 0 and NULL
     * for a one-device context. */
    size_t n_devices;
    cl_device_id *devices;
    cl_command_queue *queues;
};

/* Opens the devices a context_options.devices list names (host/devices.c): one context
 * over all of them, a queue each, and ctx->device/info/queue set to the first. ids and
 * infos are every device, in clopt_list_devices() order; default_pick is the index the
 * `device` option would pick (SIZE_MAX: none), which "all" takes the platform and type of.
 * A list naming an absent index is CLOPT_ERR_NO_DEVICE; a malformed or repeated one, or
 * devices of different models or platforms, CLOPT_ERR_INVALID_ARG. */
int clopt_open_devices(struct clopt_context *ctx, const cl_device_id *ids,
                       const struct clopt_device_info *infos, size_t n, const char *spec,
                       size_t default_pick);

/* Records a message on ctx and returns status, so failures read
 * `return clopt_fail(ctx, CLOPT_ERR_..., "...", ...);`. */
int clopt_fail(struct clopt_context *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Turns a failed OpenCL call into a status (out-of-memory codes map to
 * CLOPT_ERR_OUT_OF_MEMORY) and a message naming the call and the error. */
int clopt_fail_cl(struct clopt_context *ctx, cl_int err, const char *call);

/* The name of an OpenCL error code, e.g. "CL_OUT_OF_RESOURCES". */
const char *clopt_cl_error_name(cl_int err);

/* Formats into a new heap string; NULL on failure. */
char *clopt_vformat(const char *fmt, va_list ap);
char *clopt_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* strtod and snprintf in the "C" locale, whatever this thread's LC_NUMERIC (see
 * host/numparse.c): for every number clopt reads from text or writes into kernel defines
 * and checkpoints. clopt_format_c returns the length, or -1 when the text does not fit in
 * size or no locale object could be made. */
double clopt_strtod_c(const char *text, char **end);
int clopt_format_c(char *buffer, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Which query a device refused, and its error. */
struct clopt_device_query_error {
    const char *call;
    cl_int err;
};
/* Fills info for one device; index is left as SIZE_MAX for the caller to set. A refused
 * query is CLOPT_ERR_OPENCL, described in *error (may be NULL). */
int clopt_device_query(cl_device_id device, struct clopt_device_info *info,
                       struct clopt_device_query_error *error);

/* A kernel source by file name, from ctx->kernel_dir or the embedded copies. *text is
 * heap-allocated (NUL-terminated). */
int clopt_kernel_source(struct clopt_context *ctx, const char *name, char **text, size_t *length);

/* Opens an input file the caller named for reading: NULL, with the reason in why, when it
 * cannot be opened or is not a regular file. The open does not block, so a FIFO given as
 * an input is refused at once instead of waiting for a writer forever. */
FILE *clopt_open_input(const char *path, char *why, size_t size);

/* Reads a whole file the caller named (a user's objective, a kernel directory's file):
 * CLOPT_ERR_BAD_FILE when it cannot be opened or is not a regular file (a directory, a
 * FIFO: never waited on), CLOPT_ERR_IO when reading it fails; a message either way. */
int clopt_read_file(struct clopt_context *ctx, const char *path, char **text, size_t *length);

/* Builds a program from the named parts (each preceded by a #line directive naming its
 * file, so compiler messages point at the right file and line). user_objective, when
 * not NULL, is a path read from disk in place of parts[objective_index]. A failed build
 * returns CLOPT_ERR_BUILD with the compiler log in the message. With ctx->program_cache
 * set, the binary comes from the cache when an entry matches, and a program built from
 * source is stored there (see clopt_context_set_program_cache). The device's own defines
 * (CLOPT_DEVICE_CPU, and CLOPT_NO_RESTRICT on oclgrind) are added to options. */
struct clopt_program_part {
    const char *name; /* embedded/kernel-dir name, or a path when from_path */
    int from_path;
};
int clopt_build_program(struct clopt_context *ctx, const struct clopt_program_part *parts,
                        size_t n_parts, const char *options, cl_program *out);

/* Objective and optimizer tables. */
struct clopt_param_spec {
    const char *key;
    double default_value;
    double min_value;
    double max_value;
    const char *help;
    int is_file; /* the value is a path (of a data vector), not a number */
};

struct clopt_objective_type {
    const char *name;
    const char *file;
    const char *formula;
    const char *minimum; /* where and what, in words */
    struct clopt_param_spec params[4];
    size_t n_params;
    size_t stencil_radius;  /* 0: separable */
    int grid;               /* stencil_radius is the radius of a grid objective (clopt_fdf_grid) */
    int uses_dim;           /* the kernel reads CLOPT_N (a user's file always gets it) */
    const char *data_param; /* the file parameter holding a data vector, or NULL */
    /* A learning rate with which gd converges from the default --init and parameters at
     * n = 1000 (measured: 200 iterations lower the loss; 0.1, the default, diverges on some). */
    double suggested_lr;
};

/* Hyper-parameters resolved for one step; `step` counts from 1 as in torch.optim. */
struct clopt_hyper_in {
    double lr; /* after the schedule */
    uint64_t step;
    int fresh_state; /* the state vectors hold no history yet (torch's "buffer is None") */
    double weight_decay, momentum, dampening, beta1, beta2, eps, alpha;
};

#define CLOPT_HYPER_SLOTS 8
#define CLOPT_QN_LBFGS 1
#define CLOPT_QN_CG 2
#define CLOPT_QN_BB 3 /* gd with options.gd_step (Barzilai-Borwein), no line search */

struct clopt_optimizer_type {
    const char *name;
    const char *file;
    const char *summary;
    double default_lr, default_eps, default_weight_decay, default_momentum;
    double default_c2; /* lbfgs/cg's strong Wolfe curvature constant */
    /* 0: a first-order update fused into the step kernel; CLOPT_QN_LBFGS or CLOPT_QN_CG: the
     * line-search driver of host/qn/ runs it. */
    int qn;
    /* State vectors (each as large as theta) for these options. */
    size_t (*n_state)(const struct clopt_options *o);
    /* Extra -D flags for these options, e.g. " -DCLOPT_NESTEROV=1" (static string). */
    const char *(*defines)(const struct clopt_options *o);
    /* The kernel's h0..h7 for one step. */
    void (*hyper)(const struct clopt_hyper_in *in, double h[CLOPT_HYPER_SLOTS]);
    /* Optimizer-specific checks beyond the common ranges; NULL when none. Returns a static
     * message, or NULL when the options are fine. */
    const char *(*check)(const struct clopt_options *o);
};

/* Hyper-parameters (host/hyper.c): one row per field of struct clopt_options that an update
 * rule reads, in the order of a checkpoint's configuration. */
#define CLOPT_MAX_OPTIMIZERS 8
struct clopt_hyper_param {
    const char *name; /* the field of struct clopt_options, and its key in a checkpoint */
    size_t offset;    /* offsetof(struct clopt_options, name) */
    int is_flag;      /* an int field, set when non-zero; else a double */
    /* The valid range of a double: low..high, each end open or closed. */
    double low, high;
    int low_open, high_open;
    int nan_is_default;       /* NaN means the default; else NaN is out of range */
    double default_value;     /* the default, unless the optimizer has its own: */
    size_t optimizer_default; /* offsetof(struct clopt_optimizer_type, default_...); 0: none */
    /* The optimizers that read it, by name; none listed: every optimizer. */
    const char *used_by[CLOPT_MAX_OPTIMIZERS];
    int info_only; /* recorded as "info.NAME": a resumed run may change it */
};
const struct clopt_hyper_param *clopt_hyper_params(size_t *count);
/* The field's value (a flag reads 0 or 1). */
double clopt_hyper_get(const struct clopt_hyper_param *p, const struct clopt_options *o);
/* The caller set it: a double that is not NaN, a flag that is not 0. */
int clopt_hyper_is_set(const struct clopt_hyper_param *p, const struct clopt_options *o);
int clopt_hyper_used_by(const struct clopt_hyper_param *p, const char *optimizer);
/* Replaces a NaN (the default) by the optimizer's default or the row's. */
void clopt_hyper_set_default(const struct clopt_hyper_param *p,
                             const struct clopt_optimizer_type *opt, struct clopt_options *o);

const struct clopt_objective_type *clopt_find_objective(const char *name);

/* "a, b, c or d" from a NULL-terminated list (cut to size). */
void clopt_join_names(const char *const *names, char *text, size_t size);

/* " -DCLOPT_PARAM_KEY=value" for every numeric parameter (a new heap string), checking
 * them against the objective's table when obj is a built-in. */
int clopt_param_defines(struct clopt_context *ctx, const struct clopt_objective_type *obj,
                        const struct clopt_options *opts, char **defines);

/* check.c: the check's point (stream 0: theta, 2: data values) at element i. */
double clopt_check_point(const struct clopt_check_options *o, uint64_t i, uint64_t stream);
/* check.c: runs the built check kernel `name` on m samples; its arguments are the input
 * (in_bytes from in), the samples' indexes, m, the n_extra values of extra, and the output
 * of 3 values per sample (read into out). */
int clopt_check_launch(struct clopt_context *ctx, cl_program program, const char *name,
                       const void *in, size_t in_bytes, const uint64_t *index, size_t m,
                       const cl_ulong *extra, size_t n_extra, void *out, size_t elem);
/* check.c: the worst relative error over the samples' (gradient, difference, scale) triples
 * into res (res->floor set). */
void clopt_check_worst(struct clopt_check_result *res, const void *out, const uint64_t *index,
                       size_t m, int dbl);
/* check_grid.c: the gradient check of a grid objective of radius R (obj NULL: the user's
 * file opts->objective). */
int clopt_check_grid(struct clopt_context *ctx, const struct clopt_check_options *opts,
                     struct clopt_check_result *res, const struct clopt_objective_type *obj,
                     size_t radius);

/* A user's objective file must at least name a function of the contract (saying so beats
 * the linker's "cannot find symbol"), and a stencil must declare its radius, which sizes
 * the halos before anything is built. *radius is 0 for a separable objective; *grid is set
 * for a grid objective (clopt_fdf_grid, radius from CLOPT_GRID_RADIUS). */
int clopt_inspect_user_objective(struct clopt_context *ctx, const char *path, size_t *radius,
                                 int *grid);
const struct clopt_optimizer_type *clopt_find_optimizer(const char *name);
/* gd as host/qn/ runs it with Barzilai-Borwein steps (options.gd_step set). */
const struct clopt_optimizer_type *clopt_gd_bb_optimizer(void);

/* CRC-32C (Castagnoli) of data, continuing from crc (0 to start). */
uint32_t clopt_crc32c(uint32_t crc, const void *data, size_t length);

/* Checkpoint files (host/checkpoint.c). A section's payload comes from data, or, when data
 * is NULL, from fetch(user, section index, offset, dst, bytes) in chunks. Messages go to
 * err, since the writer may run on its own thread. */
struct clopt_ckpt_section {
    char tag[8];
    uint64_t length;
    const void *data;
};
/* The bytes of each fetch: a section's payload is fetched in pieces of this size from its
 * start (the last one shorter), one section after the other. */
#define CLOPT_CKPT_CHUNK ((size_t)1 << 20)
typedef int (*clopt_ckpt_fetch)(void *user, size_t section, uint64_t offset, void *dst,
                                size_t bytes);
int clopt_ckpt_write(const char *path, const struct clopt_ckpt_section *sections, size_t n_sections,
                     clopt_ckpt_fetch fetch, void *user, char *err, size_t errlen);

struct clopt_ckpt_reader {
    FILE *f;
    uint32_t version; /* of the file format: 1 or 2 */
    uint32_t sections_left;
    uint64_t left; /* payload bytes left in the current section */
    uint32_t crc;
};
int clopt_ckpt_open(struct clopt_ckpt_reader *r, const char *path, char *err, size_t errlen);
/* The same on an open stream, which clopt_ckpt_close closes. */
int clopt_ckpt_open_stream(struct clopt_ckpt_reader *r, FILE *f, char *err, size_t errlen);
/* Reads the next section's header, which must carry tag. */
int clopt_ckpt_next(struct clopt_ckpt_reader *r, const char *tag, uint64_t *length, char *err,
                    size_t errlen);
int clopt_ckpt_read(struct clopt_ckpt_reader *r, void *dst, size_t bytes, char *err, size_t errlen);
/* Checks the section's payload checksum once all of it was read. */
int clopt_ckpt_end_section(struct clopt_ckpt_reader *r, const char *tag, char *err, size_t errlen);
/* Closes; with expect_end, fails unless every section was read and nothing follows. */
int clopt_ckpt_close(struct clopt_ckpt_reader *r, int expect_end, char *err, size_t errlen);

#endif /* CLOPT_INTERNAL_H */

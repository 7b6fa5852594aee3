/* clopt: gradient-based optimisation on OpenCL devices.
 *
 * The library never prints and never exits. Every function that can fail returns an
 * int status from enum clopt_status; after a failure, clopt_errmsg() on the context
 * gives a one-line message that names the cause and, where there is one, the fix. */
#ifndef CLOPT_H
#define CLOPT_H

/* The version of this header; clopt_version() gives the library's. */
#define CLOPT_VERSION_MAJOR 0
#define CLOPT_VERSION_MINOR 1
#define CLOPT_VERSION_PATCH 0

/* clopt itself needs OpenCL 1.2 only; a program that targets a later version keeps it. */
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The library's exported functions; everything else in libclopt.so is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define CLOPT_API __attribute__((visibility("default")))
#else
#define CLOPT_API
#endif

/* Option structs (clopt_context_options, clopt_options, clopt_check_options,
 * clopt_tune_options and clopt_external_options) begin with `size_t struct_size`, which their
 * *_init() functions set to the struct's size in the program that calls them (they are inline for
 * that reason). A library newer than the program's header reads only the fields that header had and
 * gives the later ones their defaults; a struct_size the library does not know (0: the struct was
 * never initialised, or a header newer than the library) is refused with
 * CLOPT_ERR_INVALID_ARG and a message saying to call the *_init() function. New fields are
 * only ever added at the end, and each addition grows the struct's size. Always initialise
 * an option struct with its *_init() function before setting fields. */

#ifdef __cplusplus
extern "C" {
#endif

/* "MAJOR.MINOR.PATCH" of the library that is running. */
CLOPT_API const char *clopt_version(void);

/* 0 is success, positive values are stop reasons of clopt_solver_run(), negative values
 * are errors. */
enum clopt_status {
    CLOPT_OK = 0,
    CLOPT_STOP_MAX_ITERS = 1,     /* the iteration limit was reached */
    CLOPT_STOP_GTOL = 2,          /* ||g|| <= gtol */
    CLOPT_STOP_FTOL = 3,          /* |L_prev - L| <= ftol * max(|L_prev|, |L|, tiny) */
    CLOPT_STOP_TARGET = 4,        /* loss <= target */
    CLOPT_STOP_CANCELLED = 5,     /* the progress callback returned non-zero */
    CLOPT_STOP_LINE_SEARCH = 6,   /* lbfgs/cg: the line search found no acceptable step within
                                     options.max_ls trials (theta is the last accepted point) */
    CLOPT_STOP_MAX_EVALS = 7,     /* lbfgs/cg: options.max_evals evaluations were made (theta
                                     is the last accepted point) */
    CLOPT_ERR_INVALID_ARG = -1,   /* a bad option or argument: the caller's input is wrong */
    CLOPT_ERR_BAD_FILE = -2,      /* an input file is malformed or does not fit */
    CLOPT_ERR_IO = -3,            /* a file could not be read or written */
    CLOPT_ERR_NO_DEVICE = -4,     /* no OpenCL platform/device, or the named one is absent */
    CLOPT_ERR_UNSUPPORTED = -5,   /* the device lacks a needed feature (e.g. fp64) */
    CLOPT_ERR_OUT_OF_MEMORY = -6, /* host or device memory is insufficient */
    CLOPT_ERR_BUILD = -7,         /* a kernel failed to compile; the message holds the log */
    CLOPT_ERR_OPENCL = -8,        /* an OpenCL call failed */
    CLOPT_ERR_DIVERGED = -9,      /* loss or ||g|| became NaN/Inf; the last finite theta is kept */
    CLOPT_ERR_NO_CANDIDATE = -10, /* clopt_tune: no candidate ran and matched the default
                                     knobs' result; nothing was chosen */
};

/* A static string describing a status; never NULL. */
CLOPT_API const char *clopt_strerror(int status);

enum clopt_precision { CLOPT_FLOAT = 0, CLOPT_DOUBLE = 1 };

/* The most axes of a shape clopt keeps (clopt_options.shape, .npy files): grids need 3. */
#define CLOPT_MAX_AXES 8

enum clopt_device_kind { CLOPT_DEVICE_CPU = 1, CLOPT_DEVICE_GPU = 2, CLOPT_DEVICE_OTHER = 3 };

struct clopt_device_info {
    size_t index; /* the index accepted by clopt_context_options.device */
    char platform[128];
    char name[128];
    char driver_version[64];
    enum clopt_device_kind kind;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    unsigned compute_units;
    int has_fp64; /* non-zero when cl_khr_fp64 (or OpenCL >= 1.2 double) works */
};

/* Lists every device of every platform. *out is allocated; release with free(). On no
 * device, returns CLOPT_ERR_NO_DEVICE with *count = 0. */
CLOPT_API int clopt_list_devices(struct clopt_device_info **out, size_t *count);

struct clopt_context;

struct clopt_context_options {
    size_t struct_size; /* set by clopt_context_options_init(); see "Option structs" above */
    /* Device selection: a decimal index from clopt_list_devices(), or a case-insensitive
     * substring of the device or platform name. NULL or "" picks the first GPU, else the
     * first CPU device, else the first device. */
    const char *device;
    /* A directory to load kernels from instead of the copies embedded at build time.
     * NULL uses the embedded ones. */
    const char *kernel_dir;
    /* A directory for clopt's cache of compiled programs (see
     * clopt_context_set_program_cache). NULL or "" (default): no caching. */
    const char *program_cache;
    /* (Version 2.) Several devices in one process: a comma-separated list of indexes from
     * clopt_list_devices() ("0,1"), or "all" for every device of the platform and type that
     * `device` picks. NULL or "" (default): the one device `device` picks. With a list,
     * `device` must be NULL or "". The devices must be of one model on one platform (they
     * share a cl_context, and results stay bit-identical to one such device); theta's tiles
     * are split between them in contiguous, even ranges, one queue each. Every optimizer
     * runs so (lbfgs/cg fold their dot products in tile order on the first device); external
     * gradients (clopt_solver_create_external) run on one device only
     * (CLOPT_ERR_UNSUPPORTED). */
    const char *devices;
};

/* Defaults for a struct of `size` bytes (the library's part of clopt_context_options_init). */
CLOPT_API void clopt_context_options_init_size(struct clopt_context_options *opts, size_t size);
static inline void clopt_context_options_init(struct clopt_context_options *opts)
{
    clopt_context_options_init_size(opts, sizeof *opts);
}

/* Creates a context on a device of the caller's choice (opts may be NULL). *out is set
 * even on failure (except CLOPT_ERR_OUT_OF_MEMORY for the handle itself) so that
 * clopt_errmsg() can explain; destroy it either way. */
CLOPT_API int clopt_context_create(struct clopt_context **out,
                                   const struct clopt_context_options *opts);

/* Uses the caller's context and in-order queue; clopt retains neither beyond its own
 * reference counts and never releases the caller's references. Programs are not cached
 * unless clopt_context_set_program_cache() names a directory. */
CLOPT_API int clopt_context_create_from_cl(struct clopt_context **out, cl_context context,
                                           cl_command_queue queue, const char *kernel_dir);

CLOPT_API void clopt_context_destroy(struct clopt_context *ctx);

/* Caches compiled programs in dir (NULL or "": stop caching), for a context from either
 * create function. Every kernel build looks there first, keyed by the whole kernel source,
 * the build options, and the platform name, device name, device version and driver version;
 * an entry is one file named by a 128-bit hash of that key, holding the key itself
 * (compared byte for byte, so a hash collision never loads the wrong binary), the device's
 * binary and a CRC-32C. A damaged, mismatched or refused entry is counted as rejected and
 * replaced after an ordinary build. After a build from source the binary is stored: dir and
 * its parents are created (mode 0700) when absent, and the entry is written to a temporary
 * file, fsynced and renamed, so concurrent processes see a whole entry or none. A failure to
 * store (read-only directory, full disk) never fails the build; it is counted. Failed
 * builds are never cached. Returns CLOPT_OK, or CLOPT_ERR_OUT_OF_MEMORY (the previous setting
 * is then kept). The counters of clopt_context_cache_stats are not reset. */
CLOPT_API int clopt_context_set_program_cache(struct clopt_context *ctx, const char *dir);

/* What the program cache did on this context, counted since it was created. */
struct clopt_cache_stats {
    uint64_t hits;           /* builds served from a cache entry */
    uint64_t misses;         /* builds compiled from source while caching was on (rejected
                                entries included) */
    uint64_t stores;         /* entries written */
    uint64_t store_failures; /* builds whose entry could not be written */
    uint64_t rejected;       /* entries found but not used: damaged, truncated, for another
                                key, refused by the driver, or unreadable */
};

/* How many devices the context runs on: 1, or the length of context_options.devices. */
CLOPT_API size_t clopt_context_device_count(const struct clopt_context *ctx);

/* Fills *out; CLOPT_ERR_INVALID_ARG when ctx or out is NULL. */
CLOPT_API int clopt_context_cache_stats(const struct clopt_context *ctx,
                                        struct clopt_cache_stats *out);

/* The trust boundary of the program cache: a cached binary is run as it is, and its CRC
 * guards against damage, not against forgery. So the cache is used only while its
 * directory and every entry read are owned by the effective user (or root) and not
 * writable by group or others (a sticky directory like /tmp aside), entries are regular
 * files opened without following a symlink and without blocking (a FIFO never hangs a
 * build), and whoever can write there as that user could run code as that user anyway.
 * When a check fails, this context stops using the cache (no lookups, no stores) and this
 * returns one line saying why, for the caller to show as a warning; NULL while all is
 * well (and for a NULL ctx). */
CLOPT_API const char *clopt_context_cache_problem(const struct clopt_context *ctx);

/* Several processes (MPI ranks) sharing one problem: each owns a contiguous range of theta's
 * tiles, and the library talks to the others only through these callbacks, so it needs no
 * MPI itself (the CLI's host/mpi/ supplies them from MPI). Every rank must make the same
 * library calls in the same order: reads of theta or the state, evaluations, runs, saves and
 * checkpoints are collective. Results (theta, the loss and ||g||, stopping decisions) are
 * bit-identical to one process: the loss partials are folded in one process's order (each
 * rank's own groups of a two-stage fold, then their gathered pairs; or all partials gathered
 * in tile order), never by a reduction whose order depends on the rank count. Only rank 0 writes
 * files. Each callback returns 0 on success (non-zero: CLOPT_ERR_IO). */
struct clopt_ranks {
    size_t rank; /* this process, 0..size-1 */
    size_t size; /* processes; 0 or 1: a single process (the callbacks are not used) */
    void *user;
    /* Every rank sends `bytes[rank]` bytes; recv receives every rank's, in rank order, one
     * after the other. */
    int (*allgatherv)(void *user, const void *send, void *recv, const size_t *bytes);
    /* Sends to_prev to rank-1 and to_next to rank+1 and receives from_prev/from_next from
     * them (each `bytes` long); the first and last rank skip the missing side. */
    int (*neighbours)(void *user, const void *to_prev, void *from_prev, const void *to_next,
                      void *from_next, size_t bytes);
    /* *any = whether `flag` is non-zero on some rank. */
    int (*any)(void *user, int flag, int *any);
};

/* Makes the context's solvers one rank of ranks->size (copied; NULL or size <= 1: a single
 * process). Set before creating solvers. lbfgs/cg gather their dot-product partials the same
 * way, so their line searches take the same steps on every rank. */
CLOPT_API int clopt_context_set_ranks(struct clopt_context *ctx, const struct clopt_ranks *ranks);

/* The message of the last failure on this context (or on a solver made from it). */
CLOPT_API const char *clopt_errmsg(const struct clopt_context *ctx);

/* The device the context runs on. */
CLOPT_API const struct clopt_device_info *clopt_context_device(const struct clopt_context *ctx);

/* The OpenCL objects the context runs on (either create function), for a caller that runs
 * its own kernels beside clopt's (external gradients): no new references; valid until
 * clopt_context_destroy. Any out pointer may be NULL. CLOPT_ERR_INVALID_ARG for a NULL ctx. */
CLOPT_API int clopt_context_cl(const struct clopt_context *ctx, cl_context *context,
                               cl_device_id *device, cl_command_queue *queue);

/* The size in bytes of the last cache the device's memory traffic passes through: on a CPU
 * the level-3 cache of /sys/devices/system/cpu/cpu0/cache (else level 2), on other devices
 * CL_DEVICE_GLOBAL_MEM_CACHE_SIZE; 0 when unknown. A working set within it measures the
 * cache, not the memory. */
CLOPT_API uint64_t clopt_context_cache_bytes(const struct clopt_context *ctx);

enum clopt_init_kind {
    CLOPT_INIT_NORMAL = 0, /* theta_i ~ N(0, scale^2) from Philox4x32-10(seed, i) */
    CLOPT_INIT_UNIFORM,    /* theta_i ~ U[-scale, scale) from Philox4x32-10(seed, i) */
    CLOPT_INIT_CONST,      /* theta_i = value */
    CLOPT_INIT_NONE,       /* leave theta for clopt_solver_write_theta() (starts at 0) */
};

/* Kernel knobs. Zero in any field means "the default for this device type". */
struct clopt_knobs {
    size_t work_group;     /* work-items per group (power of two, 1..device max) */
    size_t elems_per_item; /* elements per work-item and iteration (power of two) */
    size_t vector_width;   /* independent accumulator lanes: 1, 2, 4, 8 or 16, at most
                              elems_per_item */
    size_t loss_block;     /* loss terms each lane sums in working precision before
                              adding them to its double (or compensated) sum: 1 adds
                              every term directly; power of two, <= 1024 */
    int layout;            /* 1 = contiguous chunk per work-item (CPU), 2 = strided
                              across the group (GPU) */
    int group_partials;    /* 1 = one partial per work-item (no barrier, CPU),
                              2 = local-memory tree, one partial per group (GPU) */
    size_t reduce_group;   /* work-items of the reduction kernel's single group (power
                              of two): 1 on CPUs, 256 on GPUs */
    int accumulate;        /* loss accumulators: 1 = double (default with fp64),
                              2 = float with Kahan compensation (default without) */
    size_t groups_per_cu;  /* 0 (default): one work-group per tile of work_group *
                              elems_per_item elements; G in 1..1024: G work-groups per compute
                              unit loop over the tiles (the arithmetic is the same either way) */
    size_t prefetch;       /* software prefetch distance in elements: 0 (default) = 1024 on
                              CPUs (on AMD CPUs only with fuse > 1, else off), off on GPUs;
                              1 = off; else a power of two <= 2^20.
                              Contiguous layout and clang-based compilers (PoCL) only; never
                              changes results */
    size_t simd_bits;      /* 0 (default): 512 on CPUs, 256 elsewhere; 512 lets clang-based
                              compilers (PoCL) use 512-bit registers on AVX-512 CPUs, whose
                              x86 back end otherwise keeps to 256-bit vectors; 256 leaves the
                              compiler's choice. Lanes are independent, so results never change */
    size_t fuse;           /* iterations per launch, 1..32 (0 means 1): each element runs them
                              in private memory between one read and one write of theta and
                              its state, bit-identical to single steps. Separable objectives
                              only, not with clip_norm, and vw x fblock x (2 + state vectors)
                              x sizeof(real) <= 64 KiB. Blocks start at multiples of fuse and
                              never cross a checkpoint or the iteration limit (single steps
                              fill in); losses are looked at and stopping tests (gtol, ftol,
                              target, cancel, divergence) act only at multiples of fuse, so a
                              run may stop up to fuse - 1 iterations after the one that met
                              its test, on the same trajectory */
};

struct clopt_param {
    const char *key;   /* e.g. "cond" */
    const char *value; /* the value as text, e.g. "1e6" */
};

struct clopt_progress {
    uint64_t iteration; /* t: the loss below is L(theta_t), before update t */
    double loss;
    double grad_norm; /* ||grad L(theta_t)|| */
    double lr;
    double seconds; /* since the run started */
};

/* Return non-zero to cancel the run (clopt_solver_run then returns CLOPT_STOP_CANCELLED). */
typedef int (*clopt_progress_fn)(void *user, const struct clopt_progress *progress);

struct clopt_options {
    size_t struct_size;               /* set by clopt_options_init(); see "Option structs"
                                         above */
    const char *objective;            /* built-in name or a path ending in ".cl"; default
                                         "sphere" */
    const struct clopt_param *params; /* objective parameters; count in n_params */
    size_t n_params;
    size_t dim;                     /* number of parameters, >= 1; default 1000000 */
    enum clopt_precision precision; /* default CLOPT_FLOAT. The hyper-parameters below are
                                       checked in this precision: in float a non-zero value
                                       under FLT_MIN (the kernels flush subnormals to 0),
                                       over FLT_MAX, or one that rounds out of its range is
                                       CLOPT_ERR_INVALID_ARG */
    const char *optimizer;          /* gd (default), momentum, nesterov, adam, adamw, rmsprop,
                                       adagrad: the torch.optim definitions */
    double lr;                      /* step size, >= 0, finite; NaN (default) = the
                                       optimizer's: 0.1 gd/momentum/nesterov, 1e-3 adam/adamw,
                                       1e-2 rmsprop/adagrad */
    double momentum;                /* momentum/nesterov/rmsprop, in [0, 1); NaN (default) =
                                       the optimizer's default: 0.9 for momentum/nesterov, 0
                                       for rmsprop. Set (not NaN) for another optimizer, it is
                                       refused (CLOPT_ERR_INVALID_ARG), as are dampening, beta1,
                                       beta2, eps, alpha and amsgrad */
    double dampening;               /* momentum/nesterov, in [0, 1]; NaN (default) = the
                                       optimizer's default, 0 */
    double beta1, beta2;            /* adam/adamw, in [0, 1); NaN (default) = the optimizer's
                                       defaults, 0.9 and 0.999 */
    double eps;                     /* adam/adamw/rmsprop/adagrad, > 0; NaN (default) = the
                                       optimizer's default: 1e-8, adagrad 1e-10 */
    double weight_decay;            /* every optimizer, >= 0; NaN (default) = the optimizer's
                                       default: 0, adamw 1e-2 */
    double alpha;                   /* rmsprop smoothing, in [0, 1); NaN (default) = the
                                       optimizer's default, 0.99 */
    int amsgrad;                    /* adam/adamw: keep the maximum second moment; 0 (default)
                                       = off, non-zero = set */
    int maximize;                   /* ascend: the update uses -g */
    double clip_value;              /* > 0: clamp each gradient element to [-c, c] before the
                                       update (fused); 0 (default) disables */
    double clip_norm;               /* > 0: scale g by min(1, c / (||g|| + 1e-6)) as torch's
                                       clip_grad_norm_; costs a second read of theta per
                                       iteration (a norm pass before the update); 0 disables */
    const char *schedule;           /* learning-rate schedule: NULL or "constant",
                                       "step:EVERY:GAMMA", "exp:GAMMA",
                                       "cosine:T_MAX[:ETA_MIN]", "warmup:STEPS[+OTHER]" */
    uint64_t max_iters;             /* iteration limit; default 1000 */
    double gtol;                    /* stop when ||g|| <= gtol; NaN (default) disables */
    double ftol;                    /* stop on relative loss change <= ftol; NaN disables */
    double target;                  /* stop when loss <= target (>= with maximize); NaN
                                       disables */
    uint64_t loss_every;            /* reduce loss and ||g|| every K iterations, >= 1;
                                       default 1 */
    size_t max_shard_bytes;         /* cap per buffer below the device's max allocation;
                                       0 (default) = no cap */
    enum clopt_init_kind init;      /* default CLOPT_INIT_NORMAL */
    double init_value;              /* the constant (CONST) or scale (NORMAL, UNIFORM);
                                       default 1 */
    uint64_t seed;                  /* default 0 */
    struct clopt_knobs knobs;
    clopt_progress_fn progress; /* called with each loss read back; may be NULL */
    void *progress_user;
    const char *checkpoint;      /* write checkpoints to this path: theta, optimizer state,
                                    iteration, step count, pending losses and configuration, each
                                    section with a CRC-32C; written to a temporary file, fsynced
                                    and renamed, the previous one kept as PATH.prev; a PATH that
                                    is not a regular file or a symlink (/dev/null, a FIFO) is
                                    refused, as the rename would replace it. NULL: none */
    uint64_t checkpoint_every;   /* every K iterations (from a background thread, after a copy
                                    to host memory), and once when a run ends; 0: at the end */
    volatile sig_atomic_t *stop; /* when *stop becomes non-zero (e.g. from a signal
                                    handler) the run stops after the current iteration with
                                    CLOPT_STOP_CANCELLED, checkpointing first */
    /* Fields below were added after struct_size (the struct's second version); an older
     * program's struct gets their defaults. */
    size_t n_axes;                /* axes of theta's shape, 0..CLOPT_MAX_AXES; 0 (default): a
                                     vector of dim elements */
    size_t shape[CLOPT_MAX_AXES]; /* theta's shape in C order (slowest axis first), each axis
                                     >= 1 and their product equal to dim; the shape of the
                                     .npy files clopt_solver_save_theta writes. Entries past
                                     n_axes are ignored */
    /* The third version: quasi-Newton and conjugate-gradient optimizers (lbfgs, cg); NaN
     * (default) = the default named, a value set for another optimizer is refused. */
    double history;     /* lbfgs: correction pairs kept, a whole number in [1, 64]; default 10 */
    double c1;          /* sufficient-decrease constant, in (0, 1); default 1e-4 */
    double c2;          /* strong Wolfe curvature constant, in (c1, 1); default 0.9 for lbfgs,
                           0.1 for cg (wolfe line search only) */
    double max_ls;      /* function+gradient evaluations one line search may use, a whole
                           number in [1, 1000]; default 20 */
    double line_search; /* CLOPT_LINE_SEARCH_ARMIJO (backtracking) or CLOPT_LINE_SEARCH_WOLFE
                           (strong Wolfe, the default) */
    double cg_beta;     /* cg: CLOPT_CG_FR, CLOPT_CG_PR (Polak-Ribiere+, the default) or
                           CLOPT_CG_HS; each restarts on a non-descent direction and by Powell's
                           test |g_k+1 . g_k| >= 0.1 ||g_k+1||^2 */
    /* The fourth version. */
    double max_evals; /* lbfgs/cg: stop once this many function+gradient evaluations were
                         made (no line-search trial goes past it), a whole number in
                         [0, 2^53]; 0 (the default) = no limit */
    /* The fifth version. */
    double gd_step; /* gd: NaN (default) = the fixed step lr; CLOPT_STEP_BB1 or CLOPT_STEP_BB2 =
                       Barzilai-Borwein steps (s.s/s.y or s.y/y.y, s and y the last change of
                       theta and g), the first step lr, each step clamped to [lr 1e-6, lr 1e6]
                       and the last step kept where the quotient is not positive and finite.
                       It runs in the lbfgs/cg machinery (one host wait per iteration); no
                       checkpoints, external gradients, weight_decay, maximize, clipping or
                       schedule with it */
};

/* Values of options.line_search and options.cg_beta (doubles, as every hyper-parameter). */
#define CLOPT_LINE_SEARCH_ARMIJO 1
#define CLOPT_LINE_SEARCH_WOLFE 2
#define CLOPT_CG_FR 1
#define CLOPT_CG_PR 2
#define CLOPT_CG_HS 3
#define CLOPT_STEP_BB1 1
#define CLOPT_STEP_BB2 2

/* Defaults for a struct of `size` bytes (the library's part of clopt_options_init). */
CLOPT_API void clopt_options_init_size(struct clopt_options *opts, size_t size);
static inline void clopt_options_init(struct clopt_options *opts)
{
    clopt_options_init_size(opts, sizeof *opts);
}

struct clopt_result {
    uint64_t iterations;      /* updates applied to theta */
    double loss;              /* L(theta_final) */
    double grad_norm;         /* ||grad L(theta_final)|| */
    double seconds;           /* wall time of the iteration loop */
    double bytes_per_iter;    /* bytes one iteration must move (theta and state) */
    double bytes_per_element; /* the same per element: 8 for gd in float, 24 for adam */
    double lr;                /* the base learning rate used (after optimizer defaults) */
    double final_lr;          /* the scheduled rate at the final iteration (of its step) */
    double gbytes_per_second; /* bytes_per_iter * iterations / seconds / 1e9 */
    uint64_t diverged_at;     /* first iteration seen with a non-finite loss, when
                                 CLOPT_ERR_DIVERGED */
    size_t shards;            /* buffers theta is split into */
    struct clopt_knobs knobs; /* the kernel knobs in use, defaults filled in */
    uint64_t evaluations;     /* function+gradient evaluations (lbfgs/cg count the line
                                 search's trials; the others one per iteration) */
};

struct clopt_solver;

/* Validates options, builds kernels, allocates theta (sharded) and initialises it. On
 * failure *out is NULL and clopt_errmsg(ctx) explains. */
CLOPT_API int clopt_solver_create(struct clopt_solver **out, struct clopt_context *ctx,
                                  const struct clopt_options *opts);

CLOPT_API void clopt_solver_destroy(struct clopt_solver *solver);

/* Copies count elements of theta starting at offset from (to) host memory of the given
 * precision, converting when it differs from the solver's. */
CLOPT_API int clopt_solver_write_theta(struct clopt_solver *solver, const void *src,
                                       enum clopt_precision src_precision, size_t offset,
                                       size_t count);
CLOPT_API int clopt_solver_read_theta(struct clopt_solver *solver, void *dst,
                                      enum clopt_precision dst_precision, size_t offset,
                                      size_t count);

/* Writes theta to path as a .npy file of the given precision (converting when it differs
 * from the solver's), of the shape in options.shape (1-D (dim,) when options.n_axes is 0). The file
 * is written beside path under a unique temporary name, fsynced and renamed over path, so path
 * holds the old file or the whole new one, never a part; a symlink at path is replaced, not
 * followed; a path that exists and is neither a regular file nor a symlink (a device such as
 * /dev/null, a FIFO) is refused with CLOPT_ERR_INVALID_ARG, since the rename would replace it.
 * CLOPT_ERR_IO names the file and the cause. */
CLOPT_API int clopt_solver_save_theta(struct clopt_solver *solver, const char *path,
                                      enum clopt_precision precision);

/* Checks, before a run, that path can be written as clopt_solver_save_theta and checkpoints
 * write it: creates the temporary file beside path that such a write creates, and removes
 * it. Nothing at path is touched. CLOPT_ERR_IO with the cause in err (e.g. "File name too
 * long", "Permission denied"); CLOPT_ERR_INVALID_ARG for an empty name. */
CLOPT_API int clopt_output_check(const char *path, char *err, size_t errlen);

/* The k-th (from 0) hyper-parameter the solver's optimizer reads, with the value in use
 * (defaults filled in): *name is the field of struct clopt_options ("lr", "momentum",
 * "beta1", "amsgrad", "clip_norm", ...); *is_flag is set for an on/off field (amsgrad,
 * maximize), whose value reads 0 or 1. Any out pointer may be NULL. CLOPT_ERR_INVALID_ARG
 * past the last, so a loop from k = 0 lists them all. */
CLOPT_API int clopt_solver_hyper(const struct clopt_solver *solver, size_t k, const char **name,
                                 double *value, int *is_flag);

/* Runs the iteration loop. Returns a stop reason (> 0) or an error (< 0); result is
 * filled in both cases as far as it is known. On CLOPT_ERR_DIVERGED, theta holds the last
 * iterate whose loss was seen finite. */
CLOPT_API int clopt_solver_run(struct clopt_solver *solver, struct clopt_result *result);

/* How the checkpoints of the last clopt_solver_run went. A checkpoint that cannot be written
 * (a full disk, an I/O error, no host memory for it) does not stop the run: the file on disk
 * stays the previous one and the run goes on, so that the caller can save its results first
 * and then say what was lost. A checkpoint of a theta that is not finite is not written
 * either (the run has diverged; its closing checkpoint holds the last finite iterate); it is
 * neither written nor failed. Optimizer state that overflowed to +Inf while theta is finite
 * (float adagrad's sum, adam's v) is not divergence: theta and the loss stay finite and the
 * run goes on exactly as without checkpoints, so such a checkpoint is written as it is, and
 * resuming from it continues bit for bit. */
struct clopt_checkpoint_report {
    uint64_t written;      /* checkpoint files written */
    uint64_t failed;       /* writes that failed */
    uint64_t last_written; /* the iteration of the last one written (0 when none was) */
    int final_written;     /* the run's closing checkpoint is on disk */
    char error[512];       /* the first failure's cause; "" when none failed */
};

/* Fills *report for the solver's last run (zero before any). CLOPT_ERR_INVALID_ARG when an
 * argument is NULL. */
CLOPT_API int clopt_solver_checkpoint_report(const struct clopt_solver *solver,
                                             struct clopt_checkpoint_report *report);

/* Several ranks (clopt_context_set_ranks): the seconds the last run spent in its
 * per-iteration communication (the loss partials or fold groups, stencil halos, lbfgs/cg dot
 * products, the stop agreement: the callbacks, including waiting for the other ranks), not
 * in set-up, checkpoints or reads; at most the run's wall seconds. 0 in a single process. */
CLOPT_API int clopt_solver_communication_seconds(const struct clopt_solver *solver,
                                                 double *seconds);

/* Optimizer state vector `index` (0-based; see clopt_solver_state_count), like
 * clopt_solver_read_theta. Momentum: 0 = velocity; adam/adamw: 0 = m, 1 = v, 2 = max v;
 * rmsprop: 0 = mean square, 1 = velocity; adagrad: 0 = sum of squares. */
CLOPT_API size_t clopt_solver_state_count(const struct clopt_solver *solver);
CLOPT_API int clopt_solver_read_state(struct clopt_solver *solver, size_t index, void *dst,
                                      enum clopt_precision dst_precision, size_t offset,
                                      size_t count);
CLOPT_API int clopt_solver_write_state(struct clopt_solver *solver, size_t index, const void *src,
                                       enum clopt_precision src_precision, size_t offset,
                                       size_t count);

/* Steps applied so far over all runs of this solver (the `t` of bias corrections). */
CLOPT_API uint64_t clopt_solver_steps(const struct clopt_solver *solver);
/* Sets that count, e.g. when resuming with state written by clopt_solver_write_state. */
CLOPT_API void clopt_solver_set_steps(struct clopt_solver *solver, uint64_t steps);

/* Loads a checkpoint written by a run with the same objective, dimension, precision,
 * optimizer and hyper-parameters (the learning rate, schedule, stopping tests, knobs, shard
 * count and device may differ): the next clopt_solver_run continues that run exactly, at
 * the iteration where it stopped, and `max_iters` counts from its start. A checkpoint
 * from another configuration is refused (CLOPT_ERR_INVALID_ARG) naming the first setting
 * that differs; a damaged or truncated one is CLOPT_ERR_BAD_FILE. After a failure theta
 * and the state are undefined. */
CLOPT_API int clopt_solver_resume(struct clopt_solver *solver, const char *path);

/* Loss and ||g|| at the current theta, without updating it. */
CLOPT_API int clopt_solver_evaluate(struct clopt_solver *solver, double *loss, double *grad_norm);

/* One line when the caller's knobs are shaped for CPUs (knobs.layout = 1, knobs.group_partials
 * = 1) and the device is not a CPU: accepted, with the same results, but slower than the
 * defaults there; for the front end to show once as a warning. NULL otherwise. */
CLOPT_API const char *clopt_solver_knob_warning(const struct clopt_solver *solver);

/* Gradient check: compares an objective's in-kernel gradient at sampled elements with a
 * fourth-order central difference of the loss terms that depend on that element, at a
 * random point, in double (float on devices without fp64). */
struct clopt_check_options {
    size_t struct_size;    /* set by clopt_check_options_init(); see "Option structs" above */
    const char *objective; /* built-in name or a path ending in ".cl"; default "sphere" */
    const struct clopt_param *params; /* numeric parameters; a data file parameter is not
                                         needed (data values are drawn like theta) */
    size_t n_params;
    size_t dim;                /* n, >= 1; default 1000 */
    size_t samples;            /* elements checked (all when >= dim), 1..2^24; default 1000 */
    enum clopt_init_kind init; /* the point: NORMAL (default), UNIFORM or CONST */
    double init_value;         /* its scale or value; default 1 */
    uint64_t seed;             /* default 0 */
    /* The second version: grid objectives. */
    size_t n_axes;   /* axes of the grid, 0..3; 0 (default): one axis of dim points */
    size_t shape[3]; /* the grid in C order, product equal to dim (as clopt_options.shape) */
};

/* Defaults for a struct of `size` bytes (the library's part of clopt_check_options_init). */
CLOPT_API void clopt_check_options_init_size(struct clopt_check_options *opts, size_t size);
static inline void clopt_check_options_init(struct clopt_check_options *opts)
{
    clopt_check_options_init_size(opts, sizeof *opts);
}

struct clopt_check_result {
    size_t checked;                 /* elements compared */
    enum clopt_precision precision; /* of the arithmetic */
    double floor;                   /* errors are |g - d| / max(|g|, |d|, floor (1 + |f|)), f
                                       the loss terms involved: 1e-4 in double, 1e-2 in float */
    double worst_error;             /* the largest such error (Inf where g or d is not finite) */
    size_t worst_index;             /* the element where it occurs */
    double gradient;                /* the objective's gradient there */
    double finite_difference;       /* and the finite difference d */
};

/* Runs the check. A wrong gradient shows as a worst_error far above 1e-6 (double) or 1e-2
 * (float); the caller decides the tolerance. */
CLOPT_API int clopt_check_gradient(struct clopt_context *ctx,
                                   const struct clopt_check_options *opts,
                                   struct clopt_check_result *result);

/* Names of the built-in objectives and optimizers, NULL-terminated. */
CLOPT_API const char *const *clopt_objective_names(void);
/* A built-in objective's formula, known minimum and parameters (as text, with defaults and
 * ranges, into params). CLOPT_ERR_INVALID_ARG for an unknown name. */
CLOPT_API int clopt_objective_describe(const char *name, const char **formula, const char **minimum,
                                       char *params, size_t params_size);
/* A learning rate with which gd converges on a built-in objective from the default
 * initialisation and parameters (the default 0.1 diverges on ellipsoid, double_well and
 * rosenbrock; ellipsoid's scales as 0.5 / cond). CLOPT_ERR_INVALID_ARG for an unknown name. */
CLOPT_API int clopt_objective_suggested_lr(const char *name, double *lr);
CLOPT_API const char *const *clopt_optimizer_names(void);
/* The value an optimizer uses for hyper-parameter `name` (a field of struct clopt_options,
 * e.g. "momentum", "amsgrad" as 0 or 1) when the options leave it at its default.
 * CLOPT_ERR_INVALID_ARG for an unknown optimizer or name, or one the optimizer does not
 * read (setting it is refused). */
CLOPT_API int clopt_hyper_default(const char *optimizer, const char *name, double *value);
/* The name of the index-th hyper-parameter (a field of struct clopt_options and its key in a
 * checkpoint's configuration), NULL past the last: the list every table of them comes from. */
CLOPT_API const char *clopt_hyper_name(size_t index);
/* Sets hyper-parameter `name` of opts to value (a flag field: value != 0); nothing is
 * checked here (clopt_solver_create checks the whole struct). CLOPT_ERR_INVALID_ARG for an
 * unknown name. */
CLOPT_API int clopt_options_set_hyper(struct clopt_options *opts, const char *name, double value);

#ifdef __cplusplus
}
#endif

/* External gradients; files without a device (checkpoints, .npy headers, numbers as text);
 * measuring and tuning (bandwidth, step timing, knob text, the tuning database, the tuner). */
#include "clopt_external.h"
#include "clopt_files.h"
#include "clopt_tune.h"

#endif /* CLOPT_H */

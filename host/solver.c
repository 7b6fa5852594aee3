/* The solver: theta in shards, the fused step kernels, and the iteration loop. */
#include "internal.h"
#include "npy.h"
#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_STATE 3
/* Loss read-backs are looked at a fixed number of iterations after they were queued, so
 * the device always has queued work and the stopping decision (hence theta) does not
 * depend on timing. Small problems get a longer lag because launches dominate there. */
#define LAG_MIN 2
#define LAG_MAX 64
#define LAG_ELEMS ((size_t)1 << 24)
/* The most iterations one launch may fuse. */
#define FUSE_MAX 32
/* The kernel's loss mask is a 32-bit uint, one bit per fused iteration. */
_Static_assert(FUSE_MAX <= 32, "loss masks are 32 bits wide");
/* Private memory a fused work-item may hold (see resolve_knobs). */
#define FUSE_PRIVATE_BYTES (64 * 1024)
/* Losses queued but not looked at: up to a lag's worth, plus one fused block. */
#define RING_SIZE (LAG_MAX + FUSE_MAX + 2)
/* At most THROTTLE_EVERY * THROTTLE_SLOTS iterations are in flight, which bounds the
 * queue's memory when loss read-backs are rare. */
#define THROTTLE_EVERY 32
#define THROTTLE_SLOTS 8
#define CONVERT_CHUNK ((size_t)1 << 20)
#define MAX_STENCIL_RADIUS 16
/* transfer()'s `which` for the objective's data vector (0 is theta, 1.. the state). */
#define WHICH_DATA (MAX_STATE + 1)

struct shard {
    /* Stencil objectives: theta and theta_next hold halo elements on both sides and trade
     * places after every update (ping-pong); separable ones update theta in place. */
    cl_mem theta, theta_next;
    cl_mem data; /* the objective's data vector (shifted_sphere's target), or NULL */
    cl_mem state[MAX_STATE];
    size_t offset; /* global index of the first element */
    size_t count;
    size_t global_size;  /* work-items launched */
    size_t partial_base; /* first partial slot */
};

struct pending_loss {
    uint64_t iteration;
    cl_event done;  /* NULL once the values are on the host */
    double host[2]; /* large enough for two acc_t of either width */
    int reported;   /* the progress callback has seen it (in a run that checkpointed it) */
};

/* Where a run stopped, as a checkpoint records it: the next run continues from here. */
struct resume_point {
    uint64_t t; /* the iteration to queue next */
    int have_good, decided, reason;
    uint64_t last_good;
    double prev_loss;
    size_t n_pending; /* losses queued but not yet looked at */
    struct pending_loss pending[RING_SIZE];
};

/* A checkpoint being written by a background thread from host copies. */
struct checkpoint_job {
    char *path;
    char *image; /* theta and the state vectors, one after the other */
    unsigned char *loop;
    struct clopt_ckpt_section sections[2 + MAX_STATE];
    size_t n_sections;
    size_t n_values; /* theta and state values in image, checked finite before writing */
    int is_double;
    int status;
    char err[512];
    atomic_int done; /* the writer thread has finished */
};

struct clopt_solver {
    struct clopt_context *ctx;
    const struct clopt_objective_type *objective; /* NULL for a user file */
    const struct clopt_optimizer_type *optimizer;
    struct clopt_options opts; /* pointer fields are not kept */
    size_t n;
    size_t elem_size; /* sizeof(real) */
    size_t acc_size;  /* sizeof(acc_t) */
    struct clopt_knobs knobs;
    size_t lag;
    size_t n_shards;
    struct shard *shards;
    size_t n_partials;
    cl_mem partials;
    cl_mem result;
    cl_program program;
    cl_kernel k_step, k_step_loss, k_eval, k_reduce, k_init;
    cl_kernel k_fused;           /* knobs.fuse > 1 only */
    cl_mem fused_hyper;          /* the fused launch's per-iteration hyper-parameters */
    int theta_generated;         /* theta holds exactly what the init kernel produced */
    size_t n_state;              /* optimizer state vectors */
    size_t halo;                 /* stencil radius: neighbours kept on each side of a shard */
    char *data_path;             /* file of the objective's data vector, or NULL */
    struct clopt_hyper_in hyper; /* resolved hyper-parameters; lr is the base rate */
    struct clopt_schedule schedule;
    uint64_t step;   /* steps applied over all runs */
    int fresh_state; /* optimizer state is all zero, never stepped nor written */
    char *config;    /* the settings a checkpoint must match, "key=value" lines */
    char *checkpoint_path;
    struct resume_point *resume; /* from clopt_solver_resume, for the next run */
    struct checkpoint_job *job;  /* the checkpoint being written, if any */
    pthread_t writer;
};

static int warm_up(struct clopt_solver *s);
static int load_data(struct clopt_solver *s);
static int finish_checkpoint(struct clopt_solver *s);

void clopt_options_init(struct clopt_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->objective = "sphere";
    opts->dim = 1000000;
    opts->precision = CLOPT_FLOAT;
    opts->optimizer = "gd";
    opts->lr = NAN;
    opts->momentum = NAN;
    opts->dampening = 0;
    opts->beta1 = 0.9;
    opts->beta2 = 0.999;
    opts->eps = NAN;
    opts->weight_decay = NAN;
    opts->alpha = 0.99;
    opts->max_iters = 1000;
    opts->gtol = NAN;
    opts->ftol = NAN;
    opts->target = NAN;
    opts->loss_every = 1;
    opts->init = CLOPT_INIT_NORMAL;
    opts->init_value = 1.0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_power_of_two(size_t x)
{
    return x && !(x & (x - 1));
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static double gib(double bytes)
{
    return bytes / (1024.0 * 1024.0 * 1024.0);
}

/* Parses a whole string as a finite double in the C locale's format. */
static int parse_param_value(const char *text, double *value)
{
    if (!text || !*text || isspace((unsigned char)text[0]))
        return 0;
    char *end;
    *value = strtod(text, &end);
    return *end == '\0' && isfinite(*value);
}

int clopt_param_defines(struct clopt_context *ctx, const struct clopt_objective_type *obj,
                        const struct clopt_options *opts, char **defines)
{
    char *text = clopt_format("%s", "");
    if (!text)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; i < opts->n_params; ++i) {
        const struct clopt_param *p = &opts->params[i];
        double value;
        if (!p->key || !*p->key || strlen(p->key) > 64) {
            free(text);
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--param needs KEY=VALUE");
        }
        for (const char *c = p->key; *c; ++c)
            if (!isalnum((unsigned char)*c) && *c != '_') {
                free(text);
                return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                  "--param key '%s' may hold only letters, digits and '_'", p->key);
            }
        for (size_t k = 0; k < i; ++k)
            if (!strcasecmp(opts->params[k].key, p->key)) {
                free(text);
                return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--param %s is given twice", p->key);
            }
        const struct clopt_param_spec *spec = NULL;
        if (obj) {
            for (size_t k = 0; k < obj->n_params; ++k)
                if (strcmp(obj->params[k].key, p->key) == 0)
                    spec = &obj->params[k];
            if (!spec) {
                free(text);
                return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                  "objective '%s' has no parameter '%s'%s", obj->name, p->key,
                                  obj->n_params ? " (see clopt objectives)" : "");
            }
        }
        if (spec && spec->is_file) {
            /* A data file: read by load_data(), not a define. */
            if (!p->value || !*p->value) {
                free(text);
                return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--param %s= needs a file name",
                                  p->key);
            }
            continue;
        }
        if (!parse_param_value(p->value, &value)) {
            free(text);
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "--param %s=%s: the value must be a finite number", p->key,
                              p->value ? p->value : "");
        }
        if (spec) {
            if (!(value >= spec->min_value && value <= spec->max_value)) {
                free(text);
                return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                                  "--param %s=%s is out of range [%g, %g]", p->key, p->value,
                                  spec->min_value, spec->max_value);
            }
        }
        char upper[65];
        size_t k = 0;
        for (; p->key[k]; ++k)
            upper[k] = (char)toupper((unsigned char)p->key[k]);
        upper[k] = '\0';
        /* Always a floating literal (1 / CLOPT_PARAM_A must not divide integers); a double
         * literal: objectives cast it to real. */
        char *grown = clopt_format("%s -DCLOPT_PARAM_%s=%.17e", text, upper, value);
        free(text);
        if (!grown)
            return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        text = grown;
    }
    *defines = text;
    return CLOPT_OK;
}

static int validate_options(struct clopt_context *ctx, const struct clopt_options *o)
{
    if (!o->objective || !*o->objective)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "no objective given");
    if (!ends_with(o->objective, ".cl") && !clopt_find_objective(o->objective))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "unknown objective '%s': use sphere, ellipsoid, rastrigin, "
                          "styblinski_tang, double_well, shifted_sphere, rosenbrock, laplacian "
                          "(see clopt objectives) or a file ending in .cl",
                          o->objective);
    if (!o->optimizer || !clopt_find_optimizer(o->optimizer))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "unknown optimizer '%s': use gd, momentum, nesterov, adam, adamw, "
                          "rmsprop or adagrad",
                          o->optimizer ? o->optimizer : "");
    if (o->dim == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--dim must be at least 1");
    /* NaN means "the optimizer's default" where nan_ok; any other value must be in range. */
    const struct {
        const char *flag;
        double value, low, high;
        int low_open, high_open, nan_ok;
    } ranges[] = {
        {"--lr", o->lr, 0, INFINITY, 0, 1, 1},
        {"--momentum", o->momentum, 0, 1, 0, 1, 1},
        {"--dampening", o->dampening, 0, 1, 0, 0, 0},
        {"--beta1", o->beta1, 0, 1, 0, 1, 0},
        {"--beta2", o->beta2, 0, 1, 0, 1, 0},
        {"--eps", o->eps, 0, INFINITY, 1, 1, 1},
        {"--weight-decay", o->weight_decay, 0, INFINITY, 0, 1, 1},
        {"--alpha", o->alpha, 0, 1, 0, 1, 0},
        {"--clip-value", o->clip_value, 0, INFINITY, 0, 1, 0},
        {"--clip-norm", o->clip_norm, 0, INFINITY, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; ++i) {
        const double v = ranges[i].value;
        if (isnan(v) && ranges[i].nan_ok)
            continue;
        const int ok = !isnan(v) && (ranges[i].low_open ? v > ranges[i].low : v >= ranges[i].low) &&
                       (ranges[i].high_open ? v < ranges[i].high : v <= ranges[i].high);
        if (!ok)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "%s %g is out of range: need a value in %c%g, %g%c", ranges[i].flag,
                              v, ranges[i].low_open ? '(' : '[', ranges[i].low, ranges[i].high,
                              ranges[i].high_open ? ')' : ']');
    }
    if (o->precision != CLOPT_FLOAT && o->precision != CLOPT_DOUBLE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "precision must be float or double");
    if (o->precision == CLOPT_DOUBLE && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "device '%s' has no double precision (cl_khr_fp64): use "
                          "--precision float or another device",
                          ctx->info.name);
    if (o->loss_every == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--loss-every must be at least 1");
    if (o->gtol < 0 || isinf(o->gtol))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--gtol must be a finite number >= 0");
    if (o->ftol < 0 || isinf(o->ftol))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--ftol must be a finite number >= 0");
    if (isinf(o->target))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--target must be finite");
    if (o->init != CLOPT_INIT_NORMAL && o->init != CLOPT_INIT_UNIFORM &&
        o->init != CLOPT_INIT_CONST && o->init != CLOPT_INIT_NONE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "unknown init kind");
    if (!isfinite(o->init_value))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "the init value must be finite");
    if (o->n_params && !o->params)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "n_params > 0 but params is NULL");
    if (o->checkpoint && !*o->checkpoint)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--checkpoint needs a file name");
    if (o->checkpoint_every && !o->checkpoint)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--checkpoint-every needs --checkpoint FILE");
    return CLOPT_OK;
}

/* Fills the optimizer's defaults, checks what only it can, and parses the schedule. */
static int resolve_hyper(struct clopt_solver *s)
{
    struct clopt_options *o = &s->opts;
    const struct clopt_optimizer_type *opt = s->optimizer;
    if (isnan(o->lr))
        o->lr = opt->default_lr;
    if (isnan(o->eps))
        o->eps = opt->default_eps;
    if (isnan(o->weight_decay))
        o->weight_decay = opt->default_weight_decay;
    if (isnan(o->momentum))
        o->momentum = opt->default_momentum;
    const char *problem = opt->check ? opt->check(o) : NULL;
    if (problem)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "%s", problem);
    const char *why = NULL;
    if (clopt_schedule_parse(o->schedule, &s->schedule, &why))
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG, "--schedule '%s': %s", o->schedule, why);
    s->hyper = (struct clopt_hyper_in){.lr = o->lr,
                                       .weight_decay = o->weight_decay,
                                       .momentum = o->momentum,
                                       .dampening = o->dampening,
                                       .beta1 = o->beta1,
                                       .beta2 = o->beta2,
                                       .eps = o->eps,
                                       .alpha = o->alpha};
    s->n_state = opt->n_state(o);
    return CLOPT_OK;
}

/* The kernel's hyper-parameters for global step `step` (0-based). */
static void hyper_for_step(const struct clopt_solver *s, uint64_t step, int fresh_state,
                           double h[CLOPT_HYPER_SLOTS])
{
    struct clopt_hyper_in in = s->hyper;
    in.lr = clopt_schedule_lr(&s->schedule, s->hyper.lr, step);
    in.step = step + 1;
    in.fresh_state = fresh_state;
    for (size_t i = 0; i < CLOPT_HYPER_SLOTS; ++i)
        h[i] = 0;
    s->optimizer->hyper(&in, h);
}

/* The largest power of two <= x (x >= 1). */
static size_t floor_power_of_two(size_t x)
{
    size_t p = 1;
    while (p <= x / 2)
        p *= 2;
    return p;
}

/* Fills knob defaults for the device type and checks the caller's choices. */
static int resolve_knobs(struct clopt_solver *s, size_t max_group)
{
    struct clopt_context *ctx = s->ctx;
    struct clopt_knobs k = s->opts.knobs;
    const int cpu = ctx->info.kind == CLOPT_DEVICE_CPU;
    const size_t group_limit = floor_power_of_two(max_group);
    /* CPU runtimes (PoCL) turn barriers into loops over work-items: long contiguous chunks,
     * lane accumulators and per-work-item partials. GPUs want adjacent work-items on
     * adjacent elements and a local tree. See shared/PERF-NOTES.md. */
    if (!k.work_group) {
        k.work_group = cpu ? 16 : 256;
        if (k.work_group > group_limit)
            k.work_group = group_limit;
    }
    if (!k.elems_per_item)
        k.elems_per_item = cpu ? 4096 : 16;
    if (!k.vector_width) {
        k.vector_width = cpu ? 16 : 1;
        if (k.vector_width > k.elems_per_item)
            k.vector_width = k.elems_per_item;
    }
    /* Converting each loss term to double costs a CPU as much as the update itself; blocks
     * of 16 keep the worst-case relative error of a block below 1e-6. */
    if (!k.loss_block)
        k.loss_block = cpu ? 16 : 1;
    if (!k.layout)
        k.layout = cpu ? 1 : 2;
    if (!k.group_partials)
        k.group_partials = cpu ? 1 : 2;
    if (!k.reduce_group) {
        k.reduce_group = cpu ? 1 : 256;
        if (k.reduce_group > group_limit)
            k.reduce_group = group_limit;
    }
    if (!is_power_of_two(k.work_group) || k.work_group > max_group)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "work-group size %zu must be a power of two <= %zu (the device's "
                          "maximum)",
                          k.work_group, group_limit);
    if (!is_power_of_two(k.reduce_group) || k.reduce_group > max_group)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "reduction work-group size %zu must be a power of two <= %zu",
                          k.reduce_group, group_limit);
    if (!is_power_of_two(k.elems_per_item) || k.elems_per_item > ((size_t)1 << 20))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "elements per work-item %zu must be a power of two <= 2^20",
                          k.elems_per_item);
    if (!is_power_of_two(k.vector_width) || k.vector_width > 16 ||
        k.vector_width > k.elems_per_item)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "vector width %zu must be 1, 2, 4, 8 or 16 and at most the elements "
                          "per work-item (%zu)",
                          k.vector_width, k.elems_per_item);
    if (!is_power_of_two(k.loss_block) || k.loss_block > 1024)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "loss block %zu must be a power of two <= 1024", k.loss_block);
    if (k.layout != 1 && k.layout != 2)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "layout must be 1 (contiguous) or 2 (strided)");
    if (k.group_partials != 1 && k.group_partials != 2)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "partials must be 1 (per work-item) or 2 (per work-group)");
    if (k.accumulate != 0 && k.accumulate != 1 && k.accumulate != 2)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "accumulate must be 1 (double) or 2 (compensated float)");
    if (k.accumulate == 1 && !ctx->info.has_fp64)
        return clopt_fail(ctx, CLOPT_ERR_UNSUPPORTED,
                          "device '%s' has no fp64 for double accumulators: use acc=kahan",
                          ctx->info.name);
    if (!k.accumulate)
        k.accumulate = ctx->info.has_fp64 ? 1 : 2;
    if (!k.fuse)
        k.fuse = 1;
    /* Measured on PoCL at n = 1e8: +40 % for the single step, +60 % for a fused one. */
    if (!k.prefetch)
        k.prefetch = cpu ? 1024 : 1;
    if (k.prefetch > ((size_t)1 << 20) || (k.prefetch > 1 && !is_power_of_two(k.prefetch)))
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "pf=%zu: the prefetch distance must be off or a power of two <= 2^20 "
                          "elements",
                          k.prefetch);
    /* Measured on PoCL 3.1 (Xeon, AVX-512, n = 1e8): fused GD 1.0e10 -> 1.6e10-1.9e10
     * element-iterations/s; a single step is bandwidth-bound either way. */
    if (!k.simd_bits)
        k.simd_bits = cpu ? 512 : 256;
    if (k.simd_bits != 256 && k.simd_bits != 512)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "simd=%zu: use 256 (the compiler's choice) or 512", k.simd_bits);
    if (k.fuse > FUSE_MAX)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "fuse=%zu: fuse at most %d iterations",
                          k.fuse, FUSE_MAX);
    if (k.groups_per_cu > 1024)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "gpcu=%zu: use 0 (one group per tile) or 1..1024 groups per compute "
                          "unit",
                          k.groups_per_cu);
    /* The fused kernel keeps a block of vw x fblock elements of theta, the state and a
     * data vector per work-item in private memory: a GPU spills that to slow memory, a CPU
     * runtime to its stack. */
    const size_t block = k.vector_width * k.loss_block < k.elems_per_item
                             ? k.vector_width * k.loss_block
                             : k.elems_per_item;
    const size_t private_bytes = block * (2 + s->n_state) * s->elem_size;
    if (k.fuse > 1 && private_bytes > FUSE_PRIVATE_BYTES)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "fuse=%zu keeps %zu elements (vw x fblock) of theta and its state per "
                          "work-item in private memory, %zu KiB: lower vw or fblock to stay "
                          "within %d KiB",
                          k.fuse, block, private_bytes / 1024, FUSE_PRIVATE_BYTES / 1024);
    if (k.fuse > 1 && s->opts.clip_norm > 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "fuse=%zu cannot be used with --clip-norm (every step needs the global "
                          "gradient norm first): use fuse=1",
                          k.fuse);
    s->knobs = k;
    return CLOPT_OK;
}

static int plan_shards(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    const size_t tile = s->knobs.work_group * s->knobs.elems_per_item;
    size_t cap = (size_t)ctx->info.max_alloc_bytes;
    if (s->opts.max_shard_bytes && s->opts.max_shard_bytes < cap)
        cap = s->opts.max_shard_bytes;
    const size_t cap_elems = cap / s->elem_size;
    const size_t tiles_per_shard = cap_elems > 2 * s->halo ? (cap_elems - 2 * s->halo) / tile : 0;
    if (tiles_per_shard == 0)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "a shard of %zu bytes cannot hold one tile of %zu elements (%zu "
                          "bytes): raise --max-shard-bytes or lower wg/epw",
                          cap, tile, tile * s->elem_size);
    const size_t per_shard = tiles_per_shard * tile;
    /* Every shard but the last is whole tiles, so the slots are numbered as for one shard. */
    const size_t tiles = s->n / tile + (s->n % tile != 0);
    const size_t slots_per_tile = s->knobs.group_partials == 2 ? 1 : s->knobs.work_group;
    s->n_partials = tiles * slots_per_tile;
    /* A fused launch keeps one set of partials per iteration. */
    const double partial_bytes =
        (double)s->n_partials * 2.0 * (double)s->acc_size * (double)s->knobs.fuse;
    /* theta, its ping-pong partner for stencils, the state and a data vector. */
    const double vectors =
        1.0 + (s->halo ? 1.0 : 0.0) + (double)s->n_state + (s->data_path ? 1.0 : 0.0);
    const double need = (double)s->n * (double)s->elem_size * vectors + partial_bytes;
    if (need > (double)ctx->info.global_mem_bytes)
        return clopt_fail(
            ctx, CLOPT_ERR_OUT_OF_MEMORY,
            "needs %.2f GiB, device '%s' has %.2f GiB: lower --dim%s, or pick a larger "
            "device%s",
            gib(need), ctx->info.name, gib((double)ctx->info.global_mem_bytes),
            s->opts.precision == CLOPT_DOUBLE ? ", use --precision float" : "",
            ctx->info.kind == CLOPT_DEVICE_CPU ? " (PoCL: raise POCL_MEMORY_LIMIT, in GB)" : "");
    if (partial_bytes > (double)ctx->info.max_alloc_bytes)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "the loss partials (%.2f GiB) exceed the device's largest buffer: "
                          "raise epw or wg, or use partials=group",
                          gib(partial_bytes));
    s->n_shards = (s->n + per_shard - 1) / per_shard;
    s->shards = calloc(s->n_shards, sizeof *s->shards);
    if (!s->shards)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory for %zu shards",
                          s->n_shards);
    for (size_t i = 0; i < s->n_shards; ++i) {
        struct shard *sh = &s->shards[i];
        sh->offset = i * per_shard;
        sh->count = i + 1 < s->n_shards ? per_shard : s->n - sh->offset;
        size_t groups = (sh->count + tile - 1) / tile;
        const size_t grid = (size_t)ctx->info.compute_units * s->knobs.groups_per_cu;
        if (s->knobs.groups_per_cu && grid < groups)
            groups = grid ? grid : 1;
        sh->global_size = groups * s->knobs.work_group;
        sh->partial_base = sh->offset / tile * slots_per_tile;
    }
    /* A halo comes from the one neighbouring shard, so every shard but the last must hold
     * at least a halo (beyond a short last shard lie the zeros past the end of theta). */
    if (s->n_shards > 1 && per_shard < s->halo)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "shards of %zu elements are smaller than the stencil radius %zu: raise "
                          "--max-shard-bytes or the tile (wg x epw)",
                          per_shard, s->halo);
    return CLOPT_OK;
}

/* The radius R of "#define CLOPT_STENCIL_RADIUS R" on a line of text; 0 when no line
 * has that form. */
static size_t declared_radius(const char *text)
{
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *c = line;
        while (*c == ' ' || *c == '\t')
            ++c;
        if (*c++ != '#')
            continue;
        while (*c == ' ' || *c == '\t')
            ++c;
        if (strncmp(c, "define", 6) != 0)
            continue;
        c += 6;
        if (*c != ' ' && *c != '\t')
            continue;
        while (*c == ' ' || *c == '\t')
            ++c;
        const char name[] = "CLOPT_STENCIL_RADIUS";
        if (strncmp(c, name, sizeof name - 1) != 0)
            continue;
        c += sizeof name - 1;
        if (*c != ' ' && *c != '\t')
            continue;
        while (*c == ' ' || *c == '\t')
            ++c;
        size_t radius = 0;
        int digits = 0;
        while (isdigit((unsigned char)*c) && radius <= MAX_STENCIL_RADIUS) {
            radius = radius * 10 + (size_t)(*c++ - '0');
            ++digits;
        }
        if (digits && !isalnum((unsigned char)*c) && *c != '_' && *c != '.')
            return radius;
    }
    return 0;
}

int clopt_inspect_user_objective(struct clopt_context *ctx, const char *path, size_t *radius)
{
    char *text = NULL;
    size_t length = 0;
    *radius = 0;
    int status = clopt_read_file(ctx, path, &text, &length);
    if (status != CLOPT_OK)
        return status;
    if (strstr(text, "clopt_fdf_data")) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                            "objective file '%s' defines clopt_fdf_data: objectives with a data "
                            "vector are built-in only (shifted_sphere); use clopt_fdf or "
                            "clopt_fdf_stencil",
                            path);
    } else if (strstr(text, "clopt_fdf_stencil")) {
        *radius = declared_radius(text);
        if (*radius < 1 || *radius > MAX_STENCIL_RADIUS)
            status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                                "objective file '%s' defines clopt_fdf_stencil but no line "
                                "'#define CLOPT_STENCIL_RADIUS R' with R from 1 to %d (see README)",
                                path, MAX_STENCIL_RADIUS);
    } else if (!strstr(text, "clopt_fdf")) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                            "objective file '%s' defines no clopt_fdf: it must define "
                            "real clopt_fdf(real x, ulong i, real *g) or clopt_fdf_stencil "
                            "(see README)",
                            path);
    }
    free(text);
    return status;
}

/* The objective's shape: stencil radius, and the file of its data vector if it has one. */
static int resolve_objective(struct clopt_solver *s)
{
    const struct clopt_objective_type *obj = s->objective;
    if (!obj)
        return clopt_inspect_user_objective(s->ctx, s->opts.objective, &s->halo);
    s->halo = obj->stencil_radius;
    if (!obj->data_param)
        return CLOPT_OK;
    for (size_t i = 0; i < s->opts.n_params; ++i)
        if (s->opts.params[i].key && !strcmp(s->opts.params[i].key, obj->data_param) &&
            s->opts.params[i].value && *s->opts.params[i].value) {
            s->data_path = clopt_format("%s", s->opts.params[i].value);
            return s->data_path ? CLOPT_OK
                                : clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        }
    return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                      "objective '%s' needs --param %s=FILE.npy (n float32/float64 values)",
                      obj->name, obj->data_param);
}

static int build(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    char *defines = NULL, *options = NULL;
    int status = clopt_param_defines(ctx, s->objective, &s->opts, &defines);
    if (status != CLOPT_OK)
        return status;
    /* The dimension is a kernel argument; only objectives that fold it into constants get
     * it as a define as well (which costs a build per size). */
    char dim_define[48] = "";
    if (!s->objective || s->objective->uses_dim)
        snprintf(dim_define, sizeof dim_define, " -DCLOPT_N=%zuUL", s->n);
    char clip[128] = "";
    if (s->opts.clip_value > 0)
        snprintf(clip, sizeof clip, " -DCLOPT_CLIP_VALUE=%.17e", s->opts.clip_value);
    if (s->opts.clip_norm > 0)
        snprintf(clip + strlen(clip), sizeof clip - strlen(clip), " -DCLOPT_CLIP_NORM=%.17e",
                 s->opts.clip_norm);
    options = clopt_format(
        "-cl-std=CL1.2 -cl-denorms-are-zero -DCLOPT_HAS_FP64=%d -DCLOPT_DOUBLE=%d%s "
        "-DCLOPT_WG=%zu -DCLOPT_EPW=%zu -DCLOPT_VW=%zu -DCLOPT_FBLOCK=%zu -DCLOPT_LAYOUT=%d "
        "-DCLOPT_GROUP_PARTIALS=%d -DCLOPT_RWG=%zu -DCLOPT_ACC_KAHAN=%d -DCLOPT_WD=%d "
        "-DCLOPT_MAXIMIZE=%d -DCLOPT_HOST_HALO=%zu -DCLOPT_FUSE=%zu -DCLOPT_GPCU=%zu "
        "-DCLOPT_PREFETCH=%zu -DCLOPT_SIMD512=%d%s%s%s",
        ctx->info.has_fp64 ? 1 : 0, s->opts.precision == CLOPT_DOUBLE, dim_define,
        s->knobs.work_group, s->knobs.elems_per_item, s->knobs.vector_width, s->knobs.loss_block,
        s->knobs.layout, s->knobs.group_partials == 2, s->knobs.reduce_group,
        s->knobs.accumulate == 2, s->opts.weight_decay > 0, s->opts.maximize != 0, s->halo,
        s->knobs.fuse, s->knobs.groups_per_cu, s->knobs.prefetch > 1 ? s->knobs.prefetch : 0,
        s->knobs.simd_bits == 512, s->optimizer->defines(&s->opts), clip, defines);
    free(defines);
    if (!options)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    const struct clopt_program_part parts[] = {
        {"common.cl", 0},
        {s->objective ? s->objective->file : s->opts.objective, s->objective == NULL},
        {s->optimizer->file, 0},
        {"step.cl", 0},
        {"reduce.cl", 0},
        {"init.cl", 0},
    };
    status = clopt_build_program(ctx, parts, sizeof parts / sizeof *parts, options, &s->program);
    free(options);
    if (status != CLOPT_OK)
        return status;
    struct {
        cl_kernel *kernel;
        const char *name;
    } kernels[] = {{&s->k_step, "clopt_step"}, {&s->k_step_loss, "clopt_step_loss"},
                   {&s->k_eval, "clopt_eval"}, {&s->k_reduce, "clopt_reduce"},
                   {&s->k_init, "clopt_init"}, {&s->k_fused, "clopt_step_fused"}};
    const size_t n_kernels = sizeof kernels / sizeof *kernels - (s->knobs.fuse > 1 ? 0 : 1);
    for (size_t i = 0; i < n_kernels; ++i) {
        cl_int err;
        *kernels[i].kernel = clCreateKernel(s->program, kernels[i].name, &err);
        if (err != CL_SUCCESS) {
            *kernels[i].kernel = NULL;
            return clopt_fail_cl(ctx, err, kernels[i].name);
        }
        /* A kernel's own limit (registers, local memory) can be below the device's. */
        size_t limit = 0;
        err = clGetKernelWorkGroupInfo(*kernels[i].kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof limit, &limit, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(ctx, err, "clGetKernelWorkGroupInfo");
        const int is_reduce = kernels[i].kernel == &s->k_reduce;
        const size_t wanted = is_reduce                         ? s->knobs.reduce_group
                              : kernels[i].kernel == &s->k_init ? 1
                                                                : s->knobs.work_group;
        if (wanted > limit)
            return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                              "kernel %s allows work-groups of at most %zu on this device, not "
                              "%zu: set a smaller --tune %s",
                              kernels[i].name, limit, wanted, is_reduce ? "rwg" : "wg");
    }
    return CLOPT_OK;
}

static int allocate(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    cl_int err;
    for (size_t i = 0; i < s->n_shards; ++i) {
        struct shard *sh = &s->shards[i];
        const size_t theta_bytes = (sh->count + 2 * s->halo) * s->elem_size;
        sh->theta = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, theta_bytes, NULL, &err);
        if (err != CL_SUCCESS) {
            sh->theta = NULL;
            return clopt_fail_cl(ctx, err, "clCreateBuffer(theta)");
        }
        if (s->halo) {
            sh->theta_next =
                clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, theta_bytes, NULL, &err);
            if (err != CL_SUCCESS) {
                sh->theta_next = NULL;
                return clopt_fail_cl(ctx, err,
                                     "clCreateBuffer(theta, second copy for the stencil)");
            }
            /* The halos beyond both ends of theta are never written: keep them at zero. */
            const cl_uchar zero = 0;
            cl_mem both[2] = {sh->theta, sh->theta_next};
            for (size_t k = 0; k < 2; ++k) {
                err = clEnqueueFillBuffer(ctx->queue, both[k], &zero, sizeof zero, 0, theta_bytes,
                                          0, NULL, NULL);
                if (err != CL_SUCCESS)
                    return clopt_fail_cl(ctx, err, "clEnqueueFillBuffer(theta halo)");
            }
        }
        if (s->data_path) {
            sh->data = clCreateBuffer(ctx->context, CL_MEM_READ_ONLY, sh->count * s->elem_size,
                                      NULL, &err);
            if (err != CL_SUCCESS) {
                sh->data = NULL;
                return clopt_fail_cl(ctx, err, "clCreateBuffer(objective data)");
            }
        }
        for (size_t k = 0; k < s->n_state; ++k) {
            sh->state[k] = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, sh->count * s->elem_size,
                                          NULL, &err);
            if (err != CL_SUCCESS) {
                sh->state[k] = NULL;
                return clopt_fail_cl(ctx, err, "clCreateBuffer(optimizer state)");
            }
        }
    }
    const size_t partial_bytes = s->n_partials * 2 * s->acc_size * s->knobs.fuse;
    s->partials = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, partial_bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        s->partials = NULL;
        return clopt_fail_cl(ctx, err, "clCreateBuffer(partials)");
    }
    /* Launches with no elements (warm-up) may leave slots unwritten. */
    const cl_uchar zero = 0;
    err = clEnqueueFillBuffer(ctx->queue, s->partials, &zero, sizeof zero, 0, partial_bytes, 0,
                              NULL, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clEnqueueFillBuffer(partials)");
    if (s->knobs.fuse > 1) {
        s->fused_hyper =
            clCreateBuffer(ctx->context, CL_MEM_READ_ONLY,
                           s->knobs.fuse * CLOPT_HYPER_SLOTS * s->elem_size, NULL, &err);
        if (err != CL_SUCCESS) {
            s->fused_hyper = NULL;
            return clopt_fail_cl(ctx, err, "clCreateBuffer(fused hyper-parameters)");
        }
        /* The warm-up launch reads it before the first block fills it. */
        err = clEnqueueFillBuffer(ctx->queue, s->fused_hyper, &zero, sizeof zero, 0,
                                  s->knobs.fuse * CLOPT_HYPER_SLOTS * s->elem_size, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(ctx, err, "clEnqueueFillBuffer(fused hyper-parameters)");
    }
    s->result = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, 2 * s->acc_size, NULL, &err);
    if (err != CL_SUCCESS) {
        s->result = NULL;
        return clopt_fail_cl(ctx, err, "clCreateBuffer(result)");
    }
    return CLOPT_OK;
}

/* A real-typed kernel argument holds either a float or a double. */
union real_arg {
    float f;
    double d;
};

static union real_arg real_value(const struct clopt_solver *s, double x)
{
    union real_arg r;
    if (s->elem_size == sizeof(double))
        r.d = x;
    else
        r.f = (float)x;
    return r;
}

static int set_arg(struct clopt_context *ctx, cl_kernel kernel, cl_uint index, size_t size,
                   const void *value)
{
    cl_int err = clSetKernelArg(kernel, index, size, value);
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(ctx, err, "clSetKernelArg");
}

/* Optimizer state starts at zero (velocity, moments). */
static int reset_state(struct clopt_solver *s)
{
    const cl_uchar zero = 0;
    for (size_t i = 0; i < s->n_shards; ++i)
        for (size_t k = 0; k < s->n_state; ++k) {
            cl_int err =
                clEnqueueFillBuffer(s->ctx->queue, s->shards[i].state[k], &zero, sizeof zero, 0,
                                    s->shards[i].count * s->elem_size, 0, NULL, NULL);
            if (err != CL_SUCCESS)
                return clopt_fail_cl(s->ctx, err, "clEnqueueFillBuffer(optimizer state)");
        }
    s->fresh_state = 1;
    return CLOPT_OK;
}

static int init_theta(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    const cl_uint kinds[] = {[CLOPT_INIT_NORMAL] = 0,
                             [CLOPT_INIT_UNIFORM] = 1,
                             [CLOPT_INIT_CONST] = 2,
                             [CLOPT_INIT_NONE] = 2};
    const cl_uint kind = kinds[s->opts.init];
    const union real_arg value =
        real_value(s, s->opts.init == CLOPT_INIT_NONE ? 0.0 : s->opts.init_value);
    const cl_uint seed_lo = (cl_uint)s->opts.seed, seed_hi = (cl_uint)(s->opts.seed >> 32);
    const size_t block = 256;
    for (size_t i = 0; i < s->n_shards; ++i) {
        struct shard *sh = &s->shards[i];
        cl_ulong count = sh->count, offset = sh->offset;
        int status = set_arg(ctx, s->k_init, 0, sizeof(cl_mem), &sh->theta);
        if (!status)
            status = set_arg(ctx, s->k_init, 1, sizeof count, &count);
        if (!status)
            status = set_arg(ctx, s->k_init, 2, sizeof offset, &offset);
        if (!status)
            status = set_arg(ctx, s->k_init, 3, sizeof kind, &kind);
        if (!status)
            status = set_arg(ctx, s->k_init, 4, s->elem_size, &value);
        if (!status)
            status = set_arg(ctx, s->k_init, 5, sizeof seed_lo, &seed_lo);
        if (!status)
            status = set_arg(ctx, s->k_init, 6, sizeof seed_hi, &seed_hi);
        const cl_ulong halo = s->halo;
        if (!status)
            status = set_arg(ctx, s->k_init, 7, sizeof halo, &halo);
        if (status)
            return status;
        const size_t global = (sh->count + block - 1) / block * block;
        cl_int err =
            clEnqueueNDRangeKernel(ctx->queue, s->k_init, 1, NULL, &global, NULL, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(clopt_init)");
    }
    int status = reset_state(s);
    if (status != CLOPT_OK)
        return status;
    cl_int err = clFinish(ctx->queue);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clFinish(clopt_init)");
    s->theta_generated = s->opts.init != CLOPT_INIT_NONE;
    return CLOPT_OK;
}

/* Appends one "key=value" line to *text. */
static int add_line(char **text, const char *key, const char *value)
{
    char *grown = clopt_format("%s%s=%s\n", *text, key, value);
    if (!grown)
        return -1;
    free(*text);
    *text = grown;
    return 0;
}

static int add_number(char **text, const char *key, double value)
{
    char buffer[40];
    snprintf(buffer, sizeof buffer, "%.17g", value);
    return add_line(text, key, buffer);
}

/* The settings that define a run's trajectory, which a checkpoint must share with the run
 * that resumes it. Lines starting with "info." are recorded but may differ (the learning
 * rate and schedule, so that a diverged run can go on more carefully). */
static int build_config(struct clopt_solver *s, const struct clopt_options *in)
{
    const struct clopt_options *o = &s->opts;
    char *text = clopt_format("%s", "");
    int bad = !text || add_line(&text, "objective", in->objective);
    /* Parameters in key order, so that the order of the flags does not matter. */
    const char *last = "";
    for (size_t done = 0; done < in->n_params && !bad; ++done) {
        const struct clopt_param *next = NULL;
        for (size_t i = 0; i < in->n_params; ++i)
            if (strcmp(in->params[i].key, last) > 0 &&
                (!next || strcmp(in->params[i].key, next->key) < 0))
                next = &in->params[i];
        if (!next)
            break;
        char key[80];
        snprintf(key, sizeof key, "param.%s", next->key);
        bad = add_line(&text, key, next->value ? next->value : "");
        last = next->key;
    }
    char dim[32];
    snprintf(dim, sizeof dim, "%zu", s->n);
    bad = bad || add_line(&text, "dim", dim) ||
          add_line(&text, "precision", o->precision == CLOPT_DOUBLE ? "double" : "float") ||
          add_line(&text, "optimizer", s->optimizer->name) ||
          add_number(&text, "momentum", o->momentum) ||
          add_number(&text, "dampening", o->dampening) || add_number(&text, "beta1", o->beta1) ||
          add_number(&text, "beta2", o->beta2) || add_number(&text, "eps", o->eps) ||
          add_number(&text, "weight_decay", o->weight_decay) ||
          add_number(&text, "alpha", o->alpha) || add_number(&text, "amsgrad", o->amsgrad != 0) ||
          add_number(&text, "maximize", o->maximize != 0) ||
          add_number(&text, "clip_value", o->clip_value) ||
          add_number(&text, "clip_norm", o->clip_norm) ||
          add_number(&text, "loss_every", (double)o->loss_every) ||
          add_number(&text, "info.lr", o->lr) ||
          add_line(&text, "info.schedule", in->schedule ? in->schedule : "constant") ||
          add_number(&text, "info.init", (double)o->init) ||
          add_number(&text, "info.init_value", o->init_value) ||
          add_number(&text, "info.seed", (double)o->seed);
    if (bad) {
        free(text);
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    s->config = text;
    if (in->checkpoint) {
        s->checkpoint_path = clopt_format("%s", in->checkpoint);
        if (!s->checkpoint_path)
            return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    return CLOPT_OK;
}

int clopt_solver_create(struct clopt_solver **out, struct clopt_context *ctx,
                        const struct clopt_options *opts)
{
    *out = NULL;
    if (!ctx)
        return CLOPT_ERR_INVALID_ARG;
    struct clopt_options defaults;
    if (!opts) {
        clopt_options_init(&defaults);
        opts = &defaults;
    }
    int status = validate_options(ctx, opts);
    if (status != CLOPT_OK)
        return status;
    struct clopt_solver *s = calloc(1, sizeof *s);
    if (!s)
        return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    s->ctx = ctx;
    s->opts = *opts;
    s->objective = ends_with(opts->objective, ".cl") ? NULL : clopt_find_objective(opts->objective);
    s->optimizer = clopt_find_optimizer(opts->optimizer);
    s->n = opts->dim;
    s->elem_size = opts->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    status = resolve_hyper(s);
    if (status == CLOPT_OK)
        status = build_config(s, opts);
    if (status != CLOPT_OK)
        goto cleanup;
    size_t lag = (LAG_ELEMS + s->n - 1) / s->n;
    s->lag = lag < LAG_MIN ? LAG_MIN : lag > LAG_MAX ? LAG_MAX : lag;

    size_t max_group = 0;
    cl_int err = clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_group,
                                 &max_group, NULL);
    if (err != CL_SUCCESS) {
        status = clopt_fail_cl(ctx, err, "clGetDeviceInfo(CL_DEVICE_MAX_WORK_GROUP_SIZE)");
        goto cleanup;
    }
    status = resolve_knobs(s, max_group);
    /* A fused run looks at losses between blocks: those of the block just queued must not
     * be due yet, or the host would wait for the device after every block. */
    if (s->knobs.fuse > 1 && s->lag < s->knobs.fuse + 1)
        s->lag = s->knobs.fuse + 1;
    s->acc_size = s->knobs.accumulate == 1 ? sizeof(double) : sizeof(float);
    if (status == CLOPT_OK)
        status = resolve_objective(s);
    if (status == CLOPT_OK && s->knobs.fuse > 1 && s->halo)
        status = clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                            "fuse=%zu needs a separable objective; '%s' is a stencil objective "
                            "(each step needs its neighbours' updated values): use fuse=1",
                            s->knobs.fuse, opts->objective);
    if (status == CLOPT_OK)
        status = plan_shards(s);
    if (status == CLOPT_OK)
        status = build(s);
    if (status == CLOPT_OK)
        status = allocate(s);
    if (status == CLOPT_OK && s->data_path)
        status = load_data(s);
    if (status == CLOPT_OK)
        status = init_theta(s);
    if (status == CLOPT_OK)
        status = warm_up(s);
cleanup:
    /* Pointers into the caller's memory are not kept past this call. */
    s->opts.params = NULL;
    s->opts.n_params = 0;
    s->opts.objective = NULL;
    s->opts.optimizer = NULL;
    s->opts.schedule = NULL;
    s->opts.checkpoint = NULL;
    if (status != CLOPT_OK) {
        clopt_solver_destroy(s);
        return status;
    }
    *out = s;
    return CLOPT_OK;
}

void clopt_solver_destroy(struct clopt_solver *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->shards && i < s->n_shards; ++i) {
        cl_mem vectors[] = {s->shards[i].theta, s->shards[i].theta_next, s->shards[i].data};
        for (size_t k = 0; k < sizeof vectors / sizeof *vectors; ++k)
            if (vectors[k])
                clReleaseMemObject(vectors[k]);
        for (size_t k = 0; k < MAX_STATE; ++k)
            if (s->shards[i].state[k])
                clReleaseMemObject(s->shards[i].state[k]);
    }
    free(s->shards);
    free(s->data_path);
    finish_checkpoint(s); /* a failure here has nobody left to tell */
    free(s->config);
    free(s->checkpoint_path);
    free(s->resume);
    if (s->partials)
        clReleaseMemObject(s->partials);
    if (s->result)
        clReleaseMemObject(s->result);
    if (s->fused_hyper)
        clReleaseMemObject(s->fused_hyper);
    cl_kernel kernels[] = {s->k_step,   s->k_step_loss, s->k_eval,
                           s->k_reduce, s->k_init,      s->k_fused};
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; ++i)
        if (kernels[i])
            clReleaseKernel(kernels[i]);
    if (s->program)
        clReleaseProgram(s->program);
    free(s);
}

/* Copies between host memory of one precision and theta, shard by shard. */
/* Which vector: 0 is theta, k + 1 is optimizer state k. */
static int transfer(struct clopt_solver *s, size_t which, void *host,
                    enum clopt_precision host_prec, size_t offset, size_t count, int to_device)
{
    if (which > s->n_state && !(which == WHICH_DATA && s->data_path))
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "state vector %zu does not exist: optimizer '%s' keeps %zu", which - 1,
                          s->optimizer->name, s->n_state);
    struct clopt_context *ctx = s->ctx;
    if (!host && count)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "NULL host buffer");
    if (host_prec != CLOPT_FLOAT && host_prec != CLOPT_DOUBLE)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "unknown precision");
    if (offset > s->n || count > s->n - offset)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                          "range [%zu, %zu + %zu) lies outside theta of %zu elements", offset,
                          offset, count, s->n);
    const size_t host_size = host_prec == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    const int convert = host_size != s->elem_size;
    void *scratch = NULL;
    int status = CLOPT_OK;
    if (convert) {
        scratch = malloc(CONVERT_CHUNK * s->elem_size);
        if (!scratch)
            return clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < s->n_shards && count; ++i) {
        const struct shard *sh = &s->shards[i];
        if (offset >= sh->offset + sh->count || offset + count <= sh->offset)
            continue;
        size_t done = 0;
        while (offset + done < sh->offset + sh->count && done < count) {
            size_t in_shard = sh->offset + sh->count - (offset + done);
            size_t n = count - done < in_shard ? count - done : in_shard;
            if (convert && n > CONVERT_CHUNK)
                n = CONVERT_CHUNK;
            char *h = (char *)host + done * host_size;
            /* theta of a stencil objective starts after its halo. */
            const size_t dev_off =
                (offset + done - sh->offset + (which == 0 ? s->halo : 0)) * s->elem_size;
            cl_mem buffer = which == 0            ? sh->theta
                            : which == WHICH_DATA ? sh->data
                                                  : sh->state[which - 1];
            void *staging = convert ? scratch : h;
            if (to_device && convert)
                for (size_t k = 0; k < n; ++k) {
                    if (s->elem_size == sizeof(float))
                        ((float *)scratch)[k] = (float)((const double *)(const void *)h)[k];
                    else
                        ((double *)scratch)[k] = ((const float *)(const void *)h)[k];
                }
            cl_int err = to_device ? clEnqueueWriteBuffer(ctx->queue, buffer, CL_TRUE, dev_off,
                                                          n * s->elem_size, staging, 0, NULL, NULL)
                                   : clEnqueueReadBuffer(ctx->queue, buffer, CL_TRUE, dev_off,
                                                         n * s->elem_size, staging, 0, NULL, NULL);
            if (err != CL_SUCCESS) {
                status = clopt_fail_cl(ctx, err,
                                       to_device ? "clEnqueueWriteBuffer(theta)"
                                                 : "clEnqueueReadBuffer(theta)");
                goto cleanup;
            }
            if (!to_device && convert)
                for (size_t k = 0; k < n; ++k) {
                    if (s->elem_size == sizeof(float))
                        ((double *)(void *)h)[k] = ((const float *)scratch)[k];
                    else
                        ((float *)(void *)h)[k] = (float)((const double *)scratch)[k];
                }
            done += n;
        }
        offset += done;
        count -= done;
        host = (char *)host + done * host_size;
    }
cleanup:
    free(scratch);
    return status;
}

/* Reads the objective's data vector from its .npy file into the data shards. */
static int load_data(struct clopt_solver *s)
{
    struct clopt_context *ctx = s->ctx;
    char err[256];
    struct clopt_npy_info info;
    void *buffer = NULL;
    FILE *f = fopen(s->data_path, "rb");
    if (!f)
        return clopt_fail(ctx, CLOPT_ERR_BAD_FILE, "cannot open --param %s file '%s': %s",
                          s->objective->data_param, s->data_path, strerror(errno));
    int status = clopt_npy_read_header(f, &info, err, sizeof err);
    if (status != CLOPT_OK) {
        status =
            clopt_fail(ctx, status == CLOPT_ERR_IO ? CLOPT_ERR_IO : CLOPT_ERR_BAD_FILE,
                       "--param %s file '%s': %s", s->objective->data_param, s->data_path, err);
        goto cleanup;
    }
    if (info.count != s->n) {
        status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                            "--param %s file '%s' holds %llu values but theta has %zu (--dim)",
                            s->objective->data_param, s->data_path, (unsigned long long)info.count,
                            s->n);
        goto cleanup;
    }
    const size_t item = info.dtype == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    buffer = malloc(CONVERT_CHUNK * item);
    if (!buffer) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        goto cleanup;
    }
    for (size_t done = 0; done < s->n;) {
        const size_t chunk = s->n - done < CONVERT_CHUNK ? s->n - done : CONVERT_CHUNK;
        if (fread(buffer, item, chunk, f) != chunk) {
            status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE, "--param %s file '%s': read failed",
                                s->objective->data_param, s->data_path);
            goto cleanup;
        }
        for (size_t k = 0; k < chunk; ++k) {
            const double v = info.dtype == CLOPT_DOUBLE ? ((const double *)buffer)[k]
                                                        : ((const float *)buffer)[k];
            if (!isfinite(v) || (s->elem_size == sizeof(float) && fabs(v) > FLT_MAX)) {
                status = clopt_fail(ctx, CLOPT_ERR_BAD_FILE,
                                    "--param %s file '%s': value %zu is %g, not a finite %s",
                                    s->objective->data_param, s->data_path, done + k, v,
                                    s->elem_size == sizeof(float) ? "float" : "double");
                goto cleanup;
            }
        }
        status = transfer(s, WHICH_DATA, buffer, info.dtype, done, chunk, 1);
        if (status != CLOPT_OK)
            goto cleanup;
        done += chunk;
    }
cleanup:
    free(buffer);
    fclose(f);
    return status;
}

int clopt_solver_write_theta(struct clopt_solver *s, const void *src,
                             enum clopt_precision src_precision, size_t offset, size_t count)
{
    int status = transfer(s, 0, (void *)(uintptr_t)src, src_precision, offset, count, 1);
    if (status == CLOPT_OK)
        s->theta_generated = 0;
    return status;
}

size_t clopt_solver_state_count(const struct clopt_solver *s)
{
    return s->n_state;
}

uint64_t clopt_solver_steps(const struct clopt_solver *s)
{
    return s->step;
}

int clopt_solver_read_state(struct clopt_solver *s, size_t index, void *dst,
                            enum clopt_precision dst_precision, size_t offset, size_t count)
{
    if (index >= s->n_state)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "state vector %zu does not exist: optimizer '%s' keeps %zu", index,
                          s->optimizer->name, s->n_state);
    return transfer(s, index + 1, dst, dst_precision, offset, count, 0);
}

int clopt_solver_write_state(struct clopt_solver *s, size_t index, const void *src,
                             enum clopt_precision src_precision, size_t offset, size_t count)
{
    if (index >= s->n_state)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "state vector %zu does not exist: optimizer '%s' keeps %zu", index,
                          s->optimizer->name, s->n_state);
    int status = transfer(s, index + 1, (void *)(uintptr_t)src, src_precision, offset, count, 1);
    if (status == CLOPT_OK) {
        s->theta_generated = 0; /* a replay must start from this state, not from zero */
        s->fresh_state = 0;     /* a written velocity is history to continue from */
    }
    return status;
}

void clopt_solver_set_steps(struct clopt_solver *s, uint64_t steps)
{
    s->step = steps;
}

int clopt_solver_read_theta(struct clopt_solver *s, void *dst, enum clopt_precision dst_precision,
                            size_t offset, size_t count)
{
    return transfer(s, 0, dst, dst_precision, offset, count, 0);
}

/* Copies the elements next to each shard boundary into the neighbouring shard's halo, on
 * the device. Halos beyond the ends of theta stay zero. */
static int exchange_halos(struct clopt_solver *s)
{
    const size_t width = s->halo * s->elem_size;
    for (size_t i = 0; i + 1 < s->n_shards; ++i) {
        const struct shard *left = &s->shards[i], *right = &s->shards[i + 1];
        /* The last `halo` elements of left (buffer positions count .. count + halo) go in
         * front of right; the first ones of right (halo .. 2 halo) go behind left. */
        cl_int err = clEnqueueCopyBuffer(s->ctx->queue, left->theta, right->theta,
                                         left->count * s->elem_size, 0, width, 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueCopyBuffer(s->ctx->queue, right->theta, left->theta, width,
                                      (s->halo + left->count) * s->elem_size, width, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueCopyBuffer(halo)");
    }
    return CLOPT_OK;
}

/* The arguments every step kernel shares (CLOPT_STEP_PARAMS in step.cl); the fused kernel's
 * own come after them. */
#define STEP_ARGS (12 + CLOPT_HYPER_SLOTS)

/* Queues one step (or evaluation) kernel over every shard. */
static int enqueue_launches(struct clopt_solver *s, cl_kernel kernel,
                            const double hyper[CLOPT_HYPER_SLOTS], cl_event *last, int dry)
{
    struct clopt_context *ctx = s->ctx;
    union real_arg h[CLOPT_HYPER_SLOTS];
    for (size_t k = 0; k < CLOPT_HYPER_SLOTS; ++k)
        h[k] = real_value(s, hyper ? hyper[k] : 0.0);
    if (s->halo && !dry) {
        int status = exchange_halos(s);
        if (status != CLOPT_OK)
            return status;
    }
    for (size_t i = 0; i < s->n_shards; ++i) {
        struct shard *sh = &s->shards[i];
        /* A dry launch has the real shape but no elements: only the partials are written. */
        const cl_ulong count = dry ? 0 : sh->count, offset = sh->offset, base = sh->partial_base;
        /* A stencil reads theta and writes its partner; the data argument is unused (any
         * buffer) unless the objective has data. */
        cl_mem destination = s->halo ? sh->theta_next : sh->theta;
        cl_mem data = sh->data ? sh->data : sh->theta;
        int status = set_arg(ctx, kernel, 0, sizeof(cl_mem), &destination);
        for (cl_uint k = 0; k < MAX_STATE && !status; ++k)
            status = set_arg(ctx, kernel, 1 + k, sizeof(cl_mem), &sh->state[k]);
        if (!status)
            status = set_arg(ctx, kernel, 4, sizeof count, &count);
        if (!status)
            status = set_arg(ctx, kernel, 5, sizeof offset, &offset);
        if (!status)
            status = set_arg(ctx, kernel, 6, sizeof(cl_mem), &s->partials);
        if (!status)
            status = set_arg(ctx, kernel, 7, sizeof base, &base);
        for (cl_uint k = 0; k < CLOPT_HYPER_SLOTS && !status; ++k)
            status = set_arg(ctx, kernel, 8 + k, s->elem_size, &h[k]);
        if (!status)
            status = set_arg(ctx, kernel, 8 + CLOPT_HYPER_SLOTS, sizeof(cl_mem), &s->result);
        if (!status)
            status = set_arg(ctx, kernel, 9 + CLOPT_HYPER_SLOTS, sizeof(cl_mem), &sh->theta);
        if (!status)
            status = set_arg(ctx, kernel, 10 + CLOPT_HYPER_SLOTS, sizeof(cl_mem), &data);
        const cl_ulong n_total = s->n;
        if (!status)
            status = set_arg(ctx, kernel, STEP_ARGS - 1, sizeof n_total, &n_total);
        if (status)
            return status;
        const size_t local = s->knobs.work_group;
        cl_event *event = last && i + 1 == s->n_shards ? last : NULL;
        cl_int err = clEnqueueNDRangeKernel(ctx->queue, kernel, 1, NULL, &sh->global_size, &local,
                                            0, NULL, event);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(step)");
    }
    /* The updated stencil iterate is in the partners now. */
    if (s->halo && !dry && kernel != s->k_eval)
        for (size_t i = 0; i < s->n_shards; ++i) {
            cl_mem t = s->shards[i].theta;
            s->shards[i].theta = s->shards[i].theta_next;
            s->shards[i].theta_next = t;
        }
    return CLOPT_OK;
}

static int enqueue_reduce(struct clopt_solver *s, size_t iteration_slot, void *host,
                          cl_event *done);

/* Sets the fused kernel's own arguments: the hyper-parameter buffer, the distance between
 * one iteration's partials and the next's, and which iterations produce partials. */
static int set_fused_args(struct clopt_solver *s, cl_uint loss_mask)
{
    const cl_uint first = STEP_ARGS;
    const cl_ulong stride = s->n_partials;
    int status = set_arg(s->ctx, s->k_fused, first, sizeof(cl_mem), &s->fused_hyper);
    if (!status)
        status = set_arg(s->ctx, s->k_fused, first + 1, sizeof stride, &stride);
    if (!status)
        status = set_arg(s->ctx, s->k_fused, first + 2, sizeof loss_mask, &loss_mask);
    return status;
}

/* Queues knobs.fuse global steps s->step, s->step + 1, ... as one launch; iteration j of
 * the block writes loss partials to its own slots when bit j of loss_mask is set. Each
 * iteration's hyper-parameters are computed exactly as for a single step and written to
 * the device by fills, whose pattern the runtime copies at once (no host memory to keep
 * alive, no wait). */
static int enqueue_fused(struct clopt_solver *s, uint64_t loss_mask, cl_event *last)
{
    const size_t steps = s->knobs.fuse;
    for (size_t j = 0; j < steps; ++j) {
        double h[CLOPT_HYPER_SLOTS];
        /* Only a block's first iteration can see a fresh (never stepped) state. */
        hyper_for_step(s, s->step + j, j == 0 && s->fresh_state, h);
        union {
            float f[CLOPT_HYPER_SLOTS];
            double d[CLOPT_HYPER_SLOTS];
        } pattern;
        for (size_t k = 0; k < CLOPT_HYPER_SLOTS; ++k) {
            if (s->elem_size == sizeof(double))
                pattern.d[k] = h[k];
            else
                pattern.f[k] = (float)h[k];
        }
        const size_t bytes = CLOPT_HYPER_SLOTS * s->elem_size;
        cl_int err = clEnqueueFillBuffer(s->ctx->queue, s->fused_hyper, &pattern, bytes, j * bytes,
                                         bytes, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return clopt_fail_cl(s->ctx, err, "clEnqueueFillBuffer(fused hyper-parameters)");
    }
    int status = set_fused_args(s, (cl_uint)loss_mask);
    if (status == CLOPT_OK)
        status = enqueue_launches(s, s->k_fused, NULL, last, 0);
    if (status == CLOPT_OK) {
        s->step += steps;
        s->fresh_state = 0;
    }
    return status;
}

/* Queues global step s->step (with the loss partials when with_loss) and counts it. With
 * global-norm clipping the step needs ||g|| first: a pass that only reads theta reduces the
 * loss and ||g||^2 into the result buffer, and the update pass reads the norm from there,
 * all on the device. That pass also serves as the iteration's loss evaluation. */
static int enqueue_step(struct clopt_solver *s, int with_loss, cl_event *last)
{
    double h[CLOPT_HYPER_SLOTS];
    hyper_for_step(s, s->step, s->fresh_state, h);
    if (s->opts.clip_norm > 0) {
        int status = enqueue_launches(s, s->k_eval, NULL, NULL, 0);
        if (status == CLOPT_OK)
            status = enqueue_reduce(s, 0, NULL, NULL);
        if (status == CLOPT_OK)
            status = enqueue_launches(s, s->k_step, h, last, 0);
        if (status == CLOPT_OK) {
            ++s->step;
            s->fresh_state = 0;
        }
        return status;
    }
    int status = enqueue_launches(s, with_loss ? s->k_step_loss : s->k_step, h, last, 0);
    if (status == CLOPT_OK) {
        ++s->step;
        s->fresh_state = 0;
    }
    return status;
}

/* Queues the reduction and a non-blocking read of its two values into host. */
/* Reads the result buffer's loss and ||g||^2 into host (non-blocking when done is given). */
static int enqueue_read_result(struct clopt_solver *s, void *host, cl_event *done)
{
    cl_int err = clEnqueueReadBuffer(s->ctx->queue, s->result, done ? CL_FALSE : CL_TRUE, 0,
                                     2 * s->acc_size, host, 0, NULL, done);
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(s->ctx, err, "clEnqueueReadBuffer(loss)");
}

/* Reduces the partials of iteration `iteration_slot` of the last launch (0 unless fused). */
static int enqueue_reduce(struct clopt_solver *s, size_t iteration_slot, void *host, cl_event *done)
{
    struct clopt_context *ctx = s->ctx;
    const cl_ulong count = s->n_partials, first = iteration_slot * s->n_partials;
    int status = set_arg(ctx, s->k_reduce, 0, sizeof(cl_mem), &s->partials);
    if (!status)
        status = set_arg(ctx, s->k_reduce, 1, sizeof count, &count);
    if (!status)
        status = set_arg(ctx, s->k_reduce, 2, sizeof(cl_mem), &s->result);
    if (!status)
        status = set_arg(ctx, s->k_reduce, 3, sizeof first, &first);
    if (status)
        return status;
    const size_t size = s->knobs.reduce_group;
    cl_int err =
        clEnqueueNDRangeKernel(ctx->queue, s->k_reduce, 1, NULL, &size, &size, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return clopt_fail_cl(ctx, err, "clEnqueueNDRangeKernel(clopt_reduce)");
    /* Without host the result stays on the device (clip-norm reads it there). */
    return host ? enqueue_read_result(s, host, done) : CLOPT_OK;
}

static void read_pair(const struct clopt_solver *s, const void *host, double *loss,
                      double *grad_norm)
{
    double f, g2;
    if (s->acc_size == sizeof(double)) {
        f = ((const double *)host)[0];
        g2 = ((const double *)host)[1];
    } else {
        f = ((const float *)host)[0];
        g2 = ((const float *)host)[1];
    }
    *loss = f;
    *grad_norm = sqrt(g2);
}

/* CPU runtimes (PoCL) compile each kernel for its launch shape on the first launch; doing
 * that here keeps it out of the first run's timing. */
static int warm_up(struct clopt_solver *s)
{
    double host[2];
    const cl_kernel kernels[] = {s->k_step, s->k_step_loss, s->k_eval, s->k_fused};
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; ++i) {
        if (!kernels[i])
            continue;
        int status = kernels[i] == s->k_fused ? set_fused_args(s, 0) : CLOPT_OK;
        if (status == CLOPT_OK)
            status = enqueue_launches(s, kernels[i], NULL, NULL, 1);
        if (status != CLOPT_OK)
            return status;
    }
    return enqueue_reduce(s, 0, host, NULL);
}

int clopt_solver_evaluate(struct clopt_solver *s, double *loss, double *grad_norm)
{
    double host[2];
    int status = enqueue_launches(s, s->k_eval, NULL, NULL, 0);
    if (status == CLOPT_OK)
        status = enqueue_reduce(s, 0, host, NULL);
    if (status != CLOPT_OK)
        return status;
    read_pair(s, host, loss, grad_norm);
    return CLOPT_OK;
}

/* State of one run of the loop, kept together so results can be looked at in order. */
struct run_state {
    int decided; /* a stop reason is known; no more iterations are queued */
    int reason;  /* the stop reason once decided */
    int diverged;
    uint64_t diverged_at;
    int have_good;      /* some loss was seen finite */
    uint64_t last_good; /* its iteration */
    double prev_loss;
    double start;
    uint64_t start_step; /* the solver's step count when the run began */
    int start_fresh;     /* and whether its state was fresh */
    uint64_t first_t;    /* the iteration it began at (not 0 when resumed) */
};

static void look_at(struct clopt_solver *s, struct run_state *rs, const struct pending_loss *p)
{
    double loss, grad_norm;
    read_pair(s, p->host, &loss, &grad_norm);
    if (rs->diverged)
        return;
    if (!isfinite(loss) || !isfinite(grad_norm)) {
        rs->diverged = 1;
        rs->diverged_at = p->iteration;
        rs->decided = 1;
        return;
    }
    rs->have_good = 1;
    rs->last_good = p->iteration;
    if (s->opts.progress && !p->reported) {
        const struct clopt_progress progress = {
            .iteration = p->iteration,
            .loss = loss,
            .grad_norm = grad_norm,
            .lr = clopt_schedule_lr(&s->schedule, s->hyper.lr,
                                    rs->start_step + (p->iteration - rs->first_t)),
            .seconds = now_seconds() - rs->start,
        };
        if (s->opts.progress(s->opts.progress_user, &progress) && !rs->decided) {
            rs->decided = 1;
            rs->reason = CLOPT_STOP_CANCELLED;
        }
    }
    if (!rs->decided) {
        const double scale = fmax(fmax(fabs(rs->prev_loss), fabs(loss)), DBL_MIN);
        int reason = 0;
        if (grad_norm <= s->opts.gtol)
            reason = CLOPT_STOP_GTOL;
        else if (s->opts.maximize ? loss >= s->opts.target : loss <= s->opts.target)
            reason = CLOPT_STOP_TARGET;
        else if (isfinite(rs->prev_loss) && fabs(rs->prev_loss - loss) <= s->opts.ftol * scale)
            reason = CLOPT_STOP_FTOL;
        if (reason) {
            rs->decided = 1;
            rs->reason = reason;
        }
    }
    rs->prev_loss = loss;
}

static int wait_event(struct clopt_context *ctx, cl_event *event);

/* Looks, in order, at the pending loss read-backs due by iteration `now` (queued at least
 * s->lag iterations earlier; UINT64_MAX takes them all), waiting for each. */
static int look_at_due(struct clopt_solver *s, struct run_state *rs, struct pending_loss *ring,
                       size_t ring_size, size_t *head, size_t *pending, uint64_t now)
{
    while (*pending && (now == UINT64_MAX || ring[*head].iteration + s->lag <= now)) {
        int status = ring[*head].done ? wait_event(s->ctx, &ring[*head].done) : CLOPT_OK;
        if (status != CLOPT_OK)
            return status;
        look_at(s, rs, &ring[*head]);
        *head = (*head + 1) % ring_size;
        --*pending;
    }
    return CLOPT_OK;
}

static int wait_event(struct clopt_context *ctx, cl_event *event)
{
    cl_int err = clWaitForEvents(1, event);
    clReleaseEvent(*event);
    *event = NULL;
    return err == CL_SUCCESS ? CLOPT_OK : clopt_fail_cl(ctx, err, "clWaitForEvents");
}

/* theta and the optimizer state, one after the other, in the run's precision. */
static int snapshot(struct clopt_solver *s, char **out)
{
    const size_t bytes = s->n * s->elem_size;
    *out = NULL;
    if (s->n_state + 1 > SIZE_MAX / bytes)
        return CLOPT_OK;
    char *copy = malloc(bytes * (s->n_state + 1));
    if (!copy)
        return CLOPT_OK; /* no copy: a divergence then keeps the last theta */
    for (size_t k = 0; k <= s->n_state; ++k) {
        int status = transfer(s, k, copy + k * bytes, s->opts.precision, 0, s->n, 0);
        if (status != CLOPT_OK) {
            free(copy);
            return status;
        }
    }
    *out = copy;
    return CLOPT_OK;
}

static int restore(struct clopt_solver *s, const char *copy)
{
    const size_t bytes = s->n * s->elem_size;
    for (size_t k = 0; k <= s->n_state; ++k) {
        int status =
            transfer(s, k, (void *)(uintptr_t)(copy + k * bytes), s->opts.precision, 0, s->n, 1);
        if (status != CLOPT_OK)
            return status;
    }
    return CLOPT_OK;
}

/* Puts theta back to where the run started and replays `iterations` steps, so that a
 * diverged run ends on its last finite iterate without keeping a copy on the device:
 * the kernels are deterministic, so the replay reproduces it bit for bit. */
static int replay(struct clopt_solver *s, const char *origin, uint64_t start_step, int start_fresh,
                  uint64_t first_t, uint64_t iterations)
{
    int status = origin ? restore(s, origin) : init_theta(s);
    s->step = start_step;
    s->fresh_state = start_fresh;
    /* The same kernels as the run used, iteration by iteration. */
    for (uint64_t t = 0; t < iterations && status == CLOPT_OK; ++t) {
        status = enqueue_step(s, (first_t + t) % s->opts.loss_every == 0, NULL);
        if (status == CLOPT_OK && t % THROTTLE_EVERY == 0) {
            cl_int err = clFinish(s->ctx->queue);
            if (err != CL_SUCCESS)
                status = clopt_fail_cl(s->ctx, err, "clFinish(replay)");
        }
    }
    return status;
}

/* The "loop" section: where the run is, little-endian.
 *   u64 t, u64 step, u64 n, u32 elem_size, u32 n_state, u32 fresh_state, u32 have_good,
 *   u32 decided, i32 reason, u64 last_good, f64 prev_loss, u64 n_pending, then per pending
 *   loss: u64 iteration, u32 reported, u32 0, f64 loss sum, f64 squared gradient norm. */
#define LOOP_HEAD 72
#define LOOP_ENTRY 32

static void put_bytes(unsigned char *buffer, size_t *at, const void *value, size_t size)
{
    memcpy(buffer + *at, value, size);
    *at += size;
}

static void get_bytes(const unsigned char *buffer, size_t *at, void *value, size_t size)
{
    memcpy(value, buffer + *at, size);
    *at += size;
}

static void pending_values(const struct clopt_solver *s, const struct pending_loss *p, double *f,
                           double *g2)
{
    if (s->acc_size == sizeof(double)) {
        *f = p->host[0];
        *g2 = p->host[1];
    } else {
        float pair[2];
        memcpy(pair, p->host, sizeof pair);
        *f = pair[0];
        *g2 = pair[1];
    }
}

static void set_pending_values(const struct clopt_solver *s, struct pending_loss *p, double f,
                               double g2)
{
    if (s->acc_size == sizeof(double)) {
        p->host[0] = f;
        p->host[1] = g2;
    } else {
        const float pair[2] = {(float)f, (float)g2};
        memcpy(p->host, pair, sizeof pair);
    }
}

static void free_job(struct checkpoint_job *job)
{
    if (!job)
        return;
    free(job->path);
    free(job->image);
    free(job->loop);
    free(job);
}

static int all_finite(const struct checkpoint_job *job)
{
    for (size_t i = 0; i < job->n_values; ++i)
        if (job->is_double ? !isfinite(((const double *)(const void *)job->image)[i])
                           : !isfinite(((const float *)(const void *)job->image)[i]))
            return 0;
    return 1;
}

static void *checkpoint_writer(void *arg)
{
    struct checkpoint_job *job = arg;
    /* A non-finite iterate is no checkpoint: the one on disk stays the last good one. */
    if (all_finite(job))
        job->status = clopt_ckpt_write(job->path, job->sections, job->n_sections, NULL, NULL,
                                       job->err, sizeof job->err);
    atomic_store(&job->done, 1);
    return NULL;
}

/* Waits for the checkpoint being written, if any, and reports its failure. */
static int finish_checkpoint(struct clopt_solver *s)
{
    if (!s->job)
        return CLOPT_OK;
    pthread_join(s->writer, NULL);
    struct checkpoint_job *job = s->job;
    s->job = NULL;
    const int status =
        job->status == CLOPT_OK ? CLOPT_OK : clopt_fail(s->ctx, job->status, "%s", job->err);
    free_job(job);
    return status;
}

/* Section payloads straight from the device, when there is no host memory for a copy. */
static int fetch_from_device(void *user, size_t section, uint64_t offset, void *dst, size_t bytes)
{
    struct clopt_solver *s = user;
    return transfer(s, section - 2, dst, s->opts.precision, (size_t)(offset / s->elem_size),
                    bytes / s->elem_size, 0);
}

/* Writes a checkpoint of iteration t: theta and the state are copied to host memory (the
 * only time the device waits) and a thread writes the file while the run goes on. Pending
 * losses are recorded with their values; `final` marks them as reported, because the end
 * of the run reports them right after. */
static int write_checkpoint(struct clopt_solver *s, const struct run_state *rs,
                            struct pending_loss *ring, size_t ring_size, size_t head,
                            size_t pending, uint64_t t, int final)
{
    /* A periodic checkpoint never waits for the previous one's disk write: while that is
     * still going on, this one is skipped. */
    if (!final && s->job && !atomic_load(&s->job->done))
        return CLOPT_OK;
    int status = finish_checkpoint(s);
    if (status != CLOPT_OK)
        return status;
    for (size_t i = 0; i < pending; ++i) {
        struct pending_loss *p = &ring[(head + i) % ring_size];
        if (p->done && (status = wait_event(s->ctx, &p->done)) != CLOPT_OK)
            return status;
        /* Already diverged (the run will find out when it looks): keep the last good one. */
        double f, g2;
        pending_values(s, p, &f, &g2);
        if (!isfinite(f) || !isfinite(g2))
            return CLOPT_OK;
    }
    struct checkpoint_job *job = calloc(1, sizeof *job);
    if (!job)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    job->path = clopt_format("%s", s->checkpoint_path);
    job->loop = malloc(LOOP_HEAD + pending * LOOP_ENTRY);
    if (!job->path || !job->loop) {
        free_job(job);
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    size_t at = 0;
    const uint64_t n = s->n, count = pending;
    const uint32_t elem = (uint32_t)s->elem_size, n_state = (uint32_t)s->n_state,
                   fresh = (uint32_t)s->fresh_state, have_good = (uint32_t)rs->have_good, zero = 0;
    /* A cancelled run is meant to be resumed: its stop is not part of where it is. */
    const uint32_t decided = (uint32_t)(rs->decided && rs->reason != CLOPT_STOP_CANCELLED);
    const int32_t reason = rs->reason;
    put_bytes(job->loop, &at, &t, 8);
    put_bytes(job->loop, &at, &s->step, 8);
    put_bytes(job->loop, &at, &n, 8);
    put_bytes(job->loop, &at, &elem, 4);
    put_bytes(job->loop, &at, &n_state, 4);
    put_bytes(job->loop, &at, &fresh, 4);
    put_bytes(job->loop, &at, &have_good, 4);
    put_bytes(job->loop, &at, &decided, 4);
    put_bytes(job->loop, &at, &reason, 4);
    put_bytes(job->loop, &at, &rs->last_good, 8);
    put_bytes(job->loop, &at, &rs->prev_loss, 8);
    put_bytes(job->loop, &at, &count, 8);
    for (size_t i = 0; i < pending; ++i) {
        const struct pending_loss *p = &ring[(head + i) % ring_size];
        const uint32_t reported = (uint32_t)(p->reported || final);
        double f, g2;
        pending_values(s, p, &f, &g2);
        put_bytes(job->loop, &at, &p->iteration, 8);
        put_bytes(job->loop, &at, &reported, 4);
        put_bytes(job->loop, &at, &zero, 4);
        put_bytes(job->loop, &at, &f, 8);
        put_bytes(job->loop, &at, &g2, 8);
    }
    const size_t bytes = s->n * s->elem_size;
    struct clopt_ckpt_section *sec = job->sections;
    memcpy(sec[0].tag, "config\0\0", 8);
    sec[0].length = strlen(s->config);
    sec[0].data = s->config;
    memcpy(sec[1].tag, "loop\0\0\0\0", 8);
    sec[1].length = at;
    sec[1].data = job->loop;
    for (size_t k = 0; k <= s->n_state; ++k) {
        memcpy(sec[2 + k].tag, k == 0 ? "theta\0\0\0" : "state\0\0\0", 8);
        sec[2 + k].tag[5] = k ? (char)('0' + k - 1) : '\0';
        sec[2 + k].length = bytes;
    }
    job->n_sections = 3 + s->n_state;
    if (s->n_state + 1 <= SIZE_MAX / bytes)
        job->image = malloc(bytes * (s->n_state + 1));
    if (!job->image) {
        /* No room for a host copy: stream from the device, and the device waits. */
        status = clopt_ckpt_write(job->path, job->sections, job->n_sections, fetch_from_device, s,
                                  job->err, sizeof job->err);
        if (status != CLOPT_OK)
            status = clopt_fail(s->ctx, status, "%s", job->err);
        free_job(job);
        return status;
    }
    for (size_t k = 0; k <= s->n_state; ++k) {
        status = transfer(s, k, job->image + k * bytes, s->opts.precision, 0, s->n, 0);
        if (status != CLOPT_OK) {
            free_job(job);
            return status;
        }
        sec[2 + k].data = job->image + k * bytes;
    }
    job->n_values = s->n * (s->n_state + 1);
    job->is_double = s->elem_size == sizeof(double);
    /* Signals meant for the program (a CLI's SIGINT) go to the thread that runs the loop. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    const int created = pthread_create(&s->writer, NULL, checkpoint_writer, job);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (created != 0) {
        checkpoint_writer(job);
        status =
            job->status == CLOPT_OK ? CLOPT_OK : clopt_fail(s->ctx, job->status, "%s", job->err);
        free_job(job);
        return status;
    }
    s->job = job;
    return CLOPT_OK;
}

/* The first line of `have` whose key is missing from `want` or has another value there,
 * ignoring "info." lines; NULL when they agree. */
static const char *first_difference(const char *have, const char *want, char *key, size_t key_size)
{
    for (const char *line = have; *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *eq = memchr(line, '=', len);
        if (eq && strncmp(line, "info.", 5) != 0) {
            const size_t key_len = (size_t)(eq - line) + 1; /* with '=' */
            const char *found = NULL;
            for (const char *w = want; *w;) {
                const char *w_end = strchr(w, '\n');
                const size_t w_len = w_end ? (size_t)(w_end - w) : strlen(w);
                if (w_len >= key_len && !strncmp(w, line, key_len)) {
                    found = w;
                    if (w_len != len || strncmp(w, line, len) != 0)
                        found = NULL;
                    break;
                }
                w = w_end ? w_end + 1 : w + w_len;
            }
            if (!found) {
                snprintf(key, key_size, "%.*s", (int)(key_len - 1), line);
                return line;
            }
        }
        line = end ? end + 1 : line + len;
    }
    return NULL;
}

/* The value of key in config text, for messages ("(none)" when absent). */
static void config_value(const char *config, const char *key, char *value, size_t size)
{
    const size_t key_len = strlen(key);
    for (const char *line = config; *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > key_len && !strncmp(line, key, key_len) && line[key_len] == '=') {
            snprintf(value, size, "%.*s", (int)(len - key_len - 1), line + key_len + 1);
            return;
        }
        line = end ? end + 1 : line + len;
    }
    snprintf(value, size, "(none)");
}

int clopt_solver_resume(struct clopt_solver *s, const char *path)
{
    struct clopt_context *ctx = s->ctx;
    char err[512];
    struct clopt_ckpt_reader r;
    char *config = NULL, *chunk = NULL;
    unsigned char *loop = NULL;
    struct resume_point *point = NULL;
    uint64_t length;
    if (!path || !*path)
        return clopt_fail(ctx, CLOPT_ERR_INVALID_ARG, "--resume needs a checkpoint file");
    int status = clopt_ckpt_open(&r, path, err, sizeof err);
    if (status == CLOPT_OK)
        status = clopt_ckpt_next(&r, "config", &length, err, sizeof err);
    if (status == CLOPT_OK && length > ((uint64_t)1 << 20)) {
        snprintf(err, sizeof err, "checkpoint's configuration is implausibly large");
        status = CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK) {
        config = calloc(1, (size_t)length + 1);
        status = config ? clopt_ckpt_read(&r, config, (size_t)length, err, sizeof err)
                        : CLOPT_ERR_OUT_OF_MEMORY;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(&r, "config", err, sizeof err);
    if (status != CLOPT_OK) {
        status = clopt_fail(ctx, status, "checkpoint '%s': %s", path,
                            status == CLOPT_ERR_OUT_OF_MEMORY ? "out of host memory" : err);
        goto cleanup;
    }
    char key[96], theirs[160], ours[160];
    if (first_difference(config, s->config, key, sizeof key) ||
        first_difference(s->config, config, key, sizeof key)) {
        config_value(config, key, theirs, sizeof theirs);
        config_value(s->config, key, ours, sizeof ours);
        status = clopt_fail(ctx, CLOPT_ERR_INVALID_ARG,
                            "checkpoint '%s' was written with %s=%s but this run has %s=%s: "
                            "resume with the options of the run that wrote it",
                            path, key, theirs, key, ours);
        goto cleanup;
    }
    status = clopt_ckpt_next(&r, "loop", &length, err, sizeof err);
    if (status == CLOPT_OK && (length < LOOP_HEAD || length > LOOP_HEAD + RING_SIZE * LOOP_ENTRY ||
                               (length - LOOP_HEAD) % LOOP_ENTRY)) {
        snprintf(err, sizeof err, "its loop section has an impossible size");
        status = CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK) {
        loop = malloc((size_t)length);
        point = calloc(1, sizeof *point);
        status = loop && point ? clopt_ckpt_read(&r, loop, (size_t)length, err, sizeof err)
                               : CLOPT_ERR_OUT_OF_MEMORY;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(&r, "loop", err, sizeof err);
    uint64_t step = 0, n = 0, count = 0;
    uint32_t elem = 0, n_state = 0, fresh = 0, have_good = 0, decided = 0;
    int32_t reason = 0;
    if (status == CLOPT_OK) {
        size_t at = 0;
        get_bytes(loop, &at, &point->t, 8);
        get_bytes(loop, &at, &step, 8);
        get_bytes(loop, &at, &n, 8);
        get_bytes(loop, &at, &elem, 4);
        get_bytes(loop, &at, &n_state, 4);
        get_bytes(loop, &at, &fresh, 4);
        get_bytes(loop, &at, &have_good, 4);
        get_bytes(loop, &at, &decided, 4);
        get_bytes(loop, &at, &reason, 4);
        get_bytes(loop, &at, &point->last_good, 8);
        get_bytes(loop, &at, &point->prev_loss, 8);
        get_bytes(loop, &at, &count, 8);
        if (n != s->n || elem != s->elem_size || n_state != s->n_state ||
            count != (length - LOOP_HEAD) / LOOP_ENTRY) {
            snprintf(err, sizeof err, "its loop section does not fit its configuration");
            status = CLOPT_ERR_BAD_FILE;
        }
        point->have_good = have_good != 0;
        point->decided = decided != 0;
        point->reason = reason;
        point->n_pending = (size_t)count;
        for (size_t i = 0; i < point->n_pending && status == CLOPT_OK; ++i) {
            uint32_t reported, pad;
            double f, g2;
            struct pending_loss *p = &point->pending[i];
            get_bytes(loop, &at, &p->iteration, 8);
            get_bytes(loop, &at, &reported, 4);
            get_bytes(loop, &at, &pad, 4);
            get_bytes(loop, &at, &f, 8);
            get_bytes(loop, &at, &g2, 8);
            p->reported = reported != 0;
            set_pending_values(s, p, f, g2);
        }
    }
    if (status != CLOPT_OK) {
        status = clopt_fail(ctx, status, "checkpoint '%s': %s", path,
                            status == CLOPT_ERR_OUT_OF_MEMORY ? "out of host memory" : err);
        goto cleanup;
    }
    /* theta and the state go to the device chunk by chunk, checked as they stream. */
    chunk = malloc(CONVERT_CHUNK * s->elem_size);
    if (!chunk) {
        status = clopt_fail(ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
        goto cleanup;
    }
    for (size_t k = 0; k <= s->n_state; ++k) {
        char tag[8] = "theta";
        if (k)
            memcpy(tag, (const char[]){'s', 't', 'a', 't', 'e', (char)('0' + k - 1), '\0'}, 7);
        status = clopt_ckpt_next(&r, tag, &length, err, sizeof err);
        if (status == CLOPT_OK && length != (uint64_t)s->n * s->elem_size) {
            snprintf(err, sizeof err, "section '%s' has the wrong size", tag);
            status = CLOPT_ERR_BAD_FILE;
        }
        for (size_t done = 0; done < s->n && status == CLOPT_OK;) {
            const size_t m = s->n - done < CONVERT_CHUNK ? s->n - done : CONVERT_CHUNK;
            status = clopt_ckpt_read(&r, chunk, m * s->elem_size, err, sizeof err);
            if (status == CLOPT_OK) {
                status = transfer(s, k, chunk, s->opts.precision, done, m, 1);
                if (status != CLOPT_OK)
                    goto cleanup; /* a device failure, already described */
            }
            done += m;
        }
        if (status == CLOPT_OK)
            status = clopt_ckpt_end_section(&r, tag, err, sizeof err);
        if (status != CLOPT_OK) {
            status = clopt_fail(ctx, status, "checkpoint '%s': %s", path, err);
            goto cleanup;
        }
    }
    status = clopt_ckpt_close(&r, 1, err, sizeof err);
    if (status != CLOPT_OK) {
        status = clopt_fail(ctx, status, "checkpoint '%s': %s", path, err);
        goto cleanup;
    }
    s->step = step;
    s->fresh_state = fresh != 0;
    s->theta_generated = 0;
    free(s->resume);
    s->resume = point;
    point = NULL;
cleanup:
    if (r.f)
        clopt_ckpt_close(&r, 0, NULL, 0);
    free(config);
    free(loop);
    free(point);
    free(chunk);
    return status;
}

int clopt_solver_run(struct clopt_solver *s, struct clopt_result *res)
{
    struct clopt_context *ctx = s->ctx;
    memset(res, 0, sizeof *res);
    res->shards = s->n_shards;
    res->knobs = s->knobs;
    /* theta and each state vector are read and written once; a norm pass for global
     * clipping reads theta once more, and an objective's data vector is read once. */
    res->bytes_per_element =
        (double)s->elem_size * (2.0 * (double)(1 + s->n_state) +
                                (s->opts.clip_norm > 0 ? 1.0 : 0.0) + (s->data_path ? 1.0 : 0.0));
    res->bytes_per_iter = (double)s->n * res->bytes_per_element;
    res->lr = s->hyper.lr;
    int status = CLOPT_OK;
    char *origin = NULL;
    struct pending_loss ring[RING_SIZE];
    size_t head = 0, pending = 0;
    const size_t ring_size = sizeof ring / sizeof *ring;
    cl_event throttle[THROTTLE_SLOTS] = {0};
    size_t throttle_next = 0;
    memset(ring, 0, sizeof ring);
    struct run_state rs = {.reason = CLOPT_STOP_MAX_ITERS,
                           .prev_loss = NAN,
                           .start_step = s->step,
                           .start_fresh = s->fresh_state};
    /* A resumed run starts where its checkpoint stopped, with the losses it had queued. */
    uint64_t t0 = 0;
    const int resumed = s->resume != NULL;
    if (s->resume) {
        const struct resume_point *r = s->resume;
        t0 = r->t;
        rs.have_good = r->have_good;
        rs.last_good = r->last_good;
        rs.decided = r->decided;
        if (r->decided)
            rs.reason = r->reason;
        rs.prev_loss = r->prev_loss;
        for (size_t i = 0; i < r->n_pending && i < ring_size; ++i)
            ring[pending++] = r->pending[i];
        free(s->resume);
        s->resume = NULL;
    }
    rs.first_t = t0;

    const int origin_generated = s->theta_generated;
    int stepped = 0; /* some step was queued: theta is no longer theta_0 */
    if (!origin_generated) {
        /* theta (and state) came from the caller or an earlier run: keep them, in case the
         * run diverges and must be replayed. */
        status = snapshot(s, &origin);
        if (status != CLOPT_OK)
            goto cleanup;
    }

    rs.start = now_seconds();
    uint64_t t = t0;
    const uint64_t fuse = s->knobs.fuse, every = s->opts.checkpoint_every;
    while (t < s->opts.max_iters) {
        /* Losses are looked at, and stopping tests act, only at multiples of the fuse
         * count: where a fused run stops then does not depend on where checkpoints or a
         * resume put single steps. */
        if (t % fuse == 0) {
            status = look_at_due(s, &rs, ring, ring_size, &head, &pending, t);
            if (status != CLOPT_OK)
                goto cleanup;
            if (rs.decided)
                break;
        }
        if (s->opts.stop && *s->opts.stop) {
            rs.decided = 1;
            rs.reason = CLOPT_STOP_CANCELLED;
            break;
        }
        if (s->checkpoint_path && s->opts.checkpoint_every && t > t0 &&
            t % s->opts.checkpoint_every == 0) {
            status = write_checkpoint(s, &rs, ring, ring_size, head, pending, t, 0);
            if (status != CLOPT_OK)
                goto cleanup;
        }
        /* A fused block starts at a multiple of the fuse count and runs when all its
         * iterations come before the limit and before the next checkpoint; the rest are
         * single steps. */
        uint64_t steps = 1;
        if (fuse > 1 && t % fuse == 0 && s->opts.max_iters - t >= fuse &&
            !(s->checkpoint_path && every && (t + fuse - 1) / every > t / every))
            steps = fuse;
        const int with_loss = t % s->opts.loss_every == 0;
        uint64_t loss_mask = 0;
        for (uint64_t j = 0; j < steps; ++j)
            if ((t + j) % s->opts.loss_every == 0)
                loss_mask |= (uint64_t)1 << j;
        const int throttle_now =
            t % THROTTLE_EVERY == 0 || (t + steps - 1) / THROTTLE_EVERY > t / THROTTLE_EVERY;
        cl_event *marker = NULL;
        if (throttle_now) {
            if (throttle[throttle_next]) {
                status = wait_event(ctx, &throttle[throttle_next]);
                if (status != CLOPT_OK)
                    goto cleanup;
            }
            marker = &throttle[throttle_next];
            throttle_next = (throttle_next + 1) % THROTTLE_SLOTS;
        }
        stepped = 1;
        if (steps > 1) {
            status = enqueue_fused(s, loss_mask, marker);
            for (uint64_t j = 0; j < steps && status == CLOPT_OK; ++j) {
                if (!((loss_mask >> j) & 1))
                    continue;
                struct pending_loss *p = &ring[(head + pending) % ring_size];
                p->iteration = t + j;
                p->reported = 0;
                status = enqueue_reduce(s, (size_t)j, p->host, &p->done);
                if (status == CLOPT_OK)
                    ++pending;
            }
            if (status != CLOPT_OK)
                goto cleanup;
        } else {
            status = enqueue_step(s, with_loss, marker);
            if (status != CLOPT_OK)
                goto cleanup;
        }
        if (with_loss && steps == 1) {
            struct pending_loss *p = &ring[(head + pending) % ring_size];
            p->iteration = t;
            p->reported = 0;
            /* With clip-norm the step's norm pass already reduced L(theta_t) into the
             * result buffer, and the update pass did not overwrite it. */
            status = s->opts.clip_norm > 0 ? enqueue_read_result(s, p->host, &p->done)
                                           : enqueue_reduce(s, 0, p->host, &p->done);
            if (status != CLOPT_OK)
                goto cleanup;
            ++pending;
        }
        if (throttle_now) {
            cl_int err = clFlush(ctx->queue);
            if (err != CL_SUCCESS) {
                status = clopt_fail_cl(ctx, err, "clFlush");
                goto cleanup;
            }
        }
        t += steps;
    }
    res->iterations = t;
    /* The run's last checkpoint holds the losses still pending, as they were before the
     * look below, so that a resumed run decides exactly as this one would have gone on. */
    if (s->checkpoint_path && !rs.diverged && !(resumed && t == t0)) {
        status = write_checkpoint(s, &rs, ring, ring_size, head, pending, t, 1);
        if (status != CLOPT_OK)
            goto cleanup;
    }
    status = look_at_due(s, &rs, ring, ring_size, &head, &pending, UINT64_MAX);
    if (status != CLOPT_OK)
        goto cleanup;
    cl_int err = clFinish(ctx->queue);
    if (err != CL_SUCCESS) {
        status = clopt_fail_cl(ctx, err, "clFinish");
        goto cleanup;
    }
    res->seconds = now_seconds() - rs.start;
    if (res->seconds > 0)
        res->gbytes_per_second = res->bytes_per_iter * (double)res->iterations / res->seconds / 1e9;
    /* The final loss is also the last look at theta: a run can blow up after its last
     * loss evaluation (--loss-every larger than the remaining iterations). */
    if (!rs.diverged) {
        status = clopt_solver_evaluate(s, &res->loss, &res->grad_norm);
        if (status != CLOPT_OK)
            goto cleanup;
        if (!isfinite(res->loss) || !isfinite(res->grad_norm)) {
            rs.diverged = 1;
            rs.diverged_at = res->iterations;
        }
    }
    if (rs.diverged) {
        res->diverged_at = rs.diverged_at;
        if (!origin_generated && !origin) {
            status = clopt_fail(ctx, CLOPT_ERR_DIVERGED,
                                "loss became NaN/Inf at iteration %llu; there was no host "
                                "memory to keep the start point, so theta is the diverged one",
                                (unsigned long long)rs.diverged_at);
            goto cleanup;
        }
        /* Back to the last iterate seen finite (not before this run's start). */
        const uint64_t keep = rs.have_good && rs.last_good > t0 ? rs.last_good : t0;
        status = replay(s, origin, rs.start_step, rs.start_fresh, t0, keep - t0);
        if (status != CLOPT_OK)
            goto cleanup;
        res->iterations = keep;
        status = clopt_solver_evaluate(s, &res->loss, &res->grad_norm);
        if (status != CLOPT_OK)
            goto cleanup;
        if (s->checkpoint_path) {
            /* The checkpoint holds the kept iterate, not the poisoned one. */
            struct run_state kept = {.prev_loss = NAN,
                                     .have_good = rs.have_good,
                                     .last_good = keep,
                                     .reason = CLOPT_STOP_MAX_ITERS};
            status = write_checkpoint(s, &kept, ring, ring_size, head, 0, keep, 1);
            if (status == CLOPT_OK)
                status = finish_checkpoint(s);
            if (status != CLOPT_OK)
                goto cleanup;
        }
        if (rs.have_good)
            status =
                clopt_fail(ctx, CLOPT_ERR_DIVERGED,
                           "loss became NaN/Inf by iteration %llu (lower --lr?); theta is "
                           "the last iterate seen finite, iteration %llu",
                           (unsigned long long)rs.diverged_at, (unsigned long long)res->iterations);
        else
            status = clopt_fail(ctx, CLOPT_ERR_DIVERGED,
                                "the loss is NaN/Inf at the start point already (by iteration "
                                "%llu): check the initial theta and the objective; theta is "
                                "the start point",
                                (unsigned long long)rs.diverged_at);
        goto cleanup;
    }
    status = finish_checkpoint(s);
    if (status == CLOPT_OK)
        status = rs.reason;
cleanup:
    if (status < 0) {
        clFinish(ctx->queue); /* no read may still target ring memory after we return */
        /* The checkpoint thread must not outlive the run either; the first error is the one
         * reported. */
        if (s->job) {
            pthread_join(s->writer, NULL);
            free_job(s->job);
            s->job = NULL;
        }
    }
    res->final_lr = clopt_schedule_lr(&s->schedule, s->hyper.lr, s->step);
    /* After a replay from the generator, theta is generated again only if no step stuck. */
    s->theta_generated = origin_generated && !stepped;
    for (size_t i = 0; i < pending; ++i) {
        struct pending_loss *p = &ring[(head + i) % ring_size];
        if (p->done)
            clReleaseEvent(p->done);
    }
    for (size_t i = 0; i < THROTTLE_SLOTS; ++i)
        if (throttle[i])
            clReleaseEvent(throttle[i]);
    free(origin);
    return status;
}

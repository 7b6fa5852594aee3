/* clopt command-line tool: turns flags and files into library calls and prints results.
 * Exit status: 0 stopped normally, 2 bad usage or input, 3 diverged, 1 other failures. */
#include "clopt.h"
#include "npy.h"
#include "numparse.h"
#include "tuning_db.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_DIVERGED 3
#define EXIT_CHECK_FAILED 4
#define MAX_PARAMS 32
#define IO_CHUNK ((size_t)1 << 22)
#define PROGRESS_SECONDS 2.0

static const char usage_text[] =
    "usage: clopt COMMAND [OPTIONS]\n"
    "\n"
    "Gradient-based minimisation on OpenCL devices (GPUs, or PoCL on the CPU).\n"
    "\n"
    "commands:\n"
    "  devices              list every OpenCL platform and device\n"
    "  objectives           list the built-in objectives: formula, parameters, minimum\n"
    "  run [OPTIONS]        minimise an objective (default: sphere on the default device)\n"
    "  check [OPTIONS]      compare an objective's gradient with finite differences\n"
    "  tune [RUN OPTIONS]   try kernel knobs (--space KNOB=V|V,...: any knob of --tune;\n"
    "                       --budget S),\n"
    "                       check each against the defaults, time them, store the best in\n"
    "                       the tuning database (--tuning-db FILE, or CLOPT_TUNING_DB, or\n"
    "                       $XDG_CACHE_HOME/clopt/tuning.json), which run and bench use\n"
    "                       unless --tune is given\n"
    "  bench [RUN OPTIONS]  the device's STREAM-style bandwidth, then the step's, and the\n"
    "                       ratio (--iters per repetition, default 20; --reps R, default 5;\n"
    "                       --json FILE|-, --csv FILE|-)\n"
    "  help                 show this text (also --help; --version prints the version)\n"
    "\n"
    "run options:\n"
    "  --objective NAME|FILE.cl  sphere (default), another built-in (clopt objectives) or\n"
    "                            an objective file (see README)\n"
    "  --param KEY=VALUE         objective parameter, repeatable (ellipsoid: cond=1e6,\n"
    "                            shifted_sphere: target=FILE.npy)\n"
    "  --dim N                   number of parameters (1000000, 1e6, 2^20); default 1e6,\n"
    "                            or the length of an --init or --param FILE.npy\n"
    "  --init SPEC               random (= normal), normal[:SIGMA], uniform[:A] (U[-A,A)),\n"
    "                            zeros, const:V, or FILE.npy (1-D float32/float64)\n"
    "  --seed S                  seed of the random initialisation (default 0)\n"
    "  --optimizer NAME          gd (default), momentum, nesterov, adam, adamw, rmsprop,\n"
    "                            adagrad (the torch.optim definitions)\n"
    "  --lr X                    learning rate (default 0.1; adam/adamw 1e-3;\n"
    "                            rmsprop/adagrad 1e-2)\n"
    "  --momentum X              momentum/nesterov (default 0.9), rmsprop (default 0), [0,1)\n"
    "  --dampening X             momentum dampening, [0,1] (default 0)\n"
    "  --beta1 X  --beta2 X      adam/adamw moment decay rates, [0,1) (0.9, 0.999)\n"
    "  --eps X                   adam/adamw/rmsprop/adagrad denominator term, > 0\n"
    "                            (default 1e-8; adagrad 1e-10)\n"
    "  --weight-decay X          L2 added to g (adamw: decoupled), >= 0 (default 0;\n"
    "                            adamw 1e-2)\n"
    "  --alpha X                 rmsprop smoothing, [0,1) (default 0.99)\n"
    "  --amsgrad                 adam/adamw: use the maximum second moment\n"
    "  --maximize                ascend the objective instead\n"
    "  --schedule SPEC           constant, step:EVERY:GAMMA, exp:GAMMA,\n"
    "                            cosine:T_MAX[:ETA_MIN], warmup:STEPS[+OTHER]\n"
    "  --clip-value X            clamp each gradient element to [-X, X] (fused)\n"
    "  --clip-norm X             scale g so that ||g|| <= X (torch clip_grad_norm_); adds\n"
    "                            a norm pass: one more read of theta per iteration\n"
    "  --iters N                 iteration limit (default 1000)\n"
    "  --gtol X                  stop when ||g|| <= X\n"
    "  --ftol X                  stop when the relative loss change between two loss\n"
    "                            evaluations is <= X\n"
    "  --target X                stop when the loss is <= X\n"
    "  --loss-every K            evaluate loss and ||g|| every K iterations (default 1)\n"
    "  --precision float|double  arithmetic precision (default float)\n"
    "  --out FILE.npy            write the final theta\n"
    "  --trace FILE.csv          write iteration,loss,grad_norm,lr,seconds per evaluation\n"
    "  --json FILE|-             write a machine-readable summary ('-': stdout)\n"
    "  --device INDEX|NAME       device index or name substring (also CLOPT_DEVICE)\n"
    "  --tune KEY=VAL,...        kernel knobs: wg (work-group size), epw (elements per\n"
    "                            work-item), vw (lanes), fblock (loss terms per lane\n"
    "                            summed before widening), layout=contig|strided,\n"
    "                            partials=item|group, rwg (reduction group size),\n"
    "                            acc=double|kahan (loss accumulators), gpcu (0: a group\n"
    "                            per tile; G: G groups per compute unit loop over the\n"
    "                            tiles), fuse (1..32 iterations per launch; separable\n"
    "                            objectives; stopping tests act every fuse iterations),\n"
    "                            pf=off|N (software prefetch N elements ahead; CPUs),\n"
    "                            simd=256|512 (512-bit registers on AVX-512 CPUs)\n"
    "  --tuning-db FILE          the tuning database to read (also CLOPT_TUNING_DB)\n"
    "  --max-shard-bytes B       cap each buffer of theta at B bytes (default or 0: the\n"
    "                            device's largest allocation)\n"
    "  --kernel-dir DIR          load kernels from DIR (also CLOPT_KERNEL_DIR)\n"
    "  --program-cache DIR|off   keep compiled kernels in DIR, so that later runs skip the\n"
    "                            build (also CLOPT_PROGRAM_CACHE; default\n"
    "                            $XDG_CACHE_HOME/clopt/programs or ~/.cache/clopt/programs;\n"
    "                            off: no cache)\n"
    "  --checkpoint FILE         save theta, optimizer state and position to FILE (atomic;\n"
    "                            the previous one is kept as FILE.prev) at the end of the\n"
    "                            run, on SIGINT/SIGTERM, and every --checkpoint-every N\n"
    "  --checkpoint-every N      iterations between checkpoints\n"
    "  --resume FILE             continue the run saved in FILE (same options; --iters counts\n"
    "                            from the original start; a --trace file is appended to)\n"
    "  --quiet                   print no progress and no summary\n"
    "  -h, --help                show this text\n"
    "\n"
    "check options (clopt check): --objective, --param, --device, --kernel-dir,\n"
    "  --program-cache as for run;\n"
    "  --dim N                   n (default 1000)\n"
    "  --samples M               elements checked, both ends included (default 1000)\n"
    "  --init normal[:S]|uniform[:A]|const:V   the random point (default normal:1)\n"
    "  --seed S                  seed of the point\n"
    "  --tol X                   largest relative error that passes (default 1e-6 in double,\n"
    "                            1e-2 on devices without fp64)\n"
    "  --json FILE|-             write the result as JSON\n"
    "\n"
    "exit status: 0 converged or iteration limit (check: passed), 2 bad usage or input,\n"
    "3 diverged (theta is the last finite iterate), 4 gradient check failed, 130/143\n"
    "stopped by SIGINT/SIGTERM (after a checkpoint, if one is set), 1 any other failure.\n";

static void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void print_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("clopt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int exit_code_for(int status, int user_objective)
{
    switch (status) {
    case CLOPT_ERR_INVALID_ARG:
    case CLOPT_ERR_BAD_FILE:
    case CLOPT_ERR_UNSUPPORTED:
        return EXIT_USAGE;
    case CLOPT_ERR_IO:
    case CLOPT_ERR_BUILD:
        /* The user's own kernel file missing or not compiling is bad input. */
        return user_objective ? EXIT_USAGE : EXIT_FAILURE;
    case CLOPT_ERR_DIVERGED:
        return EXIT_DIVERGED;
    default:
        return status >= 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    }
}

static const char *kind_name(enum clopt_device_kind kind)
{
    return kind == CLOPT_DEVICE_GPU ? "GPU" : kind == CLOPT_DEVICE_CPU ? "CPU" : "other";
}

static int cmd_devices(void)
{
    struct clopt_device_info *infos = NULL;
    size_t n = 0;
    int status = clopt_list_devices(&infos, &n);
    if (status == CLOPT_ERR_NO_DEVICE) {
        print_error("no OpenCL device found: install a driver, or PoCL for the CPU "
                    "(apt-get install pocl-opencl-icd)");
        return EXIT_FAILURE;
    }
    if (status != CLOPT_OK) {
        print_error("listing devices failed: %s", clopt_strerror(status));
        return EXIT_FAILURE;
    }
    /* Columns as wide as the longest name, so long device names keep the table aligned. */
    int name_width = 4, platform_width = 8;
    for (size_t i = 0; i < n; ++i) {
        if ((int)strlen(infos[i].name) > name_width)
            name_width = (int)strlen(infos[i].name);
        if ((int)strlen(infos[i].platform) > platform_width)
            platform_width = (int)strlen(infos[i].platform);
    }
    printf("%-5s %-5s %-*s  %-*s  %10s  %10s  %4s\n", "index", "type", name_width, "name",
           platform_width, "platform", "memory", "max alloc", "fp64");
    for (size_t i = 0; i < n; ++i)
        printf("%-5zu %-5s %-*s  %-*s  %6.1f GiB  %6.1f GiB  %4s\n", infos[i].index,
               kind_name(infos[i].kind), name_width, infos[i].name, platform_width,
               infos[i].platform, (double)infos[i].global_mem_bytes / (1 << 30),
               (double)infos[i].max_alloc_bytes / (1 << 30), infos[i].has_fp64 ? "yes" : "no");
    free(infos);
    return EXIT_SUCCESS;
}

struct run_args {
    struct clopt_options opts;
    struct clopt_param params[MAX_PARAMS];
    int dim_given;
    const char *init_file;
    const char *out_path;
    const char *trace_path;
    const char *json_path;
    const char *device;
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
};

struct progress_state {
    FILE *trace;
    int quiet;
    double last_print;
    int trace_failed;
    int traced;           /* some row was written */
    uint64_t last_traced; /* its iteration */
    int skip;             /* rows up to skip_upto are in the trace already (a resume) */
    uint64_t skip_upto;
};

static int on_progress(void *user, const struct clopt_progress *p)
{
    struct progress_state *ps = user;
    if (ps->skip && p->iteration <= ps->skip_upto)
        return 0;
    if (ps->trace &&
        fprintf(ps->trace, "%llu,%.17g,%.17g,%.17g,%.6f\n", (unsigned long long)p->iteration,
                p->loss, p->grad_norm, p->lr, p->seconds) < 0)
        ps->trace_failed = 1;
    ps->traced = 1;
    ps->last_traced = p->iteration;
    if (!ps->quiet && p->seconds - ps->last_print >= PROGRESS_SECONDS) {
        fprintf(stderr, "clopt: iteration %llu  loss %.6e  |g| %.6e  (%.1f s)\n",
                (unsigned long long)p->iteration, p->loss, p->grad_norm, p->seconds);
        ps->last_print = p->seconds;
    }
    return 0;
}

static int parse_double_flag(const char *flag, const char *text, double *value)
{
    const char *why;
    if (clopt_parse_double(text, value, &why)) {
        print_error("%s '%s': %s", flag, text, why);
        return -1;
    }
    return 0;
}

static int parse_count_flag(const char *flag, const char *text, uint64_t max, uint64_t *value)
{
    const char *why;
    if (clopt_parse_count(text, max, value, &why)) {
        if (max >= 1000000)
            print_error("%s '%s': %s (need a whole number <= %llu, e.g. 1000000, 1e6 or 2^20)",
                        flag, text, why, (unsigned long long)max);
        else
            print_error("%s '%s': %s (need a whole number <= %llu)", flag, text, why,
                        (unsigned long long)max);
        return -1;
    }
    return 0;
}

/* Opens path for a report ("-": stdout); NULL after saying why. */
static FILE *open_report(const char *flag, const char *path)
{
    if (!strcmp(path, "-"))
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        print_error("cannot write %s file '%s': %s", flag, path, strerror(errno));
    return f;
}

static int close_report(const char *flag, const char *path, FILE *f)
{
    if (f == stdout)
        return fflush(f) == 0 ? 0 : EXIT_FAILURE;
    if (fclose(f) != 0) {
        print_error("writing %s file '%s' failed", flag, path);
        return EXIT_FAILURE;
    }
    return 0;
}

/* Writes root (when ok: every field was added) as JSON to path ("-": stdout), and frees it. */
static int emit_json(const char *path, cJSON *root, int ok)
{
    char *text = ok && root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        print_error("out of memory formatting JSON");
        return EXIT_FAILURE;
    }
    FILE *f = open_report("--json", path);
    int rc = f ? 0 : EXIT_FAILURE;
    if (f && fprintf(f, "%s\n", text) < 0)
        rc = EXIT_FAILURE;
    if (f && close_report("--json", path, f))
        rc = EXIT_FAILURE;
    free(text);
    return rc;
}

/* A whole number from 1 to max for flag; EXIT_USAGE after saying why. */
static int parse_positive_flag(const char *flag, const char *text, uint64_t max, uint64_t *value)
{
    if (parse_count_flag(flag, text, max, value))
        return EXIT_USAGE;
    if (*value == 0) {
        print_error("%s '%s': must be at least 1", flag, text);
        return EXIT_USAGE;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int parse_init(struct run_args *a, const char *spec)
{
    struct clopt_options *o = &a->opts;
    const char *colon = strchr(spec, ':');
    size_t head = colon ? (size_t)(colon - spec) : strlen(spec);
    double value = 1.0;
    if (ends_with(spec, ".npy")) {
        a->init_file = spec;
        o->init = CLOPT_INIT_NONE;
        return 0;
    }
    const char *why;
    if (colon && clopt_parse_double(colon + 1, &value, &why)) {
        print_error("--init '%s': %s after ':'", spec, why);
        return -1;
    }
    if ((head == 6 && !strncmp(spec, "random", 6)) || (head == 6 && !strncmp(spec, "normal", 6)))
        o->init = CLOPT_INIT_NORMAL;
    else if (head == 7 && !strncmp(spec, "uniform", 7))
        o->init = CLOPT_INIT_UNIFORM;
    else if (!colon && !strcmp(spec, "zeros")) {
        o->init = CLOPT_INIT_CONST;
        value = 0.0;
    } else if (colon && head == 5 && !strncmp(spec, "const", 5))
        o->init = CLOPT_INIT_CONST;
    else {
        print_error("--init '%s': use random, normal[:SIGMA], uniform[:A], zeros, const:V or "
                    "FILE.npy",
                    spec);
        return -1;
    }
    if (o->init != CLOPT_INIT_CONST && !(value > 0)) {
        print_error("--init '%s': the scale must be > 0", spec);
        return -1;
    }
    o->init_value = value;
    a->init_file = NULL;
    return 0;
}

/* flag: the option the text came from (--tune or --space), for messages. */
static int parse_tune(struct clopt_knobs *k, const char *spec, const char *flag)
{
    char *copy = strdup(spec);
    if (!copy) {
        print_error("out of memory");
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            print_error("%s '%s': need KEY=VALUE", flag, item);
            rc = -1;
            break;
        }
        *eq = '\0';
        const char *key = item, *val = eq + 1;
        char label[64]; /* "--tune fuse": number errors name the knob */
        snprintf(label, sizeof label, "%s %.40s", flag, key);
        uint64_t v = 0;
        if (!strcmp(key, "layout")) {
            if (!strcmp(val, "contig") || !strcmp(val, "1"))
                k->layout = 1;
            else if (!strcmp(val, "strided") || !strcmp(val, "2"))
                k->layout = 2;
            else {
                print_error("%s layout=%s: use contig or strided", flag, val);
                rc = -1;
            }
        } else if (!strcmp(key, "partials")) {
            if (!strcmp(val, "item"))
                k->group_partials = 1;
            else if (!strcmp(val, "group"))
                k->group_partials = 2;
            else {
                print_error("%s partials=%s: use item or group", flag, val);
                rc = -1;
            }
        } else if (!strcmp(key, "acc")) {
            if (!strcmp(val, "double"))
                k->accumulate = 1;
            else if (!strcmp(val, "kahan"))
                k->accumulate = 2;
            else {
                print_error("%s acc=%s: use double or kahan", flag, val);
                rc = -1;
            }
        } else if (!strcmp(key, "gpcu")) {
            if (parse_count_flag(label, val, 1024, &v))
                rc = -1;
            else
                k->groups_per_cu = (size_t)v;
        } else if (!strcmp(key, "pf")) {
            if (!strcmp(val, "off"))
                k->prefetch = 1;
            else if (parse_count_flag(label, val, (uint64_t)1 << 20, &v))
                rc = -1;
            else if (v < 2) {
                print_error("%s pf=%s: use off or a distance of at least 2 elements", flag, val);
                rc = -1;
            } else
                k->prefetch = (size_t)v;
        } else if (!strcmp(key, "simd")) {
            if (!strcmp(val, "256"))
                k->simd_bits = 256;
            else if (!strcmp(val, "512"))
                k->simd_bits = 512;
            else {
                print_error("%s simd=%s: use 256 or 512", flag, val);
                rc = -1;
            }
        } else if (!strcmp(key, "fuse")) {
            if (parse_count_flag(label, val, 32, &v)) {
                rc = -1;
            } else if (v == 0) {
                print_error("%s fuse=%s: must be at least 1", flag, val);
                rc = -1;
            } else
                k->fuse = (size_t)v;
        } else if (!strcmp(key, "wg") || !strcmp(key, "epw") || !strcmp(key, "vw") ||
                   !strcmp(key, "fblock") || !strcmp(key, "rwg")) {
            if (parse_count_flag(label, val, (uint64_t)1 << 20, &v)) {
                rc = -1;
            } else if (v == 0) {
                print_error("%s %s=%s: must be at least 1", flag, key, val);
                rc = -1;
            } else if (!strcmp(key, "wg"))
                k->work_group = (size_t)v;
            else if (!strcmp(key, "epw"))
                k->elems_per_item = (size_t)v;
            else if (!strcmp(key, "fblock"))
                k->loss_block = (size_t)v;
            else if (!strcmp(key, "rwg"))
                k->reduce_group = (size_t)v;
            else
                k->vector_width = (size_t)v;
        } else {
            print_error("%s: unknown knob '%s' (knobs: wg, epw, vw, fblock, layout, partials, "
                        "rwg, acc, gpcu, pf, simd, fuse)",
                        flag, key);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

enum {
    OPT_OBJECTIVE = 256,
    OPT_PARAM,
    OPT_DIM,
    OPT_INIT,
    OPT_SEED,
    OPT_OPTIMIZER,
    OPT_LR,
    OPT_ITERS,
    OPT_GTOL,
    OPT_FTOL,
    OPT_TARGET,
    OPT_LOSS_EVERY,
    OPT_PRECISION,
    OPT_OUT,
    OPT_TRACE,
    OPT_JSON,
    OPT_DEVICE,
    OPT_TUNE,
    OPT_MAX_SHARD,
    OPT_KERNEL_DIR,
    OPT_QUIET,
    OPT_MOMENTUM,
    OPT_DAMPENING,
    OPT_BETA1,
    OPT_BETA2,
    OPT_EPS,
    OPT_WEIGHT_DECAY,
    OPT_ALPHA,
    OPT_AMSGRAD,
    OPT_MAXIMIZE,
    OPT_SCHEDULE,
    OPT_CLIP_VALUE,
    OPT_CLIP_NORM,
    OPT_SAMPLES,
    OPT_TOL,
    OPT_CHECKPOINT,
    OPT_CHECKPOINT_EVERY,
    OPT_RESUME,
    OPT_REPS,
    OPT_CSV,
    OPT_TUNING_DB,
    OPT_SPACE,
    OPT_BUDGET,
    OPT_PROGRAM_CACHE,
};

static const struct option run_options[] = {
    {"objective", required_argument, NULL, OPT_OBJECTIVE},
    {"param", required_argument, NULL, OPT_PARAM},
    {"dim", required_argument, NULL, OPT_DIM},
    {"init", required_argument, NULL, OPT_INIT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"lr", required_argument, NULL, OPT_LR},
    {"iters", required_argument, NULL, OPT_ITERS},
    {"gtol", required_argument, NULL, OPT_GTOL},
    {"ftol", required_argument, NULL, OPT_FTOL},
    {"target", required_argument, NULL, OPT_TARGET},
    {"loss-every", required_argument, NULL, OPT_LOSS_EVERY},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"out", required_argument, NULL, OPT_OUT},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"json", required_argument, NULL, OPT_JSON},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"tune", required_argument, NULL, OPT_TUNE},
    {"max-shard-bytes", required_argument, NULL, OPT_MAX_SHARD},
    {"kernel-dir", required_argument, NULL, OPT_KERNEL_DIR},
    {"program-cache", required_argument, NULL, OPT_PROGRAM_CACHE},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"dampening", required_argument, NULL, OPT_DAMPENING},
    {"beta1", required_argument, NULL, OPT_BETA1},
    {"beta2", required_argument, NULL, OPT_BETA2},
    {"eps", required_argument, NULL, OPT_EPS},
    {"weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY},
    {"alpha", required_argument, NULL, OPT_ALPHA},
    {"amsgrad", no_argument, NULL, OPT_AMSGRAD},
    {"maximize", no_argument, NULL, OPT_MAXIMIZE},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"clip-value", required_argument, NULL, OPT_CLIP_VALUE},
    {"clip-norm", required_argument, NULL, OPT_CLIP_NORM},
    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
    {"checkpoint-every", required_argument, NULL, OPT_CHECKPOINT_EVERY},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"reps", required_argument, NULL, OPT_REPS},
    {"csv", required_argument, NULL, OPT_CSV},
    {"tuning-db", required_argument, NULL, OPT_TUNING_DB},
    {"space", required_argument, NULL, OPT_SPACE},
    {"budget", required_argument, NULL, OPT_BUDGET},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Splits one --param KEY=VALUE into params[*count] (the text is cut at '='). */
static int add_param(char *arg, struct clopt_param *params, size_t *count)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        print_error("--param '%s': need KEY=VALUE", arg);
        return EXIT_USAGE;
    }
    if (*count == MAX_PARAMS) {
        print_error("--param: at most %d parameters", MAX_PARAMS);
        return EXIT_USAGE;
    }
    *eq = '\0';
    params[(*count)++] = (struct clopt_param){arg, eq + 1};
    return 0;
}

/* The message for what getopt_long returned on a bad command line, and the usage status;
 * also checks that nothing but options is left. */
static int usage_error(int c, int argc, char **argv, const char *command)
{
    if (c == ':')
        print_error("option '%s' needs a value (see clopt --help)", argv[optind - 1]);
    else if (c != -1)
        print_error("unknown option '%s' for %s (see clopt --help)", argv[optind - 1], command);
    else if (optind < argc)
        print_error("unexpected argument '%s' (see clopt --help)", argv[optind]);
    else
        return 0;
    return EXIT_USAGE;
}

/* The program cache's directory: --program-cache (flag, NULL when not given), else
 * $CLOPT_PROGRAM_CACHE, else $XDG_CACHE_HOME/clopt/programs, else
 * $HOME/.cache/clopt/programs. NULL means no cache: "off", or no home to put it in. */
static const char *program_cache_dir(const char *flag, char *buffer, size_t size)
{
    const char *env = getenv("CLOPT_PROGRAM_CACHE");
    const char *dir = flag ? flag : env && *env ? env : NULL;
    if (dir)
        return *dir && strcmp(dir, "off") != 0 ? dir : NULL;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg)
        n = snprintf(buffer, size, "%s/clopt/programs", xdg);
    else if (home && *home)
        n = snprintf(buffer, size, "%s/.cache/clopt/programs", home);
    else
        return NULL;
    return n > 0 && (size_t)n < size ? buffer : NULL;
}

/* Destroys the context, first saying (one warning line) if compiled kernels could not be
 * stored in the program cache: the run did not need it, but the next one rebuilds. */
static void close_context(struct clopt_context *ctx, const char *cache_dir)
{
    struct clopt_cache_stats st;
    if (ctx && cache_dir && clopt_context_cache_stats(ctx, &st) == CLOPT_OK && st.store_failures)
        fprintf(stderr,
                "clopt: warning: could not store compiled kernels in the program cache '%s' "
                "(%llu failed): check the directory, or use --program-cache off\n",
                cache_dir, (unsigned long long)st.store_failures);
    clopt_context_destroy(ctx);
}

/* A context on the chosen device, caching programs in program_cache (NULL: not), or the
 * status to exit with after saying why. */
static int open_context(const char *device, const char *kernel_dir, const char *program_cache,
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
    print_error("%s", *ctx ? clopt_errmsg(*ctx) : clopt_strerror(status));
    clopt_context_destroy(*ctx);
    *ctx = NULL;
    /* A --device that matches nothing is a usage error; no device at all is not. */
    return status == CLOPT_ERR_NO_DEVICE && device && *device ? EXIT_USAGE : EXIT_FAILURE;
}

/* Returns 0, EXIT_USAGE on a bad flag, or -1 after printing help. */
static int parse_run_args(int argc, char **argv, struct run_args *a)
{
    struct clopt_options *o = &a->opts;
    clopt_options_init(o);
    o->params = a->params;
    a->device = getenv("CLOPT_DEVICE");
    a->kernel_dir = getenv("CLOPT_KERNEL_DIR");
    const uint64_t max_dim = (uint64_t)1 << 48;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
        uint64_t v;
        double d;
        switch (c) {
        case OPT_OBJECTIVE:
            o->objective = optarg;
            break;
        case OPT_PARAM:
            if (add_param(optarg, a->params, &o->n_params))
                return EXIT_USAGE;
            break;
        case OPT_DIM:
            if (parse_positive_flag("--dim", optarg, max_dim, &v))
                return EXIT_USAGE;
            o->dim = (size_t)v;
            a->dim_given = 1;
            break;
        case OPT_INIT:
            if (parse_init(a, optarg))
                return EXIT_USAGE;
            break;
        case OPT_SEED:
            if (parse_count_flag("--seed", optarg, UINT64_MAX, &o->seed))
                return EXIT_USAGE;
            break;
        case OPT_OPTIMIZER:
            o->optimizer = optarg;
            break;
        case OPT_LR:
            if (parse_double_flag("--lr", optarg, &d))
                return EXIT_USAGE;
            if (d < 0) {
                print_error("--lr '%s': must be >= 0", optarg);
                return EXIT_USAGE;
            }
            o->lr = d;
            break;
        case OPT_MOMENTUM:
        case OPT_DAMPENING:
        case OPT_BETA1:
        case OPT_BETA2:
        case OPT_EPS:
        case OPT_WEIGHT_DECAY:
        case OPT_ALPHA:
        case OPT_CLIP_VALUE:
        case OPT_CLIP_NORM: {
            /* Ranges are the library's to check: it names the flag and the valid range. */
            const char *flag = argv[optind - 1];
            if (parse_double_flag(flag, optarg, &d))
                return EXIT_USAGE;
            double *field = c == OPT_MOMENTUM       ? &o->momentum
                            : c == OPT_DAMPENING    ? &o->dampening
                            : c == OPT_BETA1        ? &o->beta1
                            : c == OPT_BETA2        ? &o->beta2
                            : c == OPT_EPS          ? &o->eps
                            : c == OPT_WEIGHT_DECAY ? &o->weight_decay
                            : c == OPT_ALPHA        ? &o->alpha
                            : c == OPT_CLIP_VALUE   ? &o->clip_value
                                                    : &o->clip_norm;
            *field = d;
            break;
        }
        case OPT_AMSGRAD:
            o->amsgrad = 1;
            break;
        case OPT_MAXIMIZE:
            o->maximize = 1;
            break;
        case OPT_SCHEDULE:
            o->schedule = optarg;
            break;
        case OPT_ITERS:
            if (parse_count_flag("--iters", optarg, (uint64_t)1 << 62, &o->max_iters))
                return EXIT_USAGE;
            a->iters_given = 1;
            break;
        case OPT_GTOL:
        case OPT_FTOL:
            if (parse_double_flag(c == OPT_GTOL ? "--gtol" : "--ftol", optarg, &d))
                return EXIT_USAGE;
            if (d < 0) {
                print_error("%s '%s': must be >= 0", c == OPT_GTOL ? "--gtol" : "--ftol", optarg);
                return EXIT_USAGE;
            }
            *(c == OPT_GTOL ? &o->gtol : &o->ftol) = d;
            break;
        case OPT_TARGET:
            if (parse_double_flag("--target", optarg, &o->target))
                return EXIT_USAGE;
            break;
        case OPT_LOSS_EVERY:
            if (parse_positive_flag("--loss-every", optarg, (uint64_t)1 << 62, &o->loss_every))
                return EXIT_USAGE;
            break;
        case OPT_PRECISION:
            if (!strcmp(optarg, "float"))
                o->precision = CLOPT_FLOAT;
            else if (!strcmp(optarg, "double"))
                o->precision = CLOPT_DOUBLE;
            else {
                print_error("--precision '%s': use float or double", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_OUT:
            a->out_path = optarg;
            break;
        case OPT_TRACE:
            a->trace_path = optarg;
            break;
        case OPT_JSON:
            a->json_path = optarg;
            break;
        case OPT_DEVICE:
            a->device = optarg;
            break;
        case OPT_TUNE:
            if (parse_tune(&o->knobs, optarg, "--tune"))
                return EXIT_USAGE;
            a->knobs_given = 1;
            break;
        case OPT_MAX_SHARD:
            if (parse_count_flag("--max-shard-bytes", optarg, (uint64_t)1 << 62, &v))
                return EXIT_USAGE;
            o->max_shard_bytes = (size_t)v;
            break;
        case OPT_KERNEL_DIR:
            a->kernel_dir = optarg;
            break;
        case OPT_PROGRAM_CACHE:
            a->program_cache = optarg;
            break;
        case OPT_CHECKPOINT:
            o->checkpoint = optarg;
            break;
        case OPT_CHECKPOINT_EVERY:
            if (parse_positive_flag("--checkpoint-every", optarg, (uint64_t)1 << 62,
                                    &o->checkpoint_every))
                return EXIT_USAGE;
            break;
        case OPT_RESUME:
            a->resume_path = optarg;
            break;
        case OPT_REPS:
            if (parse_positive_flag("--reps", optarg, 1000, &a->reps))
                return EXIT_USAGE;
            break;
        case OPT_CSV:
            a->csv_path = optarg;
            break;
        case OPT_TUNING_DB:
            a->tuning_db = optarg;
            break;
        case OPT_SPACE:
            a->space = optarg;
            break;
        case OPT_BUDGET:
            if (parse_double_flag("--budget", optarg, &a->budget))
                return EXIT_USAGE;
            if (!(a->budget > 0)) {
                print_error("--budget '%s': must be > 0 seconds", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_QUIET:
            a->quiet = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return usage_error(c, argc, argv, "run");
        }
    }
    if (usage_error(-1, argc, argv, "run"))
        return EXIT_USAGE;
    if (o->checkpoint_every && !o->checkpoint) {
        print_error("--checkpoint-every needs --checkpoint FILE");
        return EXIT_USAGE;
    }
    a->program_cache = program_cache_dir(a->program_cache, a->program_cache_buffer,
                                         sizeof a->program_cache_buffer);
    return 0;
}

/* Fails early, before any work, when an output file could not be written: its directory
 * is missing or read-only, or the path is a directory. */
static int check_output_path(const char *flag, const char *path)
{
    struct stat st;
    if (!strcmp(path, "-"))
        return 0;
    if (!*path || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        print_error("%s '%s': a file name is needed, not a directory", flag, path);
        return EXIT_USAGE;
    }
    char *dir = strdup(path);
    if (!dir) {
        print_error("out of memory");
        return EXIT_FAILURE;
    }
    char *slash = strrchr(dir, '/');
    const char *parent = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    int rc = 0;
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
        print_error("%s '%s': directory '%s' does not exist", flag, path, parent);
        rc = EXIT_USAGE;
    } else if (access(parent, W_OK | X_OK) != 0) {
        print_error("%s '%s': cannot write in directory '%s': %s", flag, path, parent,
                    strerror(errno));
        rc = EXIT_USAGE;
    }
    free(dir);
    return rc;
}

/* Opens an .npy and checks it against --dim; fills the dimension when it was not given. */
static int open_init_file(struct run_args *a, FILE **file, struct clopt_npy_info *info)
{
    char err[256];
    *file = fopen(a->init_file, "rb");
    if (!*file) {
        print_error("cannot open --init file '%s': %s", a->init_file, strerror(errno));
        return EXIT_USAGE;
    }
    int status = clopt_npy_read_header(*file, info, err, sizeof err);
    if (status != CLOPT_OK) {
        print_error("--init file '%s': %s", a->init_file, err);
        return EXIT_USAGE;
    }
    if (info->count > ((uint64_t)1 << 48)) {
        print_error("--init file '%s': %llu elements is more than clopt supports", a->init_file,
                    (unsigned long long)info->count);
        return EXIT_USAGE;
    }
    if (a->dim_given && info->count != a->opts.dim) {
        print_error("--init file '%s' holds %llu elements but --dim is %zu", a->init_file,
                    (unsigned long long)info->count, a->opts.dim);
        return EXIT_USAGE;
    }
    a->opts.dim = (size_t)info->count;
    return 0;
}

/* Without --dim or an --init file, a data file parameter (shifted_sphere's target) sets n.
 * A file that cannot be read is left for the library to report. */
static void dim_from_data_file(struct run_args *a)
{
    for (size_t i = 0; i < a->opts.n_params; ++i) {
        const char *value = a->params[i].value;
        if (!value || !ends_with(value, ".npy"))
            continue;
        FILE *f = fopen(value, "rb");
        struct clopt_npy_info info;
        if (f && clopt_npy_read_header(f, &info, NULL, 0) == CLOPT_OK &&
            info.count <= ((uint64_t)1 << 48))
            a->opts.dim = (size_t)info.count;
        if (f)
            fclose(f);
        return;
    }
}

/* Index of the first value that is not finite, or that overflows the run's precision;
 * n when all are fine. */
static size_t first_bad_value(const void *values, enum clopt_precision dtype, size_t n,
                              enum clopt_precision precision)
{
    for (size_t k = 0; k < n; ++k) {
        const double v =
            dtype == CLOPT_DOUBLE ? ((const double *)values)[k] : ((const float *)values)[k];
        if (!isfinite(v) || (precision == CLOPT_FLOAT && fabs(v) > FLT_MAX))
            return k;
    }
    return n;
}

static int load_init_file(struct clopt_solver *solver, struct clopt_context *ctx, FILE *file,
                          const struct clopt_npy_info *info, const char *path,
                          enum clopt_precision precision)
{
    const size_t item = info->dtype == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    void *buffer = malloc(IO_CHUNK * item);
    int rc = 0;
    if (!buffer) {
        print_error("out of host memory reading '%s'", path);
        return EXIT_FAILURE;
    }
    for (uint64_t done = 0; done < info->count && !rc;) {
        size_t n = info->count - done < IO_CHUNK ? (size_t)(info->count - done) : IO_CHUNK;
        if (fread(buffer, item, n, file) != n) {
            print_error("--init file '%s': read failed after %llu elements", path,
                        (unsigned long long)done);
            rc = EXIT_USAGE;
            break;
        }
        const size_t bad = first_bad_value(buffer, info->dtype, n, precision);
        if (bad < n) {
            const double v = info->dtype == CLOPT_DOUBLE ? ((const double *)buffer)[bad]
                                                         : ((const float *)buffer)[bad];
            print_error("--init file '%s': element %llu is %g, which is not a finite %s", path,
                        (unsigned long long)(done + bad), v,
                        precision == CLOPT_DOUBLE ? "double" : "float");
            rc = EXIT_USAGE;
            break;
        }
        int status = clopt_solver_write_theta(solver, buffer, info->dtype, (size_t)done, n);
        if (status != CLOPT_OK) {
            print_error("%s", clopt_errmsg(ctx));
            rc = exit_code_for(status, 0);
        }
        done += n;
    }
    free(buffer);
    return rc;
}

/* Writes theta to path through a temporary file and a rename, so an existing file is
 * never left half-written. */
static int write_theta_file(struct clopt_solver *solver, struct clopt_context *ctx,
                            const char *path, enum clopt_precision precision, size_t n)
{
    const size_t item = precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    size_t tmp_len = strlen(path) + 16;
    char *tmp = malloc(tmp_len);
    void *buffer = malloc(IO_CHUNK * item);
    FILE *f = NULL;
    int rc = 0;
    char err[256];
    if (!tmp || !buffer) {
        print_error("out of host memory writing '%s'", path);
        rc = EXIT_FAILURE;
        goto cleanup;
    }
    snprintf(tmp, tmp_len, "%s.tmp%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f) {
        print_error("cannot write --out '%s': %s", path, strerror(errno));
        rc = EXIT_FAILURE;
        goto cleanup;
    }
    if (clopt_npy_write_header(f, precision, n, err, sizeof err) != CLOPT_OK) {
        print_error("writing --out '%s': %s", path, err);
        rc = EXIT_FAILURE;
        goto cleanup;
    }
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < IO_CHUNK ? n - done : IO_CHUNK;
        int status = clopt_solver_read_theta(solver, buffer, precision, done, chunk);
        if (status != CLOPT_OK) {
            print_error("%s", clopt_errmsg(ctx));
            rc = EXIT_FAILURE;
            goto cleanup;
        }
        if (fwrite(buffer, item, chunk, f) != chunk) {
            print_error("writing --out '%s': %s", path, strerror(errno));
            rc = EXIT_FAILURE;
            goto cleanup;
        }
        done += chunk;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        print_error("writing --out '%s': %s", path, strerror(errno));
        rc = EXIT_FAILURE;
        goto cleanup;
    }
    int close_rc = fclose(f);
    f = NULL;
    if (close_rc != 0 || rename(tmp, path) != 0) {
        print_error("cannot write '%s': %s", path, strerror(errno));
        rc = EXIT_FAILURE;
    }
cleanup:
    if (f)
        fclose(f);
    if (rc && tmp)
        remove(tmp);
    free(tmp);
    free(buffer);
    return rc;
}

static const char *stop_name(int status)
{
    switch (status) {
    case CLOPT_STOP_MAX_ITERS:
        return "max_iters";
    case CLOPT_STOP_GTOL:
        return "gtol";
    case CLOPT_STOP_FTOL:
        return "ftol";
    case CLOPT_STOP_TARGET:
        return "target";
    case CLOPT_STOP_CANCELLED:
        return "cancelled";
    case CLOPT_ERR_DIVERGED:
        return "diverged";
    default:
        return "error";
    }
}

/* "program_cache": {"dir": DIR or null, "hits", "misses", "stores", "store_failures",
 * "rejected"}; 0 when out of memory. */
static int add_cache_json(cJSON *root, const struct run_args *a, const struct clopt_context *ctx)
{
    struct clopt_cache_stats st;
    if (clopt_context_cache_stats(ctx, &st) != CLOPT_OK)
        return 0;
    cJSON *cache = cJSON_AddObjectToObject(root, "program_cache");
    return cache &&
           (a->program_cache ? cJSON_AddStringToObject(cache, "dir", a->program_cache)
                             : cJSON_AddNullToObject(cache, "dir")) &&
           cJSON_AddNumberToObject(cache, "hits", (double)st.hits) &&
           cJSON_AddNumberToObject(cache, "misses", (double)st.misses) &&
           cJSON_AddNumberToObject(cache, "stores", (double)st.stores) &&
           cJSON_AddNumberToObject(cache, "store_failures", (double)st.store_failures) &&
           cJSON_AddNumberToObject(cache, "rejected", (double)st.rejected);
}

static int write_json(const char *path, const struct run_args *a, const struct clopt_context *ctx,
                      const struct clopt_result *r, int status)
{
    const struct clopt_device_info *dev = clopt_context_device(ctx);
    cJSON *root = cJSON_CreateObject();
    const struct clopt_options *o = &a->opts;
    int ok = root && cJSON_AddStringToObject(root, "objective", o->objective) &&
             cJSON_AddStringToObject(root, "optimizer", o->optimizer) &&
             cJSON_AddNumberToObject(root, "lr", r->lr) &&
             cJSON_AddNumberToObject(root, "n", (double)o->dim) &&
             cJSON_AddStringToObject(root, "precision",
                                     o->precision == CLOPT_DOUBLE ? "double" : "float") &&
             cJSON_AddStringToObject(root, "device", dev->name) &&
             cJSON_AddStringToObject(root, "platform", dev->platform) &&
             cJSON_AddNumberToObject(root, "iterations", (double)r->iterations) &&
             cJSON_AddNumberToObject(root, "loss", r->loss) &&
             cJSON_AddNumberToObject(root, "grad_norm", r->grad_norm) &&
             cJSON_AddStringToObject(root, "stop_reason", stop_name(status)) &&
             cJSON_AddNumberToObject(root, "seconds", r->seconds) &&
             cJSON_AddNumberToObject(root, "bytes_per_iteration", r->bytes_per_iter) &&
             cJSON_AddNumberToObject(root, "bytes_per_element", r->bytes_per_element) &&
             cJSON_AddNumberToObject(root, "gbytes_per_second", r->gbytes_per_second) &&
             cJSON_AddNumberToObject(root, "shards", (double)r->shards);
    char knobs[160];
    tuning_knobs_text(&r->knobs, knobs, sizeof knobs);
    ok = ok && cJSON_AddStringToObject(root, "knobs", knobs) &&
         cJSON_AddStringToObject(root, "knobs_source", a->knob_source) &&
         add_cache_json(root, a, ctx);
    if (ok && status == CLOPT_ERR_DIVERGED)
        ok = cJSON_AddNumberToObject(root, "diverged_at", (double)r->diverged_at) != NULL;
    return emit_json(path, root, ok);
}

static void print_summary(const struct run_args *a, const struct clopt_device_info *dev,
                          const struct clopt_result *r, int status)
{
    const struct clopt_options *o = &a->opts;
    printf("objective   %s\n", o->objective);
    printf("optimizer   %s (lr %g%s)\n", o->optimizer, r->lr, o->schedule ? ", scheduled" : "");
    printf("n           %zu (%s, %zu shard%s)\n", o->dim,
           o->precision == CLOPT_DOUBLE ? "double" : "float", r->shards, r->shards == 1 ? "" : "s");
    printf("device      %s (%s)\n", dev->name, dev->platform);
    printf("iterations  %llu\n", (unsigned long long)r->iterations);
    printf("loss        %.9e\n", r->loss);
    printf("grad norm   %.9e\n", r->grad_norm);
    printf("stop        %s%s\n", stop_name(status),
           status == CLOPT_ERR_DIVERGED ? " (theta is the last finite iterate)" : "");
    printf("seconds     %.3f\n", r->seconds);
    printf("bandwidth   %.2f GB/s (%.0f bytes per element and iteration)\n", r->gbytes_per_second,
           r->bytes_per_element);
    char knobs[160];
    tuning_knobs_text(&r->knobs, knobs, sizeof knobs);
    printf("knobs       %s (%s)\n", knobs, a->knob_source);
}

/* The signal that asked the run to stop (SIGINT or SIGTERM), 0 while none has. The run
 * loop polls it between iterations; the handler resets itself, so a second signal ends the
 * process at once. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int signo)
{
    stop_signal = signo;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Makes a trace file ready for the run that resumes the one that wrote it: a line cut
 * short by a kill is removed, and so is the closing row for the final theta when it is not
 * one a longer run would have written too (its iteration is off the --loss-every grid).
 * *last is the last iteration left in or just removed: the resumed run starts after it.
 * Returns -1 when the file has no rows or cannot be changed. */
static int prepare_trace_for_resume(const char *path, uint64_t loss_every, uint64_t *last)
{
    FILE *f = fopen(path, "r+");
    if (!f)
        return -1;
    char line[512];
    long keep = 0, row_start = -1, line_start = 0;
    int have = 0;
    uint64_t iteration = 0;
    while (fgets(line, sizeof line, f)) {
        const long line_end = ftell(f);
        const size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n')
            break; /* cut short: drop it */
        char *end;
        errno = 0;
        const unsigned long long v = strtoull(line, &end, 10);
        if (end != line && *end == ',' && errno == 0) {
            iteration = v;
            have = 1;
            row_start = line_start;
        }
        keep = line_end;
        line_start = line_end;
    }
    int rc = have ? 0 : -1;
    if (have && iteration % loss_every != 0)
        keep = row_start;
    if (fflush(f) != 0 || ftruncate(fileno(f), keep) != 0)
        rc = -1;
    fclose(f);
    *last = iteration;
    return rc;
}

static double now_seconds_cli(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *precision_name(enum clopt_precision p)
{
    return p == CLOPT_DOUBLE ? "double" : "float";
}

/* The tuning database's path: --tuning-db, else $CLOPT_TUNING_DB, else under
 * $XDG_CACHE_HOME or ~/.cache. */
static const char *tuning_db_path(const struct run_args *a, char *buffer, size_t size)
{
    const char *env = getenv("CLOPT_TUNING_DB");
    return a->tuning_db ? a->tuning_db : env && *env ? env : tuning_default_path(buffer, size);
}

static struct tuning_key tuning_key_for(const struct run_args *a, struct clopt_context *ctx)
{
    const struct clopt_device_info *dev = clopt_context_device(ctx);
    return (struct tuning_key){dev->platform,       dev->name,
                               dev->driver_version, a->opts.objective,
                               a->opts.optimizer,   precision_name(a->opts.precision),
                               a->opts.dim};
}

/* Takes the knobs from the tuning database unless --tune gave them, and notes where they
 * came from. A corrupted database is reported and ignored. */
static void knobs_from_database(struct run_args *a, struct clopt_context *ctx)
{
    char buffer[512], how[64], why[640];
    const char *path = tuning_db_path(a, buffer, sizeof buffer);
    snprintf(a->knob_source, sizeof a->knob_source, "%s",
             a->knobs_given ? "--tune" : "built-in defaults");
    if (a->knobs_given || !path)
        return;
    const struct tuning_key key = tuning_key_for(a, ctx);
    struct clopt_knobs knobs;
    const int rc = tuning_lookup(path, &key, &knobs, how, sizeof how, why, sizeof why);
    if (rc == 0) {
        /* The key has no clipping in it: a fused entry serves a --clip-norm run unfused. */
        const int unfused = knobs.fuse > 1 && a->opts.clip_norm > 0;
        if (unfused)
            knobs.fuse = 1;
        a->opts.knobs = knobs;
        snprintf(a->knob_source, sizeof a->knob_source, "tuning database %s, %s%s", path, how,
                 unfused ? ", fuse=1 for --clip-norm" : "");
    } else if (rc < 0) {
        fprintf(stderr, "clopt: warning: %s; using the built-in knobs\n", why);
        snprintf(a->knob_source, sizeof a->knob_source,
                 "built-in defaults (the tuning database is corrupted)");
    }
}

static int cmd_run(int argc, char **argv)
{
    struct run_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_run_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    if (a.reps || a.csv_path) {
        print_error("%s is an option of clopt bench", a.reps ? "--reps" : "--csv");
        return EXIT_USAGE;
    }
    if (a.space || a.budget > 0) {
        print_error("%s is an option of clopt tune", a.space ? "--space" : "--budget");
        return EXIT_USAGE;
    }
    struct clopt_context *ctx = NULL;
    struct clopt_solver *solver = NULL;
    FILE *init_file = NULL, *trace = NULL;
    struct clopt_npy_info info;
    struct progress_state ps = {.quiet = a.quiet, .last_print = 0};
    /* Files the user named (an objective, a kernel directory) failing is bad input. */
    const int user_objective = ends_with(a.opts.objective, ".cl") || a.kernel_dir;
    /* A resumed run takes theta from its checkpoint; an --init file only sets n. */
    if (a.init_file && (rc = open_init_file(&a, &init_file, &info)) != 0)
        goto cleanup;
    if (a.resume_path && access(a.resume_path, R_OK) != 0) {
        print_error("--resume '%s': %s", a.resume_path, strerror(errno));
        rc = EXIT_USAGE;
        goto cleanup;
    }
    if ((a.opts.checkpoint && (rc = check_output_path("--checkpoint", a.opts.checkpoint)) != 0))
        goto cleanup;
    if (!a.dim_given && !a.init_file)
        dim_from_data_file(&a);
    if ((a.out_path && (rc = check_output_path("--out", a.out_path)) != 0) ||
        (a.json_path && (rc = check_output_path("--json", a.json_path)) != 0) ||
        (a.trace_path && (rc = check_output_path("--trace", a.trace_path)) != 0))
        goto cleanup;
    if ((rc = open_context(a.device, a.kernel_dir, a.program_cache, &ctx)) != 0)
        goto cleanup;
    knobs_from_database(&a, ctx);
    int status;
    if (a.trace_path) {
        /* A resumed run continues the trace of the run it resumes. */
        const int append = a.resume_path && access(a.trace_path, F_OK) == 0;
        if (append)
            ps.skip = prepare_trace_for_resume(a.trace_path, a.opts.loss_every, &ps.skip_upto) == 0;
        trace = fopen(a.trace_path, append ? "a" : "w");
        if (!trace || (!append && fprintf(trace, "iteration,loss,grad_norm,lr,seconds\n") < 0)) {
            print_error("cannot write --trace file '%s': %s", a.trace_path, strerror(errno));
            rc = EXIT_FAILURE;
            goto cleanup;
        }
        /* Whole rows reach the file as they come: a killed run leaves a usable trace. */
        setvbuf(trace, NULL, _IOLBF, 0);
    }
    ps.trace = trace;
    a.opts.progress = on_progress;
    a.opts.progress_user = &ps;
    stop_signal = 0;
    a.opts.stop = &stop_signal;
    catch_stop_signals();
    status = clopt_solver_create(&solver, ctx, &a.opts);
    if (status == CLOPT_ERR_INVALID_ARG && !a.knobs_given &&
        strncmp(a.knob_source, "tuning", 6) == 0) {
        /* Knobs this build no longer accepts: the defaults still run. */
        fprintf(stderr,
                "clopt: warning: the tuning database's knobs were refused (%s); using "
                "the built-in knobs\n",
                clopt_errmsg(ctx));
        memset(&a.opts.knobs, 0, sizeof a.opts.knobs);
        snprintf(a.knob_source, sizeof a.knob_source, "built-in defaults");
        status = clopt_solver_create(&solver, ctx, &a.opts);
    }
    if (status != CLOPT_OK) {
        print_error("%s", clopt_errmsg(ctx));
        rc = exit_code_for(status, user_objective);
        goto cleanup;
    }
    if (a.resume_path) {
        status = clopt_solver_resume(solver, a.resume_path);
        if (status != CLOPT_OK) {
            print_error("%s", clopt_errmsg(ctx));
            rc = exit_code_for(status, 1);
            goto cleanup;
        }
    } else if (init_file && (rc = load_init_file(solver, ctx, init_file, &info, a.init_file,
                                                 a.opts.precision)) != 0)
        goto cleanup;
    if (!a.quiet)
        fprintf(stderr, "clopt: %s, %s, n = %zu on %s\n", a.opts.objective, a.opts.optimizer,
                a.opts.dim, clopt_context_device(ctx)->name);
    struct clopt_result result;
    status = clopt_solver_run(solver, &result);
    if (status < 0 && status != CLOPT_ERR_DIVERGED) {
        print_error("%s", clopt_errmsg(ctx));
        rc = exit_code_for(status, user_objective);
        goto cleanup;
    }
    if (status == CLOPT_ERR_DIVERGED)
        print_error("%s", clopt_errmsg(ctx));
    rc = exit_code_for(status, user_objective);
    if (status == CLOPT_STOP_CANCELLED && stop_signal) {
        /* The shell's convention for a process ended by a signal. */
        rc = 128 + (int)stop_signal;
        fprintf(stderr, "clopt: stopped by %s after iteration %llu%s%s\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)result.iterations,
                a.opts.checkpoint ? "; checkpoint written to " : "",
                a.opts.checkpoint ? a.opts.checkpoint : "");
    }
    /* Output files first: a full disk must not be hidden behind a printed summary. */
    if (a.out_path) {
        int out_rc = write_theta_file(solver, ctx, a.out_path, a.opts.precision, a.opts.dim);
        if (out_rc)
            rc = out_rc;
    }
    if (trace) {
        /* The trace ends with the final theta, as the summary does. */
        if (!ps.traced || ps.last_traced != result.iterations) {
            const struct clopt_progress last = {.iteration = result.iterations,
                                                .loss = result.loss,
                                                .grad_norm = result.grad_norm,
                                                .lr = result.final_lr,
                                                .seconds = result.seconds};
            ps.quiet = 1;
            on_progress(&ps, &last);
        }
        int failed = ps.trace_failed || fclose(trace) != 0;
        trace = NULL;
        if (failed) {
            print_error("writing --trace file '%s' failed", a.trace_path);
            rc = EXIT_FAILURE;
        }
    }
    if (a.json_path) {
        int json_rc = write_json(a.json_path, &a, ctx, &result, status);
        if (json_rc)
            rc = json_rc;
    }
    if (!a.quiet && !(a.json_path && !strcmp(a.json_path, "-")))
        print_summary(&a, clopt_context_device(ctx), &result, status);
cleanup:
    if (init_file)
        fclose(init_file);
    if (trace)
        fclose(trace);
    clopt_solver_destroy(solver);
    close_context(ctx, a.program_cache);
    return rc;
}

static const struct option check_options[] = {
    {"objective", required_argument, NULL, OPT_OBJECTIVE},
    {"param", required_argument, NULL, OPT_PARAM},
    {"dim", required_argument, NULL, OPT_DIM},
    {"samples", required_argument, NULL, OPT_SAMPLES},
    {"init", required_argument, NULL, OPT_INIT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"tol", required_argument, NULL, OPT_TOL},
    {"json", required_argument, NULL, OPT_JSON},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"kernel-dir", required_argument, NULL, OPT_KERNEL_DIR},
    {"program-cache", required_argument, NULL, OPT_PROGRAM_CACHE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int write_check_json(const char *path, const struct clopt_check_options *o,
                            const struct clopt_check_result *r, double tol, int passed)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddStringToObject(root, "objective", o->objective) &&
             cJSON_AddNumberToObject(root, "n", (double)o->dim) &&
             cJSON_AddNumberToObject(root, "checked", (double)r->checked) &&
             cJSON_AddStringToObject(root, "precision",
                                     r->precision == CLOPT_DOUBLE ? "double" : "float") &&
             cJSON_AddNumberToObject(root, "worst_error",
                                     isfinite(r->worst_error) ? r->worst_error : DBL_MAX) &&
             cJSON_AddNumberToObject(root, "worst_index", (double)r->worst_index) &&
             cJSON_AddNumberToObject(root, "gradient", r->gradient) &&
             cJSON_AddNumberToObject(root, "finite_difference", r->finite_difference) &&
             cJSON_AddNumberToObject(root, "tolerance", tol) &&
             cJSON_AddBoolToObject(root, "passed", passed);
    return emit_json(path, root, ok);
}

static int cmd_check(int argc, char **argv)
{
    struct clopt_check_options o;
    clopt_check_options_init(&o);
    struct clopt_param params[MAX_PARAMS];
    o.params = params;
    const char *device = getenv("CLOPT_DEVICE"), *kernel_dir = getenv("CLOPT_KERNEL_DIR");
    const char *json_path = NULL, *program_cache = NULL;
    char program_cache_buffer[4096];
    double tol = NAN;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", check_options, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case OPT_OBJECTIVE:
            o.objective = optarg;
            break;
        case OPT_PARAM:
            if (add_param(optarg, params, &o.n_params))
                return EXIT_USAGE;
            break;
        case OPT_DIM:
        case OPT_SAMPLES: {
            const char *flag = c == OPT_DIM ? "--dim" : "--samples";
            if (parse_positive_flag(flag, optarg,
                                    c == OPT_DIM ? (uint64_t)1 << 48 : (uint64_t)1 << 24, &v))
                return EXIT_USAGE;
            *(c == OPT_DIM ? &o.dim : &o.samples) = (size_t)v;
            break;
        }
        case OPT_INIT: {
            struct run_args a;
            memset(&a, 0, sizeof a);
            if (parse_init(&a, optarg))
                return EXIT_USAGE;
            if (a.init_file) {
                print_error("--init '%s': the check draws its point: use normal[:S], "
                            "uniform[:A] or const:V",
                            optarg);
                return EXIT_USAGE;
            }
            o.init = a.opts.init;
            o.init_value = a.opts.init_value;
            break;
        }
        case OPT_SEED:
            if (parse_count_flag("--seed", optarg, UINT64_MAX, &o.seed))
                return EXIT_USAGE;
            break;
        case OPT_TOL:
            if (parse_double_flag("--tol", optarg, &tol))
                return EXIT_USAGE;
            if (!(tol > 0)) {
                print_error("--tol '%s': must be > 0", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_JSON:
            json_path = optarg;
            break;
        case OPT_DEVICE:
            device = optarg;
            break;
        case OPT_KERNEL_DIR:
            kernel_dir = optarg;
            break;
        case OPT_PROGRAM_CACHE:
            program_cache = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_SUCCESS;
        default:
            return usage_error(c, argc, argv, "check");
        }
    }
    if (usage_error(-1, argc, argv, "check"))
        return EXIT_USAGE;
    int rc;
    if (json_path && (rc = check_output_path("--json", json_path)) != 0)
        return rc;
    struct clopt_context *ctx = NULL;
    program_cache =
        program_cache_dir(program_cache, program_cache_buffer, sizeof program_cache_buffer);
    if ((rc = open_context(device, kernel_dir, program_cache, &ctx)) != 0)
        return rc;
    struct clopt_check_result r;
    int status = clopt_check_gradient(ctx, &o, &r);
    if (status != CLOPT_OK) {
        print_error("%s", clopt_errmsg(ctx));
        rc = exit_code_for(status, ends_with(o.objective, ".cl") || kernel_dir);
        clopt_context_destroy(ctx);
        return rc;
    }
    if (isnan(tol))
        tol = r.precision == CLOPT_DOUBLE ? 1e-6 : 1e-2;
    const int passed = r.worst_error <= tol;
    rc = passed ? EXIT_SUCCESS : EXIT_CHECK_FAILED;
    if (json_path) {
        int json_rc = write_check_json(json_path, &o, &r, tol, passed);
        if (json_rc)
            rc = json_rc;
    }
    if (!(json_path && !strcmp(json_path, "-"))) {
        printf("objective   %s (n = %zu, %zu elements checked, %s, on %s)\n", o.objective, o.dim,
               r.checked, r.precision == CLOPT_DOUBLE ? "double" : "float",
               clopt_context_device(ctx)->name);
        printf("worst error %.3e at element %zu: gradient %.17g, finite difference %.17g\n",
               r.worst_error, r.worst_index, r.gradient, r.finite_difference);
        printf("result      %s (tolerance %g)\n", passed ? "PASS" : "FAIL", tol);
    }
    if (!passed)
        print_error("gradient check failed: the gradient of '%s' at element %zu is %.9g but the "
                    "finite difference of its loss is %.9g (relative error %.3g > %g)",
                    o.objective, r.worst_index, r.gradient, r.finite_difference, r.worst_error,
                    tol);
    close_context(ctx, program_cache);
    return rc;
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median wall-clock seconds of `reps` runs of the solver's iterations; *last gets the
 * last run's result. */
static int time_runs(struct clopt_solver *solver, unsigned reps, double *median,
                     struct clopt_result *last)
{
    double *seconds = calloc(reps, sizeof *seconds);
    if (!seconds)
        return CLOPT_ERR_OUT_OF_MEMORY;
    int status = CLOPT_OK;
    for (unsigned k = 0; k < reps && status == CLOPT_OK; ++k) {
        status = clopt_solver_run(solver, last);
        if (status > 0)
            status = CLOPT_OK;
        seconds[k] = last->seconds;
    }
    qsort(seconds, reps, sizeof *seconds, compare_doubles);
    *median = seconds[reps / 2];
    free(seconds);
    return status;
}

/* clopt bench: the device's STREAM-style bandwidth, then the fused step of the chosen
 * problem, and the ratio of the two, measured in the same process. */
static int cmd_bench(int argc, char **argv)
{
    struct run_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_run_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    if (a.out_path || a.trace_path || a.init_file || a.resume_path || a.opts.checkpoint) {
        print_error("clopt bench times the step alone: --out, --trace, --init FILE, --resume "
                    "and --checkpoint are options of clopt run");
        return EXIT_USAGE;
    }
    if (a.space || a.budget > 0) {
        print_error("%s is an option of clopt tune (clopt bench times one set of knobs: --tune)",
                    a.space ? "--space" : "--budget");
        return EXIT_USAGE;
    }
    const unsigned reps = a.reps ? (unsigned)a.reps : 5;
    const uint64_t iters = a.iters_given ? a.opts.max_iters : 20;
    if (iters == 0) {
        print_error("--iters must be at least 1 for clopt bench");
        return EXIT_USAGE;
    }
    if ((a.json_path && (rc = check_output_path("--json", a.json_path)) != 0) ||
        (a.csv_path && (rc = check_output_path("--csv", a.csv_path)) != 0))
        return rc;
    struct clopt_context *ctx = NULL;
    struct clopt_solver *solver = NULL;
    const int user_objective = ends_with(a.opts.objective, ".cl") || a.kernel_dir;
    if ((rc = open_context(a.device, a.kernel_dir, a.program_cache, &ctx)) != 0)
        goto cleanup;
    knobs_from_database(&a, ctx);
    struct clopt_bandwidth bw;
    int status = clopt_measure_bandwidth(ctx, a.opts.dim, a.opts.precision, reps, &bw);
    if (status != CLOPT_OK) {
        print_error("%s", clopt_errmsg(ctx));
        rc = exit_code_for(status, user_objective);
        goto cleanup;
    }
    a.opts.max_iters = iters;
    status = clopt_solver_create(&solver, ctx, &a.opts);
    struct clopt_result r;
    memset(&r, 0, sizeof r);
    /* One untimed run first: first-touch page faults and caches, as STREAM's warm-up. */
    double median = 0;
    if (status == CLOPT_OK)
        status = time_runs(solver, 1, &median, &r);
    if (status == CLOPT_OK)
        status = time_runs(solver, reps, &median, &r);
    if (status != CLOPT_OK) {
        print_error("%s", clopt_errmsg(ctx));
        rc = exit_code_for(status, user_objective);
        goto cleanup;
    }
    const double step_gbs = median > 0 ? r.bytes_per_iter * (double)iters / median / 1e9 : 0;
    const double elem_iters = median > 0 ? (double)a.opts.dim * (double)iters / median : 0;
    const double best_stream = fmax(bw.copy_gbytes_per_second, bw.scale_gbytes_per_second);
    const double ratio = bw.scale_gbytes_per_second > 0 ? step_gbs / bw.scale_gbytes_per_second : 0;
    const struct clopt_device_info *dev = clopt_context_device(ctx);
    const char *precision = a.opts.precision == CLOPT_DOUBLE ? "double" : "float";
    char knobs[160];
    tuning_knobs_text(&r.knobs, knobs, sizeof knobs);
    if (a.json_path) {
        cJSON *root = cJSON_CreateObject();
        int ok =
            root && cJSON_AddStringToObject(root, "device", dev->name) &&
            cJSON_AddStringToObject(root, "platform", dev->platform) &&
            cJSON_AddStringToObject(root, "objective", a.opts.objective) &&
            cJSON_AddStringToObject(root, "optimizer", a.opts.optimizer) &&
            cJSON_AddStringToObject(root, "precision", precision) &&
            cJSON_AddNumberToObject(root, "n", (double)a.opts.dim) &&
            cJSON_AddNumberToObject(root, "iterations_per_rep", (double)iters) &&
            cJSON_AddNumberToObject(root, "reps", reps) &&
            cJSON_AddNumberToObject(root, "stream_n", (double)bw.n) &&
            cJSON_AddNumberToObject(root, "copy_gbytes_per_second", bw.copy_gbytes_per_second) &&
            cJSON_AddNumberToObject(root, "scale_gbytes_per_second", bw.scale_gbytes_per_second) &&
            cJSON_AddNumberToObject(root, "step_seconds", median) &&
            cJSON_AddNumberToObject(root, "bytes_per_element", r.bytes_per_element) &&
            cJSON_AddNumberToObject(root, "step_gbytes_per_second", step_gbs) &&
            cJSON_AddNumberToObject(root, "element_iterations_per_second", elem_iters) &&
            cJSON_AddNumberToObject(root, "ratio_to_scale", ratio) &&
            cJSON_AddStringToObject(root, "knobs", knobs) &&
            cJSON_AddStringToObject(root, "knobs_source", a.knob_source);
        if (emit_json(a.json_path, root, ok))
            rc = EXIT_FAILURE;
    }
    if (a.csv_path) {
        FILE *f = open_report("--csv", a.csv_path);
        if (!f) {
            rc = EXIT_FAILURE;
        } else {
            fprintf(f, "objective,optimizer,precision,n,copy_gbps,scale_gbps,step_gbps,"
                       "element_iterations_per_second,ratio_to_scale,knobs\n");
            /* The knobs hold commas: one quoted field. */
            fprintf(f, "%s,%s,%s,%zu,%.6g,%.6g,%.6g,%.6g,%.6g,\"%s\"\n", a.opts.objective,
                    a.opts.optimizer, precision, a.opts.dim, bw.copy_gbytes_per_second,
                    bw.scale_gbytes_per_second, step_gbs, elem_iters, ratio, knobs);
            if (close_report("--csv", a.csv_path, f))
                rc = EXIT_FAILURE;
        }
    }
    const int to_stdout =
        (a.json_path && !strcmp(a.json_path, "-")) || (a.csv_path && !strcmp(a.csv_path, "-"));
    if (!a.quiet && !to_stdout) {
        printf("device      %s (%s)\n", dev->name, dev->platform);
        printf("stream      copy %.2f GB/s, in-place scale %.2f GB/s (n = %zu, median of %u, "
               "profiling events)\n",
               bw.copy_gbytes_per_second, bw.scale_gbytes_per_second, bw.n, reps);
        printf("step        %s, %s, %s, n = %zu: %.2f GB/s (%.0f bytes per element), %.3g "
               "element-iterations/s (median of %u runs of %llu iterations, wall clock)\n",
               a.opts.objective, a.opts.optimizer, precision, a.opts.dim, step_gbs,
               r.bytes_per_element, elem_iters, reps, (unsigned long long)iters);
        printf("ratio       %.3f of the in-place scale bandwidth (%.3f of the best stream)\n",
               ratio, best_stream > 0 ? step_gbs / best_stream : 0);
        printf("knobs       %s (%s)\n", knobs, a.knob_source);
    }
cleanup:
    clopt_solver_destroy(solver);
    close_context(ctx, a.program_cache);
    return rc;
}

/* The knob values to try: --space KEY=V|V|...,... (any --tune knob) or a pruned space for
 * the device type. Each value is kept as a knob set with only its own field set, so a
 * candidate is the union of one value per knob. */
#define SPACE_KNOBS 12
#define SPACE_VALUES 8
#define SPACE_MAX_CANDIDATES 4096
static const char *const space_keys[SPACE_KNOBS] = {
    "wg", "epw", "vw", "fblock", "layout", "partials", "rwg", "acc", "gpcu", "fuse", "pf", "simd"};

struct tune_space {
    struct clopt_knobs values[SPACE_KNOBS][SPACE_VALUES];
    size_t count[SPACE_KNOBS];
};

static int parse_space(const char *spec, struct tune_space *sp)
{
    char *copy = strdup(spec);
    if (!copy) {
        print_error("out of memory");
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        size_t knob = SPACE_KNOBS;
        if (eq) {
            *eq = '\0';
            for (knob = 0; knob < SPACE_KNOBS && strcmp(item, space_keys[knob]); ++knob)
                ;
        }
        if (knob == SPACE_KNOBS) {
            print_error("--space '%s': use KEY=V|V|... with KEY one of wg, epw, vw, fblock, "
                        "layout, partials, rwg, acc, gpcu, fuse, pf, simd",
                        spec);
            rc = -1;
            break;
        }
        size_t *count = &sp->count[knob];
        *count = 0;
        char *save2 = NULL;
        for (char *v = strtok_r(eq + 1, "|", &save2); v && !rc; v = strtok_r(NULL, "|", &save2)) {
            char one[96];
            if ((size_t)snprintf(one, sizeof one, "%s=%s", item, v) >= sizeof one) {
                print_error("--space %s: value '%s' is too long", item, v);
                rc = -1;
            } else if (*count == SPACE_VALUES) {
                print_error("--space %s: at most %d values", item, SPACE_VALUES);
                rc = -1;
            } else if (parse_tune(&sp->values[knob][*count], one, "--space")) {
                rc = -1; /* the parser said why */
            } else {
                ++*count;
            }
        }
        if (!rc && *count == 0) {
            print_error("--space %s: no values", item);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

/* dst gets every field src sets (0 means "not set" for every knob but gpcu, whose 0 is
 * its default anyway). */
static void merge_knobs(struct clopt_knobs *dst, const struct clopt_knobs *src)
{
    if (src->work_group)
        dst->work_group = src->work_group;
    if (src->elems_per_item)
        dst->elems_per_item = src->elems_per_item;
    if (src->vector_width)
        dst->vector_width = src->vector_width;
    if (src->loss_block)
        dst->loss_block = src->loss_block;
    if (src->layout)
        dst->layout = src->layout;
    if (src->group_partials)
        dst->group_partials = src->group_partials;
    if (src->reduce_group)
        dst->reduce_group = src->reduce_group;
    if (src->accumulate)
        dst->accumulate = src->accumulate;
    if (src->groups_per_cu)
        dst->groups_per_cu = src->groups_per_cu;
    if (src->fuse)
        dst->fuse = src->fuse;
    if (src->prefetch)
        dst->prefetch = src->prefetch;
    if (src->simd_bits)
        dst->simd_bits = src->simd_bits;
}

struct tune_result {
    struct clopt_knobs knobs;
    double gbytes_per_second;
    int ok;         /* verified and timed */
    int refused;    /* the solver refused the knobs for this problem (bad input, not a fault) */
    char note[200]; /* verification, or why it was discarded */
};

/* Reads theta in the run's precision (the comparison is of bits). */
static void *read_theta_bits(struct clopt_solver *solver, const struct clopt_options *o)
{
    const size_t item = o->precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    void *theta = malloc(o->dim * item);
    if (theta && clopt_solver_read_theta(solver, theta, o->precision, 0, o->dim) != CLOPT_OK) {
        free(theta);
        theta = NULL;
    }
    return theta;
}

/* clopt tune: every candidate is checked against the default knobs' result (theta bit for
 * bit, since the update of each element does not depend on the knobs; the loss within
 * 1e-5, since they change its summation order), then timed as clopt bench times the step;
 * the fastest goes to the tuning database. */
static int cmd_tune(int argc, char **argv)
{
    struct run_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_run_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    if (a.out_path || a.trace_path || a.init_file || a.resume_path || a.opts.checkpoint ||
        a.knobs_given || a.csv_path) {
        print_error("clopt tune searches the knobs of a run: --tune, --out, --trace, --init FILE, "
                    "--resume, --checkpoint and --csv do not apply (use --space)");
        return EXIT_USAGE;
    }
    const unsigned reps = a.reps ? (unsigned)a.reps : 3;
    const uint64_t iters = a.iters_given ? a.opts.max_iters : 20;
    if (iters == 0) {
        print_error("--iters must be at least 1 for clopt tune");
        return EXIT_USAGE;
    }
    static struct tune_space space; /* 10 x 8 knob sets: too large for the stack's taste */
    memset(&space, 0, sizeof space);
    if (a.space && parse_space(a.space, &space))
        return EXIT_USAGE;
    if (a.json_path && (rc = check_output_path("--json", a.json_path)) != 0)
        return rc;
    struct clopt_context *ctx = NULL;
    struct clopt_solver *solver = NULL;
    struct tune_result *results = NULL;
    void *reference = NULL, *theta = NULL;
    const int user_objective = ends_with(a.opts.objective, ".cl") || a.kernel_dir;
    if ((rc = open_context(a.device, a.kernel_dir, a.program_cache, &ctx)) != 0)
        return rc;
    const int cpu = clopt_context_device(ctx)->kind == CLOPT_DEVICE_CPU;
    const size_t cpu_wg[] = {4, 16, 64}, cpu_epw[] = {1024, 4096, 16384}, cpu_vw[] = {8, 16};
    const size_t gpu_wg[] = {64, 128, 256, 512}, gpu_epw[] = {4, 16, 64}, gpu_vw[] = {1, 2, 4};
    /* Knobs left out of --space: wg, epw and vw from a pruned list for the device type,
     * the others at their defaults. */
    if (!space.count[0])
        for (; space.count[0] < (cpu ? 3u : 4u); ++space.count[0])
            space.values[0][space.count[0]].work_group =
                cpu ? cpu_wg[space.count[0]] : gpu_wg[space.count[0]];
    if (!space.count[1])
        for (; space.count[1] < 3; ++space.count[1])
            space.values[1][space.count[1]].elems_per_item =
                cpu ? cpu_epw[space.count[1]] : gpu_epw[space.count[1]];
    if (!space.count[2])
        for (; space.count[2] < (cpu ? 2u : 3u); ++space.count[2])
            space.values[2][space.count[2]].vector_width =
                cpu ? cpu_vw[space.count[2]] : gpu_vw[space.count[2]];
    size_t total = 1;
    for (size_t d = 0; d < SPACE_KNOBS; ++d)
        if (space.count[d])
            total *= space.count[d];
    if (total > SPACE_MAX_CANDIDATES) {
        print_error("--space: %zu combinations; at most %d (give fewer values)", total,
                    SPACE_MAX_CANDIDATES);
        rc = EXIT_USAGE;
        goto cleanup;
    }
    results = calloc(total, sizeof *results);
    if (!results) {
        print_error("out of host memory");
        rc = EXIT_FAILURE;
        goto cleanup;
    }
    /* Every combination (an odometer over the knobs' value lists); a vector wider than
     * the elements per work-item cannot be built and is left out. */
    size_t count = 0, digit[SPACE_KNOBS] = {0};
    for (size_t c = 0; c < total; ++c) {
        struct clopt_knobs k;
        memset(&k, 0, sizeof k);
        for (size_t d = 0; d < SPACE_KNOBS; ++d)
            if (space.count[d])
                merge_knobs(&k, &space.values[d][digit[d]]);
        if (!(k.vector_width && k.elems_per_item && k.vector_width > k.elems_per_item))
            results[count++].knobs = k;
        for (size_t d = 0; d < SPACE_KNOBS; ++d) {
            if (!space.count[d])
                continue;
            if (++digit[d] < space.count[d])
                break;
            digit[d] = 0;
        }
    }
    /* With a budget, a random order (by --seed): the time may end before the list. */
    if (a.budget > 0) {
        uint64_t state = a.opts.seed * 0x9E3779B97F4A7C15ull + 1;
        for (size_t i = count; i > 1; --i) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const size_t j = (size_t)((state >> 33) % i);
            const struct tune_result t = results[i - 1];
            results[i - 1] = results[j];
            results[j] = t;
        }
    }

    /* The reference: the built-in knobs, from the same theta_0. */
    a.opts.max_iters = iters;
    struct clopt_result r;
    double ref_loss = 0, default_gbs = 0, median = 0;
    int status = clopt_solver_create(&solver, ctx, &a.opts);
    if (status == CLOPT_OK)
        status = time_runs(solver, 1, &median, &r);
    if (status == CLOPT_OK && !(reference = read_theta_bits(solver, &a.opts)))
        status = CLOPT_ERR_OUT_OF_MEMORY;
    ref_loss = r.loss;
    if (status == CLOPT_OK)
        status = time_runs(solver, reps, &median, &r);
    if (status != CLOPT_OK) {
        print_error("the default knobs do not run: %s", clopt_errmsg(ctx));
        rc = exit_code_for(status, user_objective);
        goto cleanup;
    }
    default_gbs = median > 0 ? r.bytes_per_iter * (double)iters / median / 1e9 : 0;
    const struct clopt_knobs default_knobs = r.knobs;
    char text[160];
    tuning_knobs_text(&r.knobs, text, sizeof text);
    if (!a.quiet)
        fprintf(stderr, "clopt: tune %s, %s, %s, n = %zu: default %s: %.2f GB/s\n",
                a.opts.objective, a.opts.optimizer, precision_name(a.opts.precision), a.opts.dim,
                text, default_gbs);
    clopt_solver_destroy(solver);
    solver = NULL;

    const double start = now_seconds_cli();
    size_t tried = 0;
    const size_t item = a.opts.precision == CLOPT_DOUBLE ? sizeof(double) : sizeof(float);
    for (size_t c = 0; c < count; ++c) {
        if (a.budget > 0 && now_seconds_cli() - start > a.budget)
            break;
        ++tried;
        struct tune_result *t = &results[c];
        a.opts.knobs = t->knobs;
        /* A fused candidate must run at least one block to be checked and timed. */
        const int too_few = t->knobs.fuse > iters;
        status = too_few ? CLOPT_ERR_INVALID_ARG : clopt_solver_create(&solver, ctx, &a.opts);
        if (status == CLOPT_OK)
            status = time_runs(solver, 1, &median, &r);
        t->refused = too_few || status == CLOPT_ERR_INVALID_ARG;
        if (too_few) {
            snprintf(t->note, sizeof t->note, "not run: fuse=%zu needs --iters >= %zu",
                     t->knobs.fuse, t->knobs.fuse);
        } else if (status != CLOPT_OK) {
            snprintf(t->note, sizeof t->note, "not run: %s", clopt_errmsg(ctx));
        } else if (!(theta = read_theta_bits(solver, &a.opts))) {
            snprintf(t->note, sizeof t->note, "not checked: theta could not be read");
        } else {
            size_t differ = 0;
            for (size_t i = 0; i < a.opts.dim; ++i)
                differ += memcmp((char *)theta + i * item, (char *)reference + i * item, item) != 0;
            const double loss_error = fabs(r.loss - ref_loss) / fmax(fabs(ref_loss), DBL_MIN);
            if (differ && a.opts.clip_norm <= 0)
                snprintf(t->note, sizeof t->note, "WRONG: %zu elements of theta differ", differ);
            else if (!(loss_error <= 1e-5))
                snprintf(t->note, sizeof t->note, "WRONG: loss off by %.2g (relative)", loss_error);
            else {
                status = time_runs(solver, reps, &median, &r);
                if (status != CLOPT_OK) {
                    snprintf(t->note, sizeof t->note, "not timed: %s", clopt_errmsg(ctx));
                } else {
                    t->ok = 1;
                    t->gbytes_per_second =
                        median > 0 ? r.bytes_per_iter * (double)iters / median / 1e9 : 0;
                    t->knobs = r.knobs;
                    snprintf(t->note, sizeof t->note, "theta %s, loss within %.1g",
                             differ ? "within clip-norm rounding" : "bit-identical", loss_error);
                }
            }
            free(theta);
            theta = NULL;
        }
        clopt_solver_destroy(solver);
        solver = NULL;
        char shown[160];
        tuning_knobs_text(&t->knobs, shown, sizeof shown);
        if (!a.quiet && t->ok)
            fprintf(stderr, "clopt: tune [%zu/%zu] %s: %.2f GB/s (%.2fx the default), %s\n", c + 1,
                    count, shown, t->gbytes_per_second,
                    default_gbs > 0 ? t->gbytes_per_second / default_gbs : 0, t->note);
        else if (!a.quiet)
            fprintf(stderr, "clopt: tune [%zu/%zu] %s: %s\n", c + 1, count, shown, t->note);
    }
    /* The table, fastest first. */
    size_t best = count;
    for (size_t c = 0; c < tried; ++c)
        if (results[c].ok &&
            (best == count || results[c].gbytes_per_second > results[best].gbytes_per_second))
            best = c;
    if (!(a.json_path && !strcmp(a.json_path, "-"))) {
        printf("%-108s %9s %7s  %s\n", "knobs", "GB/s", "vs def", "check");
        for (size_t c = 0; c < tried; ++c) {
            tuning_knobs_text(&results[c].knobs, text, sizeof text);
            if (results[c].ok)
                printf("%-108s %9.2f %7.2f  %s\n", text, results[c].gbytes_per_second,
                       default_gbs > 0 ? results[c].gbytes_per_second / default_gbs : 0,
                       results[c].note);
            else
                printf("%-108s %9s %7s  %s\n", text, "-", "-", results[c].note);
        }
    }
    size_t refused = 0;
    for (size_t c = 0; c < tried; ++c)
        refused += results[c].refused;
    if (best == count && tried > 0 && refused == tried) {
        /* Knobs this problem cannot take (fuse with a stencil, ...): bad input. */
        print_error("no candidate of --space can run this problem (%s)", results[0].note);
        rc = EXIT_USAGE;
        goto cleanup;
    }
    if (best == count) {
        print_error("no candidate ran correctly (%zu tried); the defaults stay", tried);
        rc = EXIT_FAILURE;
        goto cleanup;
    }
    /* The built-in knobs, timed in this run, compete too: a narrow --space may hold nothing
     * faster, and then the database records that the defaults are best. */
    const int defaults_win = default_gbs > results[best].gbytes_per_second;
    if (defaults_win) {
        results[best].knobs = default_knobs;
        results[best].gbytes_per_second = default_gbs;
    }
    tuning_knobs_text(&results[best].knobs, text, sizeof text);
    char buffer[512], why[640];
    const char *path = tuning_db_path(&a, buffer, sizeof buffer);
    const struct tuning_key key = tuning_key_for(&a, ctx);
    const int stored =
        path ? tuning_store(path, &key, &results[best].knobs, results[best].gbytes_per_second,
                            default_gbs, why, sizeof why)
             : -1;
    if (!path)
        snprintf(why, sizeof why, "neither XDG_CACHE_HOME nor HOME is set: use --tuning-db FILE");
    if (stored == 1)
        fprintf(stderr, "clopt: warning: %s; it was replaced\n", why);
    if (a.json_path) {
        cJSON *root = cJSON_CreateObject();
        int ok =
            root && cJSON_AddStringToObject(root, "knobs", text) &&
            cJSON_AddNumberToObject(root, "gbytes_per_second", results[best].gbytes_per_second) &&
            cJSON_AddNumberToObject(root, "default_gbytes_per_second", default_gbs) &&
            cJSON_AddNumberToObject(root, "tried", (double)tried) &&
            cJSON_AddStringToObject(root, "tuning_db", stored >= 0 ? path : "");
        if (emit_json(a.json_path, root, ok))
            rc = EXIT_FAILURE;
    }
    char ratio_text[64];
    snprintf(ratio_text, sizeof ratio_text, "%.2fx the default knobs",
             default_gbs > 0 ? results[best].gbytes_per_second / default_gbs : 0);
    if (!(a.json_path && !strcmp(a.json_path, "-")))
        printf("best        %s: %.2f GB/s, %s%s%s\n", text, results[best].gbytes_per_second,
               defaults_win ? "the built-in defaults (no candidate was faster)" : ratio_text,
               stored >= 0 ? "; stored in " : "", stored >= 0 ? path : "");
    if (stored < 0) {
        print_error("%s", why);
        rc = EXIT_FAILURE;
    }
cleanup:
    free(results);
    free(reference);
    free(theta);
    clopt_solver_destroy(solver);
    close_context(ctx, a.program_cache);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "--version")) {
        puts("clopt 0.1.0");
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "devices")) {
        if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            fputs(usage_text, stdout);
            return EXIT_SUCCESS;
        }
        if (argc > 2) {
            print_error("'devices' takes no arguments");
            return EXIT_USAGE;
        }
        return cmd_devices();
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "tune"))
        return cmd_tune(argc - 1, argv + 1);
    if (!strcmp(cmd, "objectives")) {
        if (argc > 2) {
            print_error("'objectives' takes no arguments");
            return EXIT_USAGE;
        }
        for (const char *const *name = clopt_objective_names(); *name; ++name) {
            const char *formula, *minimum;
            char params[512];
            if (clopt_objective_describe(*name, &formula, &minimum, params, sizeof params))
                continue;
            printf("%s\n  L(theta) = %s\n  minimum:   %s\n  params:    %s\n", *name, formula,
                   minimum, *params ? params : "none");
        }
        return EXIT_SUCCESS;
    }
    print_error("unknown command '%s': use devices, objectives, run, check, bench, tune or help",
                cmd);
    return EXIT_USAGE;
}

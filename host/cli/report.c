/* See report.h. */
#include "report.h"
#include "args.h"
#include "ranks.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void print_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("clopt: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The library names its inputs by their fields; the CLI by the flags that set them. The
 * knobs (knobs.FIELD -> --tune NAME) come from the library's knob table. Longer names
 * first where one begins another. */
static const struct {
    const char *library, *flag;
} flag_names[] = {
    {"options.precision = CLOPT_FLOAT", "--precision float"},
    {"options.precision = CLOPT_DOUBLE", "--precision double"},
    {"options.objective", "--objective"},
    {"options.params", "--param"},
    {"options.dim", "--dim"},
    {"options.precision", "--precision"},
    {"options.optimizer", "--optimizer"},
    {"options.lr", "--lr"},
    {"options.momentum", "--momentum"},
    {"options.dampening", "--dampening"},
    {"options.beta1", "--beta1"},
    {"options.beta2", "--beta2"},
    {"options.eps", "--eps"},
    {"options.weight_decay", "--weight-decay"},
    {"options.alpha", "--alpha"},
    {"options.amsgrad", "--amsgrad"},
    {"options.maximize", "--maximize"},
    {"options.clip_value", "--clip-value"},
    {"options.clip_norm", "--clip-norm"},
    {"options.schedule", "--schedule"},
    {"options.max_iters", "--iters"},
    {"options.gtol", "--gtol"},
    {"options.ftol", "--ftol"},
    {"options.target", "--target"},
    {"options.loss_every", "--loss-every"},
    {"options.max_shard_bytes", "--max-shard-bytes"},
    {"options.init_value", "--init"},
    {"options.init", "--init"},
    {"options.seed", "--seed"},
    {"options.checkpoint_every", "--checkpoint-every"},
    {"options.checkpoint", "--checkpoint"},
    {"check_options.dim", "--dim"},
    {"check_options.samples", "--samples"},
    {"check_options.params", "--param"},
    {"context_options.devices", "--devices"},
    {"context_options.device", "--device"},
    {"context_options.kernel_dir", "--kernel-dir"},
    {"context_options.program_cache", "--program-cache"},
    {"tune_options.space", "--space"},
    {"tune_options.budget_seconds", "--budget"},
    {"tune_options.reps", "--reps"},
};

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The flag for the library name at s (whole names only), and its length in *len. */
static const char *flag_at(const char *s, size_t *len, char *buffer, size_t size)
{
    for (size_t i = 0; i < sizeof flag_names / sizeof *flag_names; ++i) {
        const size_t n = strlen(flag_names[i].library);
        if (!strncmp(s, flag_names[i].library, n) && !is_name_char(s[n])) {
            *len = n;
            return flag_names[i].flag;
        }
    }
    if (strncmp(s, "knobs.", 6) != 0)
        return NULL;
    const char *field;
    for (size_t k = 0; clopt_knob_name(k, &field); ++k) {
        const size_t n = strlen(field);
        if (!strncmp(s + 6, field, n) && !is_name_char(s[6 + n])) {
            *len = 6 + n;
            snprintf(buffer, size, "--tune %s", clopt_knob_name(k, NULL));
            return buffer;
        }
    }
    return NULL;
}

char *cli_flag_names(const char *message)
{
    /* A flag is at most one character longer than the shortest name it replaces (10). */
    const size_t size = strlen(message) * 2 + 64;
    char *out = malloc(size);
    if (!out)
        return NULL;
    size_t used = 0;
    for (const char *s = message; *s && used + 32 < size;) {
        size_t len = 0;
        char buffer[32];
        const int starts = s == message || !(is_name_char(s[-1]) || s[-1] == '.');
        const char *flag = starts ? flag_at(s, &len, buffer, sizeof buffer) : NULL;
        if (flag) {
            used += (size_t)snprintf(out + used, size - used, "%s", flag);
            s += len;
        } else {
            out[used++] = *s++;
        }
    }
    out[used] = '\0';
    return out;
}

void print_library_error(const char *prefix, const char *message)
{
    char *text = cli_flag_names(message ? message : "");
    print_error("%s%s", prefix ? prefix : "", text ? text : message);
    free(text);
}

int exit_code_for(int status, int user_objective)
{
    switch (status) {
    case CLOPT_ERR_INVALID_ARG:
    case CLOPT_ERR_BAD_FILE:
    case CLOPT_ERR_UNSUPPORTED:
        return EXIT_USAGE;
    case CLOPT_ERR_BUILD:
        /* The user's own kernel not compiling is bad input. (A kernel file that cannot be
         * opened is CLOPT_ERR_BAD_FILE already; an I/O error is an I/O error whatever the
         * objective, so it is not made bad input here.) */
        return user_objective ? EXIT_USAGE : EXIT_FAILURE;
    case CLOPT_ERR_DIVERGED:
        return EXIT_DIVERGED;
    default:
        return status >= 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    }
}

FILE *open_report(const char *flag, const char *path)
{
    if (!strcmp(path, "-"))
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        print_error("cannot write %s file '%s': %s", flag, path, strerror(errno));
    return f;
}

int close_report(const char *flag, const char *path, FILE *f)
{
    if (f == stdout)
        return fflush(f) == 0 ? 0 : EXIT_FAILURE;
    if (fclose(f) != 0) {
        print_error("writing %s file '%s' failed", flag, path);
        return EXIT_FAILURE;
    }
    return 0;
}

int emit_json(const char *path, cJSON *root, int ok)
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

const char *stop_name(int status)
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
    case CLOPT_STOP_LINE_SEARCH:
        return "line_search";
    case CLOPT_STOP_MAX_EVALS:
        return "max_evals";
    case CLOPT_ERR_DIVERGED:
        return "diverged";
    default:
        return "error";
    }
}

const char *precision_name(enum clopt_precision p)
{
    return p == CLOPT_DOUBLE ? "double" : "float";
}

void knobs_text(const struct clopt_knobs *k, char *text, size_t size)
{
    clopt_knobs_format(k, text, size);
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

/* The --init spec as given, or the default's ("normal:1"). */
static void init_text(const struct run_args *a, char *text, size_t size)
{
    const struct clopt_options *o = &a->opts;
    if (a->init_spec)
        snprintf(text, size, "%s", a->init_spec);
    else
        snprintf(text, size, "%s:%g",
                 o->init == CLOPT_INIT_UNIFORM ? "uniform"
                 : o->init == CLOPT_INIT_CONST ? "const"
                                               : "normal",
                 o->init_value);
}

/* "hyper_parameters": every one the optimizer reads, with the value in use. */
static int add_hyper_json(cJSON *root, const struct clopt_solver *solver)
{
    cJSON *h = cJSON_AddObjectToObject(root, "hyper_parameters");
    const char *name;
    double value;
    int is_flag;
    for (size_t k = 0; h && clopt_solver_hyper(solver, k, &name, &value, &is_flag) == CLOPT_OK;
         ++k) {
        const char *word = hyper_word(name, value);
        if (!(word      ? cJSON_AddStringToObject(h, name, word)
              : is_flag ? cJSON_AddBoolToObject(h, name, value != 0)
                        : cJSON_AddNumberToObject(h, name, value)))
            return 0;
    }
    return h != NULL;
}

/* The fields added after the first release's, in this order after them. */
static int add_run_details_json(cJSON *root, const struct run_args *a,
                                const struct clopt_device_info *dev,
                                const struct clopt_solver *solver, const struct run_stats *stats,
                                const struct clopt_result *r)
{
    const struct clopt_options *o = &a->opts;
    char init[512];
    init_text(a, init, sizeof init);
    return (isnan(stats->initial_loss)
                ? cJSON_AddNullToObject(root, "initial_loss")
                : cJSON_AddNumberToObject(root, "initial_loss", stats->initial_loss)) &&
           cJSON_AddNumberToObject(root, "iterations_per_second", stats->iterations_per_second) &&
           cJSON_AddStringToObject(root, "clopt_version", clopt_version()) &&
           cJSON_AddStringToObject(root, "driver_version", dev->driver_version) &&
           cJSON_AddNumberToObject(root, "seed", (double)o->seed) &&
           cJSON_AddStringToObject(root, "init", init) &&
           cJSON_AddStringToObject(root, "schedule", o->schedule ? o->schedule : "constant") &&
           add_hyper_json(root, solver) &&
           cJSON_AddNumberToObject(root, "evaluations", (double)r->evaluations);
}

static double comm_seconds(const struct clopt_solver *solver)
{
    double seconds = 0;
    return clopt_solver_communication_seconds(solver, &seconds) == CLOPT_OK ? seconds : 0;
}

int write_run_json(const char *path, const struct run_args *a, const struct clopt_context *ctx,
                   const struct clopt_solver *solver, const struct clopt_result *r,
                   const struct run_stats *stats, int status)
{
    const struct clopt_device_info *dev = clopt_context_device(ctx);
    cJSON *root = cJSON_CreateObject();
    const struct clopt_options *o = &a->opts;
    int ok = root && cJSON_AddStringToObject(root, "objective", o->objective) &&
             cJSON_AddStringToObject(root, "optimizer", o->optimizer) &&
             cJSON_AddNumberToObject(root, "lr", r->lr) &&
             cJSON_AddNumberToObject(root, "n", (double)o->dim) &&
             cJSON_AddStringToObject(root, "precision", precision_name(o->precision)) &&
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
             cJSON_AddNumberToObject(root, "shards", (double)r->shards) &&
             cJSON_AddNumberToObject(root, "devices", (double)clopt_context_device_count(ctx)) &&
             cJSON_AddNumberToObject(root, "ranks", (double)cli_rank_count()) &&
             /* Several ranks: rank 0's time in the loop's messages and waiting for the others
              * (the library's clock: per-iteration collectives only). */
             (cli_rank_count() == 1 ||
              cJSON_AddNumberToObject(root, "communication_seconds", comm_seconds(solver)));
    char knobs[160];
    knobs_text(&r->knobs, knobs, sizeof knobs);
    ok = ok && cJSON_AddStringToObject(root, "knobs", knobs) &&
         cJSON_AddStringToObject(root, "knobs_source", a->knob_source) &&
         add_cache_json(root, a, ctx);
    if (ok && status == CLOPT_ERR_DIVERGED)
        ok = cJSON_AddNumberToObject(root, "diverged_at", (double)r->diverged_at) != NULL;
    ok = ok && add_run_details_json(root, a, dev, solver, stats, r);
    return emit_json(path, root, ok);
}

void print_run_summary(FILE *f, const struct run_args *a, const struct clopt_device_info *dev,
                       const struct clopt_result *r, const struct run_stats *stats, int status)
{
    const struct clopt_options *o = &a->opts;
    fprintf(f, "objective   %s\n", o->objective);
    if (isnan(r->lr)) /* lbfgs, cg: step lengths come from the line search */
        fprintf(f, "optimizer   %s (line search)\n", o->optimizer);
    else
        fprintf(f, "optimizer   %s (lr %g%s)\n", o->optimizer, r->lr,
                o->schedule ? ", scheduled" : "");
    fprintf(f, "n           %zu (%s, %zu shard%s)\n", o->dim, precision_name(o->precision),
            r->shards, r->shards == 1 ? "" : "s");
    fprintf(f, "device      %s (%s)\n", dev->name, dev->platform);
    fprintf(f, "iterations  %llu (%.0f per second)\n", (unsigned long long)r->iterations,
            stats->iterations_per_second);
    if (r->evaluations != r->iterations)
        fprintf(f, "evaluations %llu (function and gradient)\n",
                (unsigned long long)r->evaluations);
    if (!isnan(stats->initial_loss))
        fprintf(f, "initial     %.9e\n", stats->initial_loss);
    fprintf(f, "loss        %.9e\n", r->loss);
    fprintf(f, "grad norm   %.9e\n", r->grad_norm);
    fprintf(f, "stop        %s%s\n", stop_name(status),
            status == CLOPT_ERR_DIVERGED ? " (theta is the last finite iterate)" : "");
    fprintf(f, "seconds     %.3f\n", r->seconds);
    fprintf(f, "bandwidth   %.2f GB/s (%.0f bytes per element and iteration)\n",
            r->gbytes_per_second, r->bytes_per_element);
    char knobs[160];
    knobs_text(&r->knobs, knobs, sizeof knobs);
    fprintf(f, "knobs       %s (%s)\n", knobs, a->knob_source);
}

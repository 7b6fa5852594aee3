/* clopt bench: the device's STREAM-style bandwidth, then the fused step of the chosen
 * problem (clopt_bench_step), and the ratio of the two, measured in the same process. */
#include "args.h"
#include "commands.h"
#include "report.h"
#include "setup.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BENCH_REPS 5
#define BENCH_ITERS 20

/* What one bench measured. */
struct bench {
    const struct run_args *a;
    const struct clopt_device_info *dev;
    struct clopt_bandwidth bw;
    struct clopt_step_timing step;
    unsigned reps;
    double ratio, best_stream;
    double working_set;   /* bytes one step moves: n * bytes per element */
    uint64_t cache_bytes; /* the device's last-level cache, 0 when unknown */
    int ratio_meaningful; /* the working set is over twice the cache */
    char knobs[160];
};

#define CACHE_NOTE "(working set fits in cache: not a memory-bandwidth figure)"

static int check_bench_args(const struct run_args *a)
{
    if (a->out_path || a->trace_path || a->init_file || a->resume_path || a->opts.checkpoint) {
        print_error("clopt bench times the step alone: --out, --trace, --init FILE, --resume "
                    "and --checkpoint are options of clopt run");
        return EXIT_USAGE;
    }
    if (a->space || a->budget > 0) {
        print_error("%s is an option of clopt tune (clopt bench times one set of knobs: --tune)",
                    a->space ? "--space" : "--budget");
        return EXIT_USAGE;
    }
    if (a->iters_given && a->opts.max_iters == 0) {
        print_error("--iters must be at least 1 for clopt bench");
        return EXIT_USAGE;
    }
    int rc;
    if ((a->json_path && (rc = check_output_path("--json", a->json_path)) != 0) ||
        (a->csv_path && (rc = check_output_path("--csv", a->csv_path)) != 0))
        return rc;
    return 0;
}

static int write_bench_json(const struct bench *b)
{
    const struct run_args *a = b->a;
    cJSON *root = cJSON_CreateObject();
    int ok =
        root && cJSON_AddStringToObject(root, "device", b->dev->name) &&
        cJSON_AddStringToObject(root, "platform", b->dev->platform) &&
        cJSON_AddStringToObject(root, "objective", a->opts.objective) &&
        cJSON_AddStringToObject(root, "optimizer", a->opts.optimizer) &&
        cJSON_AddStringToObject(root, "precision", precision_name(a->opts.precision)) &&
        cJSON_AddNumberToObject(root, "n", (double)a->opts.dim) &&
        cJSON_AddNumberToObject(root, "iterations_per_rep", (double)b->step.iterations) &&
        cJSON_AddNumberToObject(root, "reps", b->reps) &&
        cJSON_AddNumberToObject(root, "stream_n", (double)b->bw.n) &&
        cJSON_AddNumberToObject(root, "copy_gbytes_per_second", b->bw.copy_gbytes_per_second) &&
        cJSON_AddNumberToObject(root, "scale_gbytes_per_second", b->bw.scale_gbytes_per_second) &&
        cJSON_AddNumberToObject(root, "step_seconds", b->step.seconds) &&
        cJSON_AddNumberToObject(root, "bytes_per_element", b->step.bytes_per_element) &&
        cJSON_AddNumberToObject(root, "step_gbytes_per_second", b->step.gbytes_per_second) &&
        cJSON_AddNumberToObject(root, "element_iterations_per_second",
                                b->step.element_iterations_per_second) &&
        cJSON_AddNumberToObject(root, "ratio_to_scale", b->ratio) &&
        cJSON_AddStringToObject(root, "knobs", b->knobs) &&
        cJSON_AddStringToObject(root, "knobs_source", a->knob_source) &&
        cJSON_AddBoolToObject(root, "ratio_meaningful", b->ratio_meaningful) &&
        cJSON_AddNumberToObject(root, "working_set_bytes", b->working_set) &&
        cJSON_AddNumberToObject(root, "cache_bytes", (double)b->cache_bytes);
    return emit_json(a->json_path, root, ok);
}

/* One CSV field as RFC 4180 has it: quoted when it holds a comma, a quote or a line
 * break, with each quote doubled (an objective file may be named a,"b".cl). */
static void csv_field(FILE *f, const char *text)
{
    if (!strpbrk(text, ",\"\r\n")) {
        fputs(text, f);
        return;
    }
    fputc('"', f);
    for (const char *c = text; *c; ++c) {
        if (*c == '"')
            fputc('"', f);
        fputc(*c, f);
    }
    fputc('"', f);
}

static int write_bench_csv(const struct bench *b)
{
    const struct run_args *a = b->a;
    FILE *f = open_report("--csv", a->csv_path);
    if (!f)
        return EXIT_FAILURE;
    fprintf(f, "objective,optimizer,precision,n,copy_gbps,scale_gbps,step_gbps,"
               "element_iterations_per_second,ratio_to_scale,knobs,ratio_meaningful\n");
    csv_field(f, a->opts.objective);
    fputc(',', f);
    csv_field(f, a->opts.optimizer);
    fprintf(f, ",%s,%zu,%.6g,%.6g,%.6g,%.6g,%.6g,", precision_name(a->opts.precision), a->opts.dim,
            b->bw.copy_gbytes_per_second, b->bw.scale_gbytes_per_second, b->step.gbytes_per_second,
            b->step.element_iterations_per_second, b->ratio);
    csv_field(f, b->knobs); /* the knobs hold commas: quoted */
    fprintf(f, ",%s\n", b->ratio_meaningful ? "true" : "false");
    return close_report("--csv", a->csv_path, f) ? EXIT_FAILURE : 0;
}

static void print_bench(const struct bench *b)
{
    const struct run_args *a = b->a;
    printf("device      %s (%s)\n", b->dev->name, b->dev->platform);
    printf("stream      copy %.2f GB/s, in-place scale %.2f GB/s (n = %zu, median of %u, "
           "profiling events)\n",
           b->bw.copy_gbytes_per_second, b->bw.scale_gbytes_per_second, b->bw.n, b->reps);
    printf("step        %s, %s, %s, n = %zu: %.2f GB/s (%.0f bytes per element), %.3g "
           "element-iterations/s (median of %u runs of %llu iterations, wall clock)\n",
           a->opts.objective, a->opts.optimizer, precision_name(a->opts.precision), a->opts.dim,
           b->step.gbytes_per_second, b->step.bytes_per_element,
           b->step.element_iterations_per_second, b->reps, (unsigned long long)b->step.iterations);
    printf("ratio       %.3f of the in-place scale bandwidth (%.3f of the best stream)%s\n",
           b->ratio, b->best_stream > 0 ? b->step.gbytes_per_second / b->best_stream : 0,
           b->ratio_meaningful ? "" : " " CACHE_NOTE);
    printf("knobs       %s (%s)\n", b->knobs, a->knob_source);
}

/* Measures into b; 0 or the exit status after saying why. */
static int measure(struct run_args *a, struct clopt_context *ctx, struct bench *b)
{
    const int user_objective = ends_with(a->opts.objective, ".cl") || a->kernel_dir;
    const struct muted muted = mute_driver_output(a->quiet);
    int status = clopt_measure_bandwidth(ctx, a->opts.dim, a->opts.precision, b->reps, &b->bw);
    if (status == CLOPT_OK) {
        a->opts.max_iters = a->iters_given ? a->opts.max_iters : BENCH_ITERS;
        status = clopt_bench_step(ctx, &a->opts, b->reps, &b->step);
    }
    restore_driver_output(muted);
    if (status != CLOPT_OK) {
        print_library_error(NULL, clopt_errmsg(ctx));
        return exit_code_for(status, user_objective);
    }
    b->dev = clopt_context_device(ctx);
    b->best_stream = fmax(b->bw.copy_gbytes_per_second, b->bw.scale_gbytes_per_second);
    b->ratio = b->bw.scale_gbytes_per_second > 0
                   ? b->step.gbytes_per_second / b->bw.scale_gbytes_per_second
                   : 0;
    knobs_text(&b->step.knobs, b->knobs, sizeof b->knobs);
    b->working_set = b->step.bytes_per_element * (double)a->opts.dim;
    b->cache_bytes = clopt_context_cache_bytes(ctx);
    b->ratio_meaningful = !(b->cache_bytes && b->working_set <= 2.0 * (double)b->cache_bytes);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    static struct run_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_run_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    if ((rc = check_bench_args(&a)) != 0)
        return rc;
    struct clopt_context *ctx = NULL;
    struct bench b;
    memset(&b, 0, sizeof b);
    b.a = &a;
    b.reps = a.reps ? (unsigned)a.reps : BENCH_REPS;
    if ((rc = open_context(a.device, a.devices, a.kernel_dir, a.program_cache, &ctx)) != 0)
        return rc;
    knobs_from_database(&a, ctx);
    if ((rc = measure(&a, ctx, &b)) == 0) {
        if (a.json_path && write_bench_json(&b))
            rc = EXIT_FAILURE;
        if (a.csv_path && write_bench_csv(&b))
            rc = EXIT_FAILURE;
        const int to_stdout =
            (a.json_path && !strcmp(a.json_path, "-")) || (a.csv_path && !strcmp(a.csv_path, "-"));
        if (!a.quiet && !to_stdout)
            print_bench(&b);
    }
    close_context(ctx, a.program_cache);
    return rc;
}

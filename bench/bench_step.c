/* Fused step bandwidth of each optimizer against a STREAM-style in-place scale, all
 * measured in this run.
 *
 * An optimizer step reads and writes theta in place, so the reference is the best
 * bandwidth of a C + OpenMP loop `a[i] = s * a[i]` (8 bytes per float element, all cores)
 * over an array as large as theta, compiled both plainly and with -march=native. Rounds
 * alternate the references and clopt so that all see the same machine; the report gives
 * the best reference, clopt's median and best, and their ratio.
 *
 * With --fuse K, the same rounds are then run with K iterations fused per launch, and the
 * report adds element-iterations per second of both and their ratio. For gd, each fused
 * round also times the same fused GD (loss every iteration, K iterations per block) as a
 * C + OpenMP loop, plain and -march=native: the compute ceiling a fused kernel can reach on
 * this machine, against which the fused ratio is to be read.
 *
 * With --objectives LIST|all, it instead runs GD on each objective (all: every built-in
 * that needs no data file) side by side with the same in-place scale, in interleaved
 * rounds, and prints each one's ratio to the best scale: the speed of objectives that are
 * not plain sphere (separable ones with exp2 or cos, 1-D stencils) against the same limit.
 * With --shape S0,S1[,S2] the grid objectives join them (poisson, tv_denoise; in `all`
 * too): their data vector (poisson's source, tv_denoise's image) is generated here and
 * handed over as a temporary .npy file, and the other objectives run on the same n.
 *
 * usage: clopt_bench_step [--dim N] [--iters I] [--rounds R] [--device D] [--loss-every K]
 *                         [--precision float|double] [--optimizers gd,adam,...|all]
 *                         [--fuse K] [--objectives sphere,ellipsoid,...|all]
 *                         [--shape S0,S1[,S2]] [--kernel-dir DIR]
 * --kernel-dir loads the .cl files from DIR (e.g. another tree's kernels/, for A/B rounds). */
#include "clopt.h"
#include "numparse.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ROUNDS 64

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

double stream_scale_portable(void *data, size_t n, int is_double);
double stream_scale_native(void *data, size_t n, int is_double);
double fused_gd_portable(void *data, size_t n, int is_double, unsigned fuse);
double fused_gd_native(void *data, size_t n, int is_double, unsigned fuse);
double fma_peak_native(void);

#define MAX_OBJECTIVES 16
#define MAX_GRID_AXES 3

/* The grid of --shape (n_axes 0: none). */
struct bench_grid {
    size_t n_axes;
    size_t shape[MAX_GRID_AXES];
};

/* The data parameter of a built-in grid objective, or NULL for the others. */
static const char *grid_data_key(const char *objective)
{
    if (!strcmp(objective, "poisson"))
        return "source";
    if (!strcmp(objective, "tv_denoise"))
        return "image";
    return NULL;
}

/* A smooth field in [-1, 1] over the grid (flat index i, C order) with, for an image, a
 * deterministic noise of amplitude 0.2 on top: what the two objectives are meant for. */
static double grid_value(const struct bench_grid *g, size_t i, int noisy)
{
    double v = 1;
    for (size_t k = g->n_axes; k-- > 0;) {
        const size_t c = i % g->shape[k];
        i /= g->shape[k];
        v *= sin(3.14159265358979 * (double)(c + 1) / (double)(g->shape[k] + 1));
    }
    if (noisy) {
        uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15u;
        h ^= h >> 29;
        v += 0.2 * ((double)(h >> 11) / 9007199254740992.0 - 0.5);
    }
    return v;
}

/* Writes objective's generated data vector (n elements over the grid) to a new temporary
 * .npy file whose name goes to path (PATH_MAX bytes). 0 or -1 with the reason on stderr. */
static int write_grid_data(const char *objective, const struct bench_grid *g, size_t n,
                           int is_double, char *path, size_t path_size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, path_size, "%s/clopt_bench_%s_XXXXXX", tmp && *tmp ? tmp : "/tmp", objective);
    const int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        fprintf(stderr,
                "clopt_bench_step: cannot create a temporary file %s for %s's data (set "
                "TMPDIR to a writable directory)\n",
                path, objective);
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        return -1;
    }
    char err[256];
    int ok = clopt_npy_write_header(f, is_double ? CLOPT_DOUBLE : CLOPT_FLOAT, n, err,
                                    sizeof err) == CLOPT_OK;
    const int noisy = !strcmp(objective, "tv_denoise");
    for (size_t i = 0; ok && i < n; ++i) {
        const double v = grid_value(g, i, noisy);
        const float vf = (float)v;
        ok = is_double ? fwrite(&v, sizeof v, 1, f) == 1 : fwrite(&vf, sizeof vf, 1, f) == 1;
    }
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "clopt_bench_step: cannot write %s (%s's data): disk full? set TMPDIR\n",
                path, objective);
        unlink(path);
        return -1;
    }
    return 0;
}

/* On a CPU device, says when one vector of the problem fits in the host's last-level cache:
 * then the in-place scale runs from cache, and so may much of a step's data (theta, its
 * ping-pong copy, the state): the ratios then compare cache speeds more than memory
 * bandwidth (a 2-core EPYC with 32 MB of L3 streams n = 1e7 floats from DRAM; a Xeon with
 * 260 MB of L3 holds them). */
static void warn_if_cached(const struct clopt_device_info *dev, size_t vector_bytes)
{
#ifdef _SC_LEVEL3_CACHE_SIZE
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (dev->kind == CLOPT_DEVICE_CPU && l3 > 0 && vector_bytes <= (size_t)l3)
        printf("note        one vector (%.0f MB) fits in this CPU's L3 (%.0f MB): these "
               "ratios compare cache speeds more than memory; for memory, give --dim a few "
               "times larger\n",
               (double)vector_bytes / 1e6, (double)l3 / 1e6);
#else
    (void)dev, (void)vector_bytes;
#endif
}

/* Each round: the in-place scale, then for each objective a fresh solver (one at a time, so
 * that a large problem needs the device memory of one), a warm-up run and a timed run. */
static int bench_objectives(struct clopt_context *ctx, void *stream, uint64_t dim, uint64_t iters,
                            uint64_t rounds, uint64_t loss_every, int is_double,
                            const char *objectives, const struct bench_grid *grid)
{
    const char *names[MAX_OBJECTIVES];
    char list[512];
    size_t count = 0;
    if (!strcmp(objectives, "all")) {
        for (const char *const *name = clopt_objective_names(); *name && count < MAX_OBJECTIVES;
             ++name)
            if (strcmp(*name, "shifted_sphere") && (grid->n_axes || !grid_data_key(*name)))
                names[count++] = *name;
        if (grid->n_axes)
            printf("all: every built-in objective but shifted_sphere (it needs a data file); "
                   "poisson and tv_denoise on the --shape grid with generated data\n");
        else
            printf("all: every built-in objective but those that need a data file "
                   "(shifted_sphere; poisson and tv_denoise: give --shape)\n");
    } else {
        snprintf(list, sizeof list, "%s", objectives);
        char *save = NULL;
        for (char *name = strtok_r(list, ",", &save); name && count < MAX_OBJECTIVES;
             name = strtok_r(NULL, ",", &save))
            names[count++] = name;
    }
    /* The grid objectives' data, generated once for all rounds. */
    char data_path[MAX_OBJECTIVES][512];
    int rc = -1;
    size_t written = 0;
    for (; written < count; ++written) {
        data_path[written][0] = '\0';
        if (!grid_data_key(names[written]))
            continue;
        if (!grid->n_axes) {
            fprintf(stderr,
                    "clopt_bench_step: %s is a grid objective: give its grid with --shape "
                    "S0,S1[,S2]\n",
                    names[written]);
            goto cleanup;
        }
        if (write_grid_data(names[written], grid, (size_t)dim, is_double, data_path[written],
                            sizeof data_path[written]))
            goto cleanup;
    }
    double gbs[MAX_OBJECTIVES][MAX_ROUNDS], stream_best = 0;
    double bytes[MAX_OBJECTIVES] = {0};
    printf("\nobjectives, gd, lr 1e-6, theta_0 = 0.5, %llu iterations per round (GB/s)\n%-6s %8s "
           "%8s",
           (unsigned long long)iters, "round", "plain", "native");
    for (size_t o = 0; o < count; ++o)
        printf(" %10.10s", names[o]);
    printf("\n");
    for (uint64_t r = 0; r < rounds; ++r) {
        const double plain = stream_scale_portable(stream, (size_t)dim, is_double);
        const double native = stream_scale_native(stream, (size_t)dim, is_double);
        stream_best = fmax(stream_best, fmax(plain, native));
        printf("%-6llu %8.2f %8.2f", (unsigned long long)r, plain, native);
        for (size_t o = 0; o < count; ++o) {
            struct clopt_options opts;
            clopt_options_init(&opts);
            opts.objective = names[o];
            opts.dim = (size_t)dim;
            opts.max_iters = iters;
            opts.loss_every = loss_every;
            opts.init = CLOPT_INIT_CONST;
            opts.init_value = 0.5;
            opts.lr = 1e-6; /* keeps theta near 0.5 for every objective */
            opts.precision = is_double ? CLOPT_DOUBLE : CLOPT_FLOAT;
            const char *key = grid_data_key(names[o]);
            struct clopt_param data = {key, data_path[o]};
            if (key) {
                opts.n_axes = grid->n_axes;
                for (size_t k = 0; k < grid->n_axes; ++k)
                    opts.shape[k] = grid->shape[k];
                opts.params = &data;
                opts.n_params = 1;
            }
            struct clopt_solver *solver = NULL;
            struct clopt_result run;
            int status = clopt_solver_create(&solver, ctx, &opts);
            if (status == CLOPT_OK)
                status = clopt_solver_run(solver, &run);
            if (status >= 0)
                status = clopt_solver_run(solver, &run);
            clopt_solver_destroy(solver);
            if (status < 0) {
                fprintf(stderr, "\nclopt_bench_step: %s: %s\n", names[o], clopt_errmsg(ctx));
                goto cleanup;
            }
            gbs[o][r] = run.gbytes_per_second;
            bytes[o] = run.bytes_per_element;
            printf(" %10.2f", gbs[o][r]);
            fflush(stdout);
        }
        printf("\n");
    }
    printf("\n%-16s %6s %12s %12s %8s\n", "objective", "B/elem", "median GB/s", "best GB/s",
           "ratio");
    for (size_t o = 0; o < count; ++o) {
        double best = 0;
        for (uint64_t r = 0; r < rounds; ++r)
            best = fmax(best, gbs[o][r]);
        const double mid = median(gbs[o], (int)rounds);
        printf("%-16s %6.0f %12.2f %12.2f %8.3f\n", names[o], bytes[o], mid, best,
               mid / stream_best);
    }
    printf("ratio = median GB/s / best STREAM-style in-place scale of the same rounds (%.2f "
           "GB/s)\n",
           stream_best);
    rc = 0;
cleanup:
    for (size_t o = 0; o < written; ++o)
        if (data_path[o][0])
            unlink(data_path[o]);
    return rc;
}

static int arg_count(const char *flag, const char *text, uint64_t *value)
{
    const char *why = "missing value";
    if (!text || clopt_parse_count(text, (uint64_t)1 << 40, value, &why)) {
        fprintf(stderr, "clopt_bench_step: %s '%s': %s\n", flag, text ? text : "", why);
        return -1;
    }
    return 0;
}

/* --shape S0,S1[,S2]: 1 to 3 axes, each >= 1; their product goes to dim. */
static int arg_shape(const char *text, struct bench_grid *grid, uint64_t *dim)
{
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text ? text : "");
    uint64_t n = 1;
    grid->n_axes = 0;
    for (char *axis = strtok_r(copy, ",", &save); axis; axis = strtok_r(NULL, ",", &save)) {
        uint64_t len;
        const char *why;
        if (grid->n_axes == MAX_GRID_AXES ||
            clopt_parse_count(axis, (uint64_t)1 << 40, &len, &why) || len == 0)
            goto bad;
        if (len > ((uint64_t)1 << 40) / n) /* the product must not wrap */
            goto bad;
        grid->shape[grid->n_axes++] = (size_t)len;
        n *= len;
    }
    if (grid->n_axes == 0 || n > ((uint64_t)1 << 40))
        goto bad;
    *dim = n;
    return 0;
bad:
    fprintf(stderr,
            "clopt_bench_step: --shape '%s': give 1 to %d axis lengths >= 1, e.g. "
            "10000,10000 (at most 2^40 points)\n",
            text ? text : "", MAX_GRID_AXES);
    return -1;
}

int main(int argc, char **argv)
{
    /* OpenMP threads that spin after a parallel region steal the cores PoCL's threads run
     * on; libgomp reads this only at start-up, hence the re-exec. */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    uint64_t dim = 100000000, iters = 50, rounds = 3, loss_every = 1, fuse = 1;
    const char *device = getenv("CLOPT_DEVICE"), *kernel_dir = NULL;
    int is_double = 0;
    const char *optimizers = "gd";
    const char *objectives = NULL;
    struct bench_grid grid = {0, {0, 0, 0}};
    uint64_t shape_dim = 0;
    int dim_given = 0;
    for (int i = 1; i < argc; ++i) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(argv[i], "--dim"))
            bad = arg_count("--dim", v, &dim), dim_given = 1, ++i;
        else if (!strcmp(argv[i], "--shape"))
            bad = arg_shape(v, &grid, &shape_dim), ++i;
        else if (!strcmp(argv[i], "--iters"))
            bad = arg_count("--iters", v, &iters), ++i;
        else if (!strcmp(argv[i], "--rounds"))
            bad = arg_count("--rounds", v, &rounds), ++i;
        else if (!strcmp(argv[i], "--loss-every"))
            bad = arg_count("--loss-every", v, &loss_every), ++i;
        else if (!strcmp(argv[i], "--fuse"))
            bad = arg_count("--fuse", v, &fuse), ++i;
        else if (!strcmp(argv[i], "--device") && v)
            device = v, ++i;
        else if (!strcmp(argv[i], "--kernel-dir") && v)
            kernel_dir = v, ++i;
        else if (!strcmp(argv[i], "--precision") && v)
            is_double = !strcmp(v, "double"), ++i;
        else if (!strcmp(argv[i], "--optimizers") && v)
            optimizers = v, ++i;
        else if (!strcmp(argv[i], "--objectives") && v)
            objectives = v, ++i;
        else {
            fprintf(stderr, "usage: clopt_bench_step [--dim N] [--iters I] [--rounds R] "
                            "[--device D] [--loss-every K] [--precision float|double] "
                            "[--optimizers gd,adam,...|all] [--fuse K] "
                            "[--objectives sphere,ellipsoid,...|all] [--shape S0,S1[,S2]] "
                            "[--kernel-dir DIR]\n");
            return 2;
        }
        if (bad)
            return 2;
    }
    if (grid.n_axes) {
        if (dim_given && dim != shape_dim) {
            fprintf(stderr,
                    "clopt_bench_step: --dim %llu and --shape (%llu points) disagree: "
                    "give one of them\n",
                    (unsigned long long)dim, (unsigned long long)shape_dim);
            return 2;
        }
        if (!objectives) {
            fprintf(stderr, "clopt_bench_step: --shape is for the grid objectives: give "
                            "--objectives poisson,tv_denoise (or all)\n");
            return 2;
        }
        dim = shape_dim;
    }
    if (!dim || !iters || !loss_every || !rounds || rounds > MAX_ROUNDS || !fuse || fuse > 32) {
        fprintf(stderr,
                "clopt_bench_step: dim, iters, loss-every >= 1; 1 <= rounds <= %d; "
                "1 <= fuse <= 32\n",
                MAX_ROUNDS);
        return 2;
    }

    int rc = 1;
    struct clopt_context *ctx = NULL;
    struct clopt_solver *solver = NULL;
    double fused_gbs[MAX_ROUNDS];
    const size_t elem = is_double ? sizeof(double) : sizeof(float);
    void *stream = malloc((size_t)dim * elem);
    double portable_gbs[MAX_ROUNDS], native_gbs[MAX_ROUNDS], clopt_gbs[MAX_ROUNDS];
    /* The C fused GD loop's best element-iterations/s, and clopt's fused and unfused GD
     * medians in element-iterations/s (0: not measured). */
    double c_fused_best = 0, gd_fused_rate = 0, gd_single_rate = 0;
    if (!stream) {
        fprintf(stderr, "clopt_bench_step: cannot allocate %llu elements on the host\n",
                (unsigned long long)dim);
        goto cleanup;
    }
    if (is_double) {
        double *a = stream;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)dim; ++i)
            a[i] = 1.0;
    } else {
        float *a = stream;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)dim; ++i)
            a[i] = 1.0f;
    }

    struct clopt_context_options copts;
    clopt_context_options_init(&copts);
    copts.device = device;
    copts.kernel_dir = kernel_dir;
    int status = clopt_context_create(&ctx, &copts);
    if (status != CLOPT_OK) {
        fprintf(stderr, "clopt_bench_step: %s\n", ctx ? clopt_errmsg(ctx) : "out of memory");
        goto cleanup;
    }
    const struct clopt_device_info *dev = clopt_context_device(ctx);
    printf("device      %s (%s)\n", dev->name, dev->platform);
    warn_if_cached(dev, (size_t)dim * (is_double ? 8 : 4));
    if (objectives) {
        printf("problem     n = %llu, %s, loss every %llu\n", (unsigned long long)dim,
               is_double ? "double" : "float", (unsigned long long)loss_every);
        if (grid.n_axes) {
            printf("grid        ");
            for (size_t k = 0; k < grid.n_axes; ++k)
                printf("%s%zu", k ? " x " : "", grid.shape[k]);
            printf(" (poisson, tv_denoise; the others on the same n)\n");
        }
        if (bench_objectives(ctx, stream, dim, iters, rounds, loss_every, is_double, objectives,
                             &grid) == 0)
            rc = 0;
        goto cleanup;
    }
    printf("problem     sphere, n = %llu, %s, loss every %llu, %llu iterations per round\n",
           (unsigned long long)dim, is_double ? "double" : "float", (unsigned long long)loss_every,
           (unsigned long long)iters);
    printf("reference   in-place scale a[i] = s*a[i], C + OpenMP, %d threads, best of 5, "
           "default flags and -march=native\n",
           omp_get_max_threads());
    char list[256];
    snprintf(list, sizeof list, "%s",
             strcmp(optimizers, "all") ? optimizers
                                       : "gd,momentum,nesterov,adam,adamw,rmsprop,adagrad");
    char summary[2048] = "";
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        struct clopt_options opts;
        clopt_options_init(&opts);
        opts.optimizer = name;
        opts.dim = (size_t)dim;
        opts.max_iters = iters;
        opts.loss_every = loss_every;
        opts.init = CLOPT_INIT_CONST;
        opts.lr = 1e-4; /* keeps theta well away from zero and denormals for the whole run */
        opts.precision = is_double ? CLOPT_DOUBLE : CLOPT_FLOAT;
        /* The unfused solver, then (with --fuse) the fused one: one at a time, so that a
         * large problem needs the device memory of one. Each round times the references
         * right before clopt. */
        struct clopt_result result;
        double stream_best = 0;
        const int is_gd = !strcmp(name, "gd");
        for (int variant = 0; variant < (fuse > 1 ? 2 : 1); ++variant) {
            opts.knobs.fuse = variant ? (size_t)fuse : 1;
            double *gbs = variant ? fused_gbs : clopt_gbs;
            status = clopt_solver_create(&solver, ctx, &opts);
            if (status != CLOPT_OK) {
                fprintf(stderr, "clopt_bench_step: %s: %s\n", name, clopt_errmsg(ctx));
                goto cleanup;
            }
            printf("\n%s, fuse=%zu\n%-6s %14s %14s %14s\n", name, opts.knobs.fuse, "round",
                   "plain GB/s", "native GB/s", "clopt GB/s");
            /* One warm-up run first: it settles caches and page mappings. */
            struct clopt_result run;
            status = clopt_solver_run(solver, &run);
            for (uint64_t r = 0; r < rounds && status >= 0; ++r) {
                portable_gbs[r] = stream_scale_portable(stream, (size_t)dim, is_double);
                native_gbs[r] = stream_scale_native(stream, (size_t)dim, is_double);
                stream_best = fmax(stream_best, fmax(portable_gbs[r], native_gbs[r]));
                status = clopt_solver_run(solver, &run);
                /* Fused: effective GB/s, the bytes the unfused iterations would move. */
                gbs[r] = run.gbytes_per_second;
                printf("%-6llu %14.2f %14.2f %14.2f\n", (unsigned long long)r, portable_gbs[r],
                       native_gbs[r], gbs[r]);
                /* After clopt's round: this loop is compute-bound and would warm the cores
                 * for it; the memory-bound scale of the next round minds heat less. */
                if (variant && is_gd) {
                    const double plain =
                        fused_gd_portable(stream, (size_t)dim, is_double, (unsigned)fuse);
                    const double native =
                        fused_gd_native(stream, (size_t)dim, is_double, (unsigned)fuse);
                    printf("%-6s C fused GD: plain %.3g, native %.3g element-iterations/s\n", "",
                           plain, native);
                    c_fused_best = fmax(c_fused_best, fmax(plain, native));
                }
            }
            if (status < 0) {
                fprintf(stderr, "clopt_bench_step: %s: %s\n", name, clopt_errmsg(ctx));
                goto cleanup;
            }
            if (!variant)
                result = run;
            clopt_solver_destroy(solver);
            solver = NULL;
        }
        double clopt_best = 0;
        for (uint64_t r = 0; r < rounds; ++r)
            clopt_best = fmax(clopt_best, clopt_gbs[r]);
        const double clopt_median = median(clopt_gbs, (int)rounds);
        size_t used = strlen(summary);
        snprintf(summary + used, sizeof summary - used, "%-9s %6.0f %12.2f %12.2f %14.2f %8.3f",
                 name, result.bytes_per_element, clopt_median, clopt_best, stream_best,
                 clopt_median / stream_best);
        used = strlen(summary);
        if (fuse > 1) {
            const double fused_median = median(fused_gbs, (int)rounds);
            const double per_elem = result.bytes_per_element * 1e-9;
            snprintf(summary + used, sizeof summary - used, " %13.3g %13.3g %8.2f",
                     clopt_median / per_elem, fused_median / per_elem, fused_median / clopt_median);
            if (is_gd) {
                gd_fused_rate = fused_median / per_elem;
                gd_single_rate = clopt_median / per_elem;
            }
        }
        used = strlen(summary);
        snprintf(summary + used, sizeof summary - used, "\n");
    }
    printf("\n%-9s %6s %12s %12s %14s %8s", "optimizer", "B/elem", "median GB/s", "best GB/s",
           "stream GB/s", "ratio");
    if (fuse > 1)
        printf(" %13s %13s %8s", "elem-it/s", "fused el-it/s", "fused x");
    printf("\n");
    fputs(summary, stdout);
    printf("ratio = clopt median / best STREAM-style in-place scale of the same rounds\n");
    if (fuse > 1)
        printf("fused x = element-iterations per second with fuse=%llu over fuse=1 (medians)\n",
               (unsigned long long)fuse);
    if (c_fused_best > 0 && gd_single_rate > 0) {
        /* Last, so that it heats nothing the rounds measured. */
        const double peak = fma_peak_native();
        printf("vector peak (-march=native, registers only): %.3g float multiply-adds/s, all "
               "cores; a fused GD element-iteration with its loss needs 4 to 5 vector "
               "operations per lane\n",
               peak);
        printf("C + OpenMP fused GD (loss every iteration, %llu iterations per block), best: "
               "%.3g element-iterations/s = %.2fx clopt's unfused gd",
               (unsigned long long)fuse, c_fused_best, c_fused_best / gd_single_rate);
        if (loss_every == 1)
            printf("; clopt's fused gd reaches %.2f of it\n", gd_fused_rate / c_fused_best);
        else
            printf(" (clopt's loss every %llu iterations is less work: not compared)\n",
                   (unsigned long long)loss_every);
    }
    rc = 0;
cleanup:
    clopt_solver_destroy(solver);
    clopt_context_destroy(ctx);
    free(stream);
    return rc;
}

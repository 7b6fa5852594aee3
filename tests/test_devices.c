/* Several devices in one process (--devices, context_options.devices): PoCL's two pthread
 * devices (POCL_DEVICES="pthread pthread", set before the first OpenCL call) give the same
 * theta, trace and JSON, less timings and the device and shard counts, as one of them, for
 * every optimizer (lbfgs and cg included); bad lists and external gradients (one device
 * only) are refused with one line. */
#include "abi.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static char *dir;

static void setup(void)
{
    /* Inherited by the CLI's processes; this process has made no OpenCL call yet. */
    setenv("POCL_DEVICES", "pthread pthread", 1);
    dir = temp_dir();
}

static void teardown(void)
{
    remove_tree(dir);
    free(dir);
}

TestSuite(devices, .init = setup, .fini = teardown);

/* The trace without its seconds column (the last). */
static char *trace_less_seconds(const char *path)
{
    char *text = read_text(path);
    char *out = malloc(strlen(text) + 1);
    cr_assert_not_null(out);
    size_t used = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *last = strrchr(line, ',');
        const size_t keep = last ? (size_t)(last - line) : strlen(line);
        memcpy(out + used, line, keep);
        used += keep;
        out[used++] = '\n';
    }
    out[used] = '\0';
    free(text);
    return out;
}

/* The JSON summary less what may differ: timings, the device and shard counts, and the
 * program cache (a program for two devices is not cached). *devices gets "devices". */
static char *json_less_timings(const char *path, double *devices)
{
    char *text = read_text(path);
    cJSON *root = cJSON_Parse(text);
    cr_assert_not_null(root, "%s is not JSON: %s", path, text);
    free(text);
    const cJSON *d = cJSON_GetObjectItem(root, "devices");
    cr_assert(cJSON_IsNumber(d), "the JSON summary lacks \"devices\"");
    *devices = d->valuedouble;
    const char *drop[] = {"seconds", "gbytes_per_second", "iterations_per_second", "devices",
                          "shards",  "program_cache"};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; ++i)
        cJSON_DeleteItemFromObject(root, drop[i]);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* Runs the CLI with args plus the outputs into files tagged `tag`, and `extra` (may be
 * NULL) at the end; returns the exit status. */
static int run_tagged(const char *const *args, const char *tag, const char *extra)
{
    char name[64];
    snprintf(name, sizeof name, "%s.npy", tag);
    char *out = path_in(dir, name);
    snprintf(name, sizeof name, "%s.csv", tag);
    char *trace = path_in(dir, name);
    snprintf(name, sizeof name, "%s.json", tag);
    char *json = path_in(dir, name);
    const char *argv[48];
    size_t n = 0;
    for (; args[n]; ++n)
        argv[n] = args[n];
    const char *outputs[] = {"--out", out, "--trace", trace, "--json", json, "--quiet"};
    for (size_t k = 0; k < sizeof outputs / sizeof *outputs; ++k)
        argv[n++] = outputs[k];
    if (extra) {
        argv[n++] = "--devices";
        argv[n++] = extra;
    }
    argv[n] = NULL;
    struct cli_result r = cli_run(argv);
    const int code = r.exit_code;
    cr_expect_eq(code, 0, "clopt run failed (%d): %s", code, r.err);
    cli_result_free(&r);
    free(out);
    free(trace);
    free(json);
    return code;
}

/* One device, then two: theta, the trace and the JSON (less timings) are the same. */
static void expect_same_on_two_devices(const char *const *args)
{
    cr_assert_eq(run_tagged(args, "one", NULL), 0);
    cr_assert_eq(run_tagged(args, "two", "0,1"), 0);
    char *p1 = path_in(dir, "one.npy"), *p2 = path_in(dir, "two.npy");
    size_t s1, s2;
    unsigned char *t1 = read_binary(p1, &s1), *t2 = read_binary(p2, &s2);
    cr_expect(s1 == s2 && memcmp(t1, t2, s1) == 0, "theta differs between one and two devices");
    char *c1 = path_in(dir, "one.csv"), *c2 = path_in(dir, "two.csv");
    char *r1 = trace_less_seconds(c1), *r2 = trace_less_seconds(c2);
    cr_expect_str_eq(r2, r1, "the traces differ");
    char *j1 = path_in(dir, "one.json"), *j2 = path_in(dir, "two.json");
    double d1, d2;
    char *k1 = json_less_timings(j1, &d1), *k2 = json_less_timings(j2, &d2);
    cr_expect_str_eq(k2, k1, "the JSON summaries differ");
    cr_expect_eq(d1, 1.0);
    cr_expect_eq(d2, 2.0);
    free(p1), free(p2), free(t1), free(t2), free(c1), free(c2), free(r1), free(r2);
    free(j1), free(j2), free(k1), free(k2);
}

/* Tiles of 64 elements and shards of at most 2000 bytes: 5003 float elements make 79
 * tiles, 40 and 39 per device, in several shards each, the last one short. */
#define SMALL "--dim", "5003", "--tune", "wg=16,epw=4", "--max-shard-bytes", "2000"

Test(devices, gd_on_two_devices_matches_one)
{
    const char *args[] = {"run", SMALL, "--iters", "30", NULL};
    expect_same_on_two_devices(args);
}

Test(devices, adam_on_two_devices_matches_one_with_loss_every_and_fused_steps)
{
    const char *args[] = {"run",
                          "--dim",
                          "5003",
                          "--tune",
                          "wg=16,epw=4,fuse=4",
                          "--max-shard-bytes",
                          "2000",
                          "--optimizer",
                          "adam",
                          "--iters",
                          "30",
                          "--loss-every",
                          "3",
                          NULL};
    expect_same_on_two_devices(args);
}

/* A stencil: the halos between the two devices' shards cross devices every step. */
Test(devices, rosenbrock_stencil_on_two_devices_matches_one)
{
    const char *args[] = {"run",         SMALL,      "--objective", "rosenbrock", "--lr", "1e-4",
                          "--optimizer", "momentum", "--iters",     "30",         NULL};
    expect_same_on_two_devices(args);
}

/* Global-norm clipping: every device's update reads the norm reduced on the first. */
Test(devices, clip_norm_on_two_devices_matches_one)
{
    const char *args[] = {"run", SMALL,     "--optimizer", "adam", "--clip-norm",
                          "2",   "--iters", "20",          NULL};
    expect_same_on_two_devices(args);
}

/* An objective with a data vector, in double. */
Test(devices, shifted_sphere_with_data_on_two_devices_matches_one)
{
    SKIP_WITHOUT_FP64();
    double target[5003];
    for (size_t i = 0; i < 5003; ++i)
        target[i] = 0.25 + 0.001 * (double)i;
    char *data = path_in(dir, "target.npy");
    write_npy(data, target, 5003, 1);
    char param[4200];
    snprintf(param, sizeof param, "target=%s", data);
    const char *args[] = {"run",     SMALL,         "--objective", "shifted_sphere", "--param",
                          param,     "--precision", "double",      "--optimizer",    "rmsprop",
                          "--iters", "25",          NULL};
    expect_same_on_two_devices(args);
    free(data);
}

/* A grid stencil (tv_denoise on 37x41, R = 1): a halo of one 41-element plane crosses the
 * devices' shards and the devices every step. */
Test(devices, tv_denoise_grid_on_two_devices_matches_one)
{
    float image[37 * 41];
    for (size_t i = 0; i < 37 * 41; ++i)
        image[i] = (float)((i * 7919u) % 101u) / 100.0f;
    char *data = path_in(dir, "image.npy");
    const uint64_t shape[] = {37, 41};
    write_npy_shape(data, image, 2, shape, 0);
    char param[4200];
    snprintf(param, sizeof param, "image=%s", data);
    const char *args[] = {"run",         "--shape",           "37,41", "--tune",
                          "wg=16,epw=4", "--max-shard-bytes", "1024",  "--objective",
                          "tv_denoise",  "--param",           param,   "--optimizer",
                          "nesterov",    "--iters",           "25",    NULL};
    expect_same_on_two_devices(args);
    free(data);
}

/* A checkpoint written on two devices resumes on one, to the bits of a run left alone. */
Test(devices, a_checkpoint_from_two_devices_resumes_on_one)
{
    char *ck = path_in(dir, "ck");
    const char *straight[] = {"run", SMALL, "--optimizer", "adam", "--iters", "20", NULL};
    cr_assert_eq(run_tagged(straight, "straight", NULL), 0);
    const char *first[] = {"run",          SMALL, "--optimizer", "adam", "--iters", "12",
                           "--checkpoint", ck,    NULL};
    cr_assert_eq(run_tagged(first, "first", "0,1"), 0);
    const char *second[] = {"run", "--resume", ck, "--iters", "20", NULL};
    cr_assert_eq(run_tagged(second, "second", NULL), 0);
    char *p1 = path_in(dir, "straight.npy"), *p2 = path_in(dir, "second.npy");
    size_t s1, s2;
    unsigned char *t1 = read_binary(p1, &s1), *t2 = read_binary(p2, &s2);
    cr_expect(s1 == s2 && memcmp(t1, t2, s1) == 0, "the resumed theta differs");
    free(ck), free(p1), free(p2), free(t1), free(t2);
}

/* lbfgs and cg: each device computes the dot-product partials of its own tiles and updates
 * its own part of the vectors; the partials are folded in tile order on the first device,
 * so every line-search decision is the one device's. Separable, 1-D stencil and grid
 * objectives, float and double. */
Test(devices, lbfgs_on_two_devices_matches_one)
{
    const char *separable[] = {"run",   SMALL,     "--objective", "ellipsoid", "--optimizer",
                               "lbfgs", "--iters", "25",          NULL};
    expect_same_on_two_devices(separable);
    const char *stencil[] = {"run",     SMALL, "--objective", "rosenbrock", "--optimizer", "lbfgs",
                             "--iters", "25",  "--precision", "double",     NULL};
    expect_same_on_two_devices(stencil);
}

Test(devices, cg_on_two_devices_matches_one)
{
    const char *separable[] = {"run",     SMALL, "--objective", "ellipsoid", "--optimizer", "cg",
                               "--iters", "25",  "--precision", "double",    NULL};
    expect_same_on_two_devices(separable);
    const char *stencil[] = {"run",     SMALL, "--objective", "rosenbrock", "--optimizer", "cg",
                             "--iters", "25",  "--cg-beta",   "hs",         NULL};
    expect_same_on_two_devices(stencil);
}

/* A grid (tv_denoise on 37x41): lbfgs in float, cg in double. */
Test(devices, lbfgs_and_cg_on_a_grid_on_two_devices_match_one)
{
    float image[37 * 41];
    for (size_t i = 0; i < 37 * 41; ++i)
        image[i] = (float)((i * 7919u) % 101u) / 100.0f;
    char *data = path_in(dir, "image.npy");
    const uint64_t shape[] = {37, 41};
    write_npy_shape(data, image, 2, shape, 0);
    char param[4200];
    snprintf(param, sizeof param, "image=%s", data);
    const char *lbfgs[] = {"run",         "--shape",           "37,41", "--tune",
                           "wg=16,epw=4", "--max-shard-bytes", "1024",  "--objective",
                           "tv_denoise",  "--param",           param,   "--optimizer",
                           "lbfgs",       "--iters",           "20",    NULL};
    expect_same_on_two_devices(lbfgs);
    const char *cg[] = {
        "run",  "--shape",     "37,41",      "--tune",      "wg=16,epw=4", "--max-shard-bytes",
        "2048", "--objective", "tv_denoise", "--param",     param,         "--optimizer",
        "cg",   "--iters",     "20",         "--precision", "double",      NULL};
    expect_same_on_two_devices(cg);
    free(data);
}

#define LBFGS_RUN SMALL, "--objective", "rosenbrock", "--optimizer", "lbfgs"

/* lbfgs's checkpoints (x, g, d and the history pairs) taken on two devices are the bytes of
 * one device's, and resume on one or two devices to the bits of a run left alone. */
Test(devices, an_lbfgs_checkpoint_from_two_devices_is_one_devices_and_resumes)
{
    char *ck1 = path_in(dir, "ck1"), *ck2 = path_in(dir, "ck2");
    const char *straight[] = {"run", LBFGS_RUN, "--iters", "20", NULL};
    cr_assert_eq(run_tagged(straight, "straight", NULL), 0);
    const char *one[] = {
        "run", LBFGS_RUN, "--iters", "12", "--checkpoint", ck1, "--checkpoint-every", "5", NULL};
    cr_assert_eq(run_tagged(one, "first1", NULL), 0);
    const char *two[] = {
        "run", LBFGS_RUN, "--iters", "12", "--checkpoint", ck2, "--checkpoint-every", "5", NULL};
    cr_assert_eq(run_tagged(two, "first2", "0,1"), 0);
    size_t s1, s2;
    unsigned char *b1 = read_binary(ck1, &s1), *b2 = read_binary(ck2, &s2);
    cr_expect(s1 == s2 && memcmp(b1, b2, s1) == 0, "the checkpoints of one and two devices differ");
    free(b1), free(b2);
    const char *on_one[] = {"run", "--resume", ck2, "--tune", "wg=16,epw=4", "--iters", "20", NULL};
    cr_assert_eq(run_tagged(on_one, "resumed1", NULL), 0);
    const char *on_two[] = {"run",  "--resume", ck1,  "--tune", "wg=16,epw=4", "--max-shard-bytes",
                            "2000", "--iters",  "20", NULL};
    cr_assert_eq(run_tagged(on_two, "resumed2", "0,1"), 0);
    char *p0 = path_in(dir, "straight.npy");
    size_t s0;
    unsigned char *t0 = read_binary(p0, &s0);
    const char *tags[] = {"resumed1.npy", "resumed2.npy"};
    for (size_t k = 0; k < 2; ++k) {
        char *p = path_in(dir, tags[k]);
        size_t sk;
        unsigned char *tk = read_binary(p, &sk);
        cr_expect(sk == s0 && memcmp(tk, t0, s0) == 0, "%s differs from the run left alone",
                  tags[k]);
        free(p), free(tk);
    }
    free(p0), free(t0), free(ck1), free(ck2);
}

static void expect_one_line_usage_error(const char *const *args, const char *needle)
{
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "exit %d: %s", r.exit_code, r.err);
    cr_expect_eq(count_lines(r.err), 1, "not one line: %s", r.err);
    cr_expect_not_null(strstr(r.err, needle), "%s", r.err);
    cli_result_free(&r);
}

Test(devices, bad_device_lists_exit_2_with_one_line)
{
    const char *absent[] = {"run", "--dim", "100", "--devices", "7", NULL};
    expect_one_line_usage_error(absent, "--devices names device 7");
    const char *twice[] = {"run", "--dim", "100", "--devices", "0,0", NULL};
    expect_one_line_usage_error(twice, "twice");
    const char *malformed[] = {"run", "--dim", "100", "--devices", "0;1", NULL};
    expect_one_line_usage_error(malformed, "not a list of device indexes");
    const char *both[] = {"run", "--dim", "100", "--device", "0", "--devices", "0,1", NULL};
    expect_one_line_usage_error(both, "--device and --devices");
}

/* The library: "all" opens both devices; a caller built before the field existed (struct
 * version 1) still gets one device. */
Test(devices, context_options_devices_and_the_older_struct)
{
    struct clopt_context_options o;
    clopt_context_options_init(&o);
    o.devices = "all";
    struct clopt_context *ctx = NULL;
    cr_assert_eq(clopt_context_create(&ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_context_device_count(ctx), 2);
    clopt_context_destroy(ctx);

    struct clopt_context_options old;
    clopt_context_options_init_size(&old,
                                    CLOPT_ABI_OLD_SIZE(struct clopt_context_options, devices));
    old.devices = "7"; /* past the old struct's end: never read */
    cr_assert_eq(clopt_context_create(&ctx, &old), CLOPT_OK, "%s", clopt_errmsg(ctx));
    cr_expect_eq(clopt_context_device_count(ctx), 1);
    clopt_context_destroy(ctx);
}

/* Never called: the solver is refused before any iteration. */
static int no_gradient(void *user, cl_command_queue queue, const struct clopt_gradient_call *call,
                       cl_event *done)
{
    (void)user, (void)queue, (void)call, (void)done;
    return 1;
}

/* The caller's gradient kernel and buffers live on one device: refused on two, one line. */
Test(devices, external_gradients_are_refused_on_two_devices)
{
    struct clopt_context_options c;
    clopt_context_options_init(&c);
    c.devices = "0,1";
    struct clopt_context *ctx = NULL;
    cr_assert_eq(clopt_context_create(&ctx, &c), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = 1000;
    struct clopt_external_options e;
    clopt_external_options_init(&e);
    e.gradient = no_gradient;
    struct clopt_solver *s = NULL;
    cr_expect_eq(clopt_solver_create_external(&s, ctx, &o, &e), CLOPT_ERR_UNSUPPORTED);
    cr_expect_null(s);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "external gradients run on one device"), "%s",
                       clopt_errmsg(ctx));
    cr_expect_null(strchr(clopt_errmsg(ctx), '\n'), "not one line: %s", clopt_errmsg(ctx));
    clopt_context_destroy(ctx);
}

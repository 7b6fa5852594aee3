/* Shapes: a .npy of any C-order shape as --init and as a data parameter, --out keeping the
 * --init file's shape, options.shape in the library. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

TEMP_DIR_SUITE(shapes);

/* One gd step of lr 0.25 on the sphere halves theta: out = 0.5 * init, exactly. */
static void run_half_step(const char *in, const char *out, int dbl)
{
    const char *args[] = {"run",
                          "--init",
                          in,
                          "--iters",
                          "1",
                          "--lr",
                          "0.25",
                          "--out",
                          out,
                          "--precision",
                          dbl ? "double" : "float",
                          "--quiet",
                          NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
}

static void expect_halved(const char *out, const double *values, size_t n)
{
    size_t got;
    int is_double;
    double *theta = read_npy_as_double(out, &got, &is_double);
    cr_assert_eq(got, n);
    for (size_t i = 0; i < n; ++i)
        cr_assert_eq(theta[i], 0.5 * values[i], "element %zu", i);
    free(theta);
}

Test(shapes, out_keeps_the_shape_of_the_init_file)
{
    double values[3 * 5 * 2];
    float values_f[3 * 5 * 2];
    for (size_t i = 0; i < 30; ++i) {
        values[i] = (double)i - 11.0;
        values_f[i] = (float)values[i];
    }
    static const uint64_t grid[] = {3, 5}, cube[] = {3, 5, 2};
    char *in = path_in(dir, "init.npy"), *out = path_in(dir, "out.npy");

    write_npy_shape(in, values_f, 2, grid, 0);
    run_half_step(in, out, 0);
    struct clopt_npy_info info = read_npy_info(out);
    cr_expect_eq(info.n_axes, 2);
    cr_expect_eq(info.shape[0], 3);
    cr_expect_eq(info.shape[1], 5);
    cr_expect_eq(info.dtype, CLOPT_FLOAT);
    expect_halved(out, values, 15);
    if (test_skip_double_part(1)) {
        free(in);
        free(out);
        return;
    }

    write_npy_shape(in, values, 3, cube, 1);
    run_half_step(in, out, 1);
    info = read_npy_info(out);
    cr_expect_eq(info.n_axes, 3);
    cr_expect_eq(info.shape[2], 2);
    expect_halved(out, values, 30);

    /* A vector stays a vector. */
    write_npy(in, values, 7, 1);
    run_half_step(in, out, 1);
    info = read_npy_info(out);
    cr_expect_eq(info.n_axes, 1);
    cr_expect_eq(info.shape[0], 7);
    free(in);
    free(out);
}

/* A run resumed without its --init file writes theta in the shape the checkpoint records. */
Test(shapes, a_resumed_run_keeps_the_shape)
{
    float values[4 * 5];
    for (size_t i = 0; i < 20; ++i)
        values[i] = (float)i - 7.0f;
    static const uint64_t grid[] = {4, 5};
    char *in = path_in(dir, "init.npy"), *ck = path_in(dir, "ck"), *out = path_in(dir, "out.npy");
    write_npy_shape(in, values, 2, grid, 0);
    const char *first[] = {"run",          "--init", in,        "--iters", "3",
                           "--checkpoint", ck,       "--quiet", NULL};
    struct cli_result r = cli_run(first);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    const char *rest[] = {"run", "--resume", ck, "--iters", "6", "--out", out, "--quiet", NULL};
    r = cli_run(rest);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_free(&r);
    struct clopt_npy_info info = read_npy_info(out);
    cr_expect_eq(info.n_axes, 2);
    cr_expect_eq(info.shape[0], 4);
    cr_expect_eq(info.shape[1], 5);
    free(in);
    free(ck);
    free(out);
}

Test(shapes, without_an_init_file_out_is_a_vector)
{
    char *out = path_in(dir, "out.npy");
    const char *args[] = {"run", "--dim", "12", "--iters", "1", "--out", out, "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    struct clopt_npy_info info = read_npy_info(out);
    cr_expect_eq(info.n_axes, 1);
    cr_expect_eq(info.shape[0], 12);
    cli_result_free(&r);
    free(out);
}

/* A version 1.0 .npy of two float32 values whose header says Fortran order. */
static void write_fortran_npy(const char *path)
{
    const char dict[] = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1), }";
    char header[128];
    const size_t prefix = 10, len = strlen(dict);
    const size_t pad = (64 - (prefix + len + 1) % 64) % 64;
    memcpy(header, dict, len);
    memset(header + len, ' ', pad);
    header[len + pad] = '\n';
    const size_t header_len = len + pad + 1;
    const unsigned char start[] = {0x93,
                                   'N',
                                   'U',
                                   'M',
                                   'P',
                                   'Y',
                                   1,
                                   0,
                                   (unsigned char)(header_len & 0xff),
                                   (unsigned char)(header_len >> 8)};
    const float data[2] = {1, 2};
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(start, 1, sizeof start, f), sizeof start);
    cr_assert_eq(fwrite(header, 1, header_len, f), header_len);
    cr_assert_eq(fwrite(data, sizeof *data, 2, f), 2u);
    cr_assert_eq(fclose(f), 0);
}

Test(shapes, a_fortran_order_init_file_is_refused_in_one_line)
{
    char *in = path_in(dir, "fortran.npy");
    write_fortran_npy(in);
    const char *args[] = {"run", "--init", in, "--iters", "1", "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, EXIT_USAGE, "%s", r.err);
    cr_expect_not_null(strstr(r.err, "shape (2, 1) is stored in Fortran order"), "%s", r.err);
    cr_expect_not_null(strstr(r.err, "np.ascontiguousarray"), "%s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cli_result_free(&r);
    free(in);
}

Test(shapes, a_data_parameter_of_any_shape_is_read_in_c_order)
{
    SKIP_WITHOUT_FP64();
    double t[4 * 6];
    for (size_t i = 0; i < 24; ++i)
        t[i] = 0.25 * (double)i - 2;
    static const uint64_t shape[] = {4, 6};
    char *target = path_in(dir, "t.npy"), *out = path_in(dir, "theta.npy");
    write_npy_shape(target, t, 2, shape, 1);
    char param[512];
    snprintf(param, sizeof param, "target=%s", target);
    const char *args[] = {"run",     "--objective", "shifted_sphere", "--param", param,
                          "--lr",    "0.5",         "--iters",        "1",       "--out",
                          out,       "--precision", "double",         "--init",  "zeros",
                          "--quiet", NULL};
    struct cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    size_t n;
    int is_double;
    double *theta = read_npy_as_double(out, &n, &is_double);
    cr_assert_eq(n, 24, "the dimension comes from the data file's size");
    for (size_t i = 0; i < n; ++i)
        cr_expect_eq(theta[i], t[i], "theta[%zu] = %.17g", i, theta[i]);
    cr_expect_eq(read_npy_info(out).n_axes, 1, "no --init file: --out is a vector");
    free(theta);
    cli_result_free(&r);
    free(target);
    free(out);
}

Test(shapes, the_library_saves_theta_in_options_shape)
{
    struct clopt_context *ctx = test_context();
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = 24;
    o.max_iters = 1;
    o.n_axes = 3;
    o.shape[0] = 2;
    o.shape[1] = 3;
    o.shape[2] = 4;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    char *out = path_in(dir, "theta.npy");
    cr_assert_eq(clopt_solver_save_theta(s, out, CLOPT_DOUBLE), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_npy_info info = read_npy_info(out);
    cr_expect_eq(info.n_axes, 3);
    cr_expect_eq(info.shape[0], 2);
    cr_expect_eq(info.shape[1], 3);
    cr_expect_eq(info.shape[2], 4);
    cr_expect_eq(info.dtype, CLOPT_DOUBLE);
    clopt_solver_destroy(s);

    o.dim = 25;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "options.shape (2, 3, 4) does not hold "
                                                 "options.dim = 25 elements"),
                       "%s", clopt_errmsg(ctx));
    o.dim = 6;
    o.n_axes = 2;
    o.shape[0] = 0;
    o.shape[1] = 6;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "options.shape[0] is 0"), "%s", clopt_errmsg(ctx));
    o.n_axes = CLOPT_MAX_AXES + 1;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "options.n_axes 9"), "%s", clopt_errmsg(ctx));
    free(out);
    clopt_context_destroy(ctx);
}

/* clopt_npy_write_header_shape, read back by clopt_npy_read_header. */
Test(shapes, a_npy_header_of_a_shape_round_trips)
{
    static const uint64_t shape[] = {3, 1, 7};
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    char err[256];
    cr_assert_eq(clopt_npy_write_header_shape(f, CLOPT_DOUBLE, 3, shape, err, sizeof err), CLOPT_OK,
                 "%s", err);
    const long header_end = ftell(f);
    cr_assert_eq(header_end % 64, 0, "numpy aligns the data to 64 bytes");
    const double zeros[21] = {0};
    cr_assert_eq(fwrite(zeros, sizeof *zeros, 21, f), 21u);
    char dict[128];
    cr_assert_eq(fseek(f, 10, SEEK_SET), 0); /* magic, version, header length */
    cr_assert_not_null(fgets(dict, sizeof dict, f));
    cr_assert_not_null(strstr(dict, "'shape': (3, 1, 7), }"), "%s", dict);
    struct clopt_npy_info info;
    cr_assert_eq(clopt_npy_read_header(f, &info, err, sizeof err), CLOPT_OK, "%s", err);
    cr_expect_eq(info.data_offset, (uint64_t)header_end);
    cr_expect_eq(info.count, 21);
    cr_expect_eq(info.n_axes, 3);
    cr_expect_eq(info.shape[0], 3);
    cr_expect_eq(info.shape[1], 1);
    cr_expect_eq(info.shape[2], 7);
    fclose(f);
}

Test(shapes, bad_shapes_are_not_written)
{
    static const uint64_t empty[] = {2, 0}, huge[] = {(uint64_t)1 << 32, (uint64_t)1 << 32};
    static const uint64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    char err[256];
    cr_expect_eq(clopt_npy_write_header_shape(f, CLOPT_FLOAT, 2, empty, err, sizeof err),
                 CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(err, "empty"), "%s", err);
    cr_expect_eq(clopt_npy_write_header_shape(f, CLOPT_FLOAT, 2, huge, err, sizeof err),
                 CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(err, "too large"), "%s", err);
    cr_expect_eq(clopt_npy_write_header_shape(f, CLOPT_FLOAT, 9, nine, err, sizeof err),
                 CLOPT_ERR_INVALID_ARG);
    cr_expect_eq(clopt_npy_write_header_shape(f, CLOPT_FLOAT, 0, nine, err, sizeof err),
                 CLOPT_ERR_INVALID_ARG);
    cr_expect_eq(ftell(f), 0, "nothing written on a rejected call");
    fclose(f);
}

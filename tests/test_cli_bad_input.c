/* The clopt command line's bad input: every case exits 2 with one "clopt: error:" line
 * that names the cause (DESIGN.md, the command-line contract). */
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

TEMP_DIR_SUITE(cli_bad_input);

struct bad_case {
    const char *args[16];
    const char *pattern;
};

Test(cli_bad_input, exits_2_with_one_line)
{
    char *malformed = path_in(dir, "bad.npy"), *ints = path_in(dir, "ints.npy"),
         *broken = path_in(dir, "broken.cl"), *small = path_in(dir, "small.npy");
    FILE *f = fopen(malformed, "wb");
    cr_assert_not_null(f);
    fputs("not a numpy file at all", f);
    fclose(f);
    f = fopen(ints, "wb");
    cr_assert_not_null(f);
    const char header[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<i4', 'fortran_order': False, "
                          "'shape': (2,), }";
    fwrite(header, 1, sizeof header - 1, f);
    for (size_t i = sizeof header - 1; i < 128 - 1; ++i)
        fputc(' ', f);
    fputc('\n', f);
    fwrite("\0\0\0\0\0\0\0\0", 1, 8, f);
    fclose(f);
    const float two[2] = {1, 2};
    write_npy(small, two, 2, 0);
    char *nan_file = path_in(dir, "nan.npy"), *huge_file = path_in(dir, "huge.npy"),
         *nofdf = path_in(dir, "nofdf.cl");
    const float with_nan[3] = {1, NAN, 2};
    write_npy(nan_file, with_nan, 3, 0);
    const double too_big_for_float[2] = {1, 1e300};
    write_npy(huge_file, too_big_for_float, 2, 1);
    f = fopen(nofdf, "w");
    cr_assert_not_null(f);
    fputs("real f(real x) { return x; }\n", f);
    fclose(f);
    f = fopen(broken, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf(real x, ulong i, real *g) { return x +; }\n", f);
    fclose(f);
    char *noradius = path_in(dir, "noradius.cl"), *missing = path_in(dir, "missing/ck");
    f = fopen(noradius, "w");
    cr_assert_not_null(f);
    fputs("real clopt_fdf_stencil(const real *w, ulong i, ulong n, real *g)\n"
          "{ *g = 0; return w[1]; }\n",
          f);
    fclose(f);
    /* FIFOs and a directory where files belong: refused at once, never waited on, never
     * replaced. */
    char *fifo_out = path_in(dir, "fifo_out.npy"), *fifo_ck = path_in(dir, "fifo.ckp"),
         *fifo_in = path_in(dir, "fifo_in.npy"), *fifo_cl = path_in(dir, "fifo.cl"),
         *dir_cl = path_in(dir, "dir.cl");
    cr_assert_eq(mkfifo(fifo_out, 0600), 0);
    cr_assert_eq(mkfifo(fifo_ck, 0600), 0);
    cr_assert_eq(mkfifo(fifo_in, 0600), 0);
    cr_assert_eq(mkfifo(fifo_cl, 0600), 0);
    cr_assert_eq(mkdir(dir_cl, 0700), 0);
    char target_small[512], target_malformed[512], target_nan[512], target_fifo[512];
    snprintf(target_fifo, sizeof target_fifo, "target=%s", fifo_in);
    snprintf(target_small, sizeof target_small, "target=%s", small);
    snprintf(target_malformed, sizeof target_malformed, "target=%s", malformed);
    snprintf(target_nan, sizeof target_nan, "target=%s", nan_file);
    const struct bad_case cases[] = {
        {{"run", "--objective", "shifted_sphere"}, "needs --param target=FILE.npy"},
        {{"run", "--objective", "shifted_sphere", "--param", target_small, "--dim", "5"},
         "holds 2 values but theta has 5"},
        {{"run", "--objective", "shifted_sphere", "--param", target_malformed}, "magic"},
        {{"run", "--objective", "shifted_sphere", "--param", target_nan}, "not a finite"},
        {{"run", "--objective", "shifted_sphere", "--param", "target=/nonexistent/t.npy"},
         "cannot open --param target file"},
        {{"run", "--objective", "shifted_sphere", "--param", "target="}, "needs --param target"},
        {{"run", "--objective", "laplacian", "--param", "left=abc"}, "finite number"},
        {{"run", "--objective", noradius}, "CLOPT_STENCIL_RADIUS"},
        {{"check", "--objective", noradius}, "CLOPT_STENCIL_RADIUS"},
        {{"run", "--checkpoint-every", "5"}, "needs --checkpoint FILE"},
        {{"run", "--checkpoint", "/nonexistent/c.ckp"}, "does not exist"},
        {{"run", "--checkpoint", "c.ckp", "--checkpoint-every", "0"}, "at least 1"},
        {{"run", "--resume", "/nonexistent/c.ckp"}, "--resume"},
        {{"run", "--resume", malformed}, "not a clopt checkpoint"},
        {{"bench", "--reps", "0"}, "at least 1"},
        {{"bench", "--reps", "5000"}, "--reps"},
        {{"run", "--reps", "3"}, "option of clopt bench"},
        {{"run", "--csv", "x.csv"}, "option of clopt bench"},
        {{"bench", "--out", "x.npy"}, "options of clopt run"},
        {{"bench", "--iters", "0"}, "at least 1"},
        {{"bench", "--csv", "/nonexistent/b.csv"}, "does not exist"},
        {{"tune", "--space", "foo=1"}, "--space"},
        {{"tune", "--space", "wg=3x"}, "--space"},
        {{"tune", "--space", "wg="}, "no values"},
        {{"tune", "--tune", "wg=4"}, "do not apply"},
        {{"run", "--space", "wg=4"}, "option of clopt tune"},
        {{"bench", "--space", "fuse=2"}, "option of clopt tune"},
        {{"tune", "--quiet", "--dim", "1000", "--iters", "4", "--reps", "1", "--space", "fuse=2",
          "--clip-norm", "1"},
         "no candidate of --space can run"},
        {{"run", "--budget", "-1"}, "--budget"},
        {{"check", "--samples", "0"}, "at least 1"},
        {{"check", "--tol", "-1"}, "--tol"},
        {{"check", "--init", small}, "draws its point"},
        {{"check", "--objective", "nosuch"}, "unknown objective"},
        {{"check", "--objective", "ellipsoid", "--param", "cond=0"}, "out of range"},
        {{"check", "--iters", "5"}, "unknown option"},
        {{"run", "--objective", "nosuch"}, "unknown objective"},
        {{"run", "--dim", "0"}, "at least 1"},
        {{"run", "--dim", "-5"}, "negative"},
        {{"run", "--dim", "1e30"}, "too large"},
        {{"run", "--dim", "12abc"}, "--dim"},
        {{"run", "--lr", "-1"}, ">= 0"},
        {{"run", "--lr", "nan"}, "--lr"},
        {{"run", "--lr", "abc"}, "--lr"},
        {{"run", "--iters", "1.5"}, "whole"},
        {{"run", "--iters"}, "needs a value"},
        {{"run", "--gtol", "-1"}, "--gtol"},
        {{"run", "--target", "inf"}, "--target"},
        {{"run", "--loss-every", "0"}, "at least 1"},
        {{"run", "--precision", "half"}, "float or double"},
        {{"run", "--init", "bogus"}, "--init"},
        {{"run", "--init", "uniform:-1"}, "> 0"},
        {{"run", "--init", malformed}, "magic"},
        {{"run", "--init", ints}, "dtype"},
        {{"run", "--init", small, "--dim", "3"}, "holds 2 elements"},
        {{"run", "--init", "/nonexistent/x.npy"}, "cannot open"},
        {{"run", "--objective", "ellipsoid", "--param", "cond=abc"}, "finite number"},
        {{"run", "--objective", "ellipsoid", "--param", "cond=0.5"}, "out of range"},
        {{"run", "--param", "nosuch=1"}, "no parameter"},
        {{"run", "--param", "noequals"}, "KEY=VALUE"},
        {{"run", "--tune", "wg=3"}, "power of two"},
        {{"run", "--tune", "bogus=1"}, "unknown knob"},
        {{"run", "--tune", "layout=diagonal"}, "contig or strided"},
        {{"run", "--tune", "fuse=0"}, "at least 1"},
        {{"run", "--tune", "fuse=33"}, "<= 32"},
        {{"run", "--tune", "gpcu=1025"}, "<= 1024"},
        {{"run", "--tune", "simd=384"}, "simd=384: use 256 or 512"},
        {{"run", "--tune", "pf=1"}, "at least 2"},
        {{"run", "--tune", "pf=3"}, "power of two"},
        {{"run", "--tune", "fuse=4", "--objective", "rosenbrock"}, "separable objective"},
        {{"run", "--tune", "fuse=4", "--clip-norm", "1"}, "--clip-norm"},
        {{"run", "--max-shard-bytes", "16"}, "tile"},
        {{"run", "--optimizer", "nosuch"}, "unknown optimizer"},
        {{"run", "--device", "no-such-device-name"}, "no OpenCL device matches"},
        {{"run", "--frobnicate"}, "unknown option"},
        {{"run", "stray"}, "unexpected argument"},
        {{"frobnicate"}, "unknown command"},
        {{"devices", "extra"}, "no arguments"},
        {{"run", "--objective", "/nonexistent/obj.cl"}, "cannot open"},
        {{"run", "--objective", nofdf}, "defines no clopt_fdf"},
        {{"run", "--init", nan_file}, "element 1 is nan"},
        {{"run", "--init", huge_file}, "not a finite float"},
        {{"run", "--out", "/nonexistent/x.npy"}, "does not exist"},
        {{"run", "--json", dir}, "not a directory"},
        {{"run", "--trace", "/nonexistent/t.csv"}, "does not exist"},
        {{"run", "--objective", "ellipsoid", "--param", "cond=2", "--param", "cond=3"},
         "given twice"},
        {{"run", "--tune", "epw="}, "--tune"},
        {{"run", "--init", "normal:nan"}, "normal:nan"},
        {{"run", "--lr", "inf"}, "finite"},
        {{"run", "--optimizer", "adam", "--beta1", "1"}, "--beta1 1 is out of range"},
        {{"run", "--optimizer", "adam", "--beta2", "-0.5"}, "--beta2"},
        {{"run", "--optimizer", "adam", "--eps", "0"}, "--eps"},
        {{"run", "--optimizer", "rmsprop", "--alpha", "2"}, "--alpha"},
        {{"run", "--optimizer", "momentum", "--momentum", "0"}, "--momentum must be > 0"},
        {{"run", "--optimizer", "nesterov", "--dampening", "0.5"}, "dampening 0"},
        {{"run", "--weight-decay", "-1"}, "--weight-decay"},
        {{"run", "--clip-norm", "-2"}, "--clip-norm"},
        {{"run", "--optimizer", "gd", "--momentum", "0.9"},
         "--momentum is not used by optimizer 'gd'"},
        {{"run", "--schedule", "cosine"}, "--schedule"},
        {{"run", "--schedule", "step:0:0.5"}, "EVERY"},
        {{"run", "--schedule", "warmup:10+bogus"}, "unknown schedule"},
        /* Renaming over a FIFO or device would replace it (issue 16, item 5). */
        {{"run", "--dim", "10", "--out", fifo_out}, "not a regular file"},
        {{"run", "--dim", "10", "--checkpoint", fifo_ck}, "not a regular file"},
        /* Inputs that are not regular files, opened without blocking (item 12). */
        {{"run", "--init", fifo_in}, "not a regular file"},
        {{"run", "--resume", fifo_in}, "not a regular file"},
        {{"run", "--objective", "shifted_sphere", "--param", target_fifo}, "not a regular file"},
        {{"run", "--objective", fifo_cl}, "not a regular file"},
        {{"run", "--objective", dir_cl}, "a directory"},
        /* Values that float cannot hold as given (item 11). */
        {{"run", "--optimizer", "adam", "--eps", "1e-40"}, "--eps 1e-40 is too small for float"},
        {{"run", "--lr", "1e-46"}, "--lr 1e-46 is too small for float"},
        {{"run", "--lr", "1e39"}, "--lr 1e+39 is too large for float"},
        {{"run", "--weight-decay", "1e-45"}, "--weight-decay 1e-45 is too small for float"},
        {{"run", "--optimizer", "momentum", "--momentum", "0.99999999999"}, "rounds to 1 in float"},
        /* A shard that holds a tile but not its halo names the halo (item 12). */
        {{"run", "--objective", "rosenbrock", "--tune", "wg=4,epw=1", "--max-shard-bytes", "16"},
         "halo of 1 elements"},
        /* Two names for one file (issue 16): refused before anything is written. */
        {{"run", "--init", small, "--trace", small}, "are the same file"},
        {{"run", "--init", small, "--out", small}, "are the same file"},
        {{"run", "--out", nofdf, "--json", nofdf}, "are the same file"},
        {{"run", "--resume", missing}, "--resume"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
        struct cli_result r = cli_run(cases[i].args);
        cr_expect_eq(r.exit_code, EXIT_USAGE, "case %zu (%s %s): exit %d, stderr: %s", i,
                     cases[i].args[1], cases[i].args[2] ? cases[i].args[2] : "", r.exit_code,
                     r.err);
        cr_expect_eq(count_lines(r.err), 1, "case %zu: stderr has %zu lines:\n%s", i,
                     count_lines(r.err), r.err);
        cr_expect(strstr(r.err, cases[i].pattern) != NULL, "case %zu: '%s' not in: %s", i,
                  cases[i].pattern, r.err);
        cr_expect(strncmp(r.err, "clopt: error: ", 14) == 0, "case %zu: %s", i, r.err);
        cli_result_free(&r);
    }
    /* A user kernel that does not compile: status 2, and the log names the file. */
    const char *args[] = {"run", "--objective", broken, NULL};
    struct cli_result r = cli_run(args);
    cr_expect_eq(r.exit_code, EXIT_USAGE, "%s", r.err);
    cr_expect(strstr(r.err, "broken.cl:1:") != NULL, "%s", r.err);
    cli_result_free(&r);
    free(malformed);
    free(ints);
    free(broken);
    free(small);
    free(nan_file);
    free(huge_file);
    free(nofdf);
    free(noradius);
    free(fifo_out);
    free(fifo_ck);
    free(fifo_in);
    free(fifo_cl);
    free(dir_cl);
    free(missing);
}

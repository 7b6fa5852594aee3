/* Option structs across header versions: struct_size set by the *_init functions, read by
 * the library (host/abi.c). */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static struct clopt_context *ctx;

static void setup(void)
{
    ctx = test_context();
}

static void teardown(void)
{
    clopt_context_destroy(ctx);
}

TestSuite(abi, .init = setup, .fini = teardown);

Test(abi, init_functions_record_the_callers_size)
{
    struct clopt_options o;
    struct clopt_context_options c;
    struct clopt_check_options k;
    struct clopt_tune_options t;
    clopt_options_init(&o);
    clopt_context_options_init(&c);
    clopt_check_options_init(&k);
    clopt_tune_options_init(&t);
    cr_expect_eq(o.struct_size, sizeof o);
    cr_expect_eq(c.struct_size, sizeof c);
    cr_expect_eq(k.struct_size, sizeof k);
    cr_expect_eq(t.struct_size, sizeof t);
}

/* A program built against an older, smaller header passes its own sizeof: the library must
 * write no byte past it. */
Test(abi, init_writes_only_the_callers_bytes)
{
    const size_t small = offsetof(struct clopt_options, dim);
    unsigned char buf[sizeof(struct clopt_options) + 16];
    memset(buf, 0xA5, sizeof buf);
    clopt_options_init_size((struct clopt_options *)(void *)buf, small);
    size_t recorded;
    memcpy(&recorded, buf, sizeof recorded);
    cr_expect_eq(recorded, small);
    for (size_t i = small; i < sizeof buf; ++i)
        cr_assert_eq(buf[i], 0xA5, "byte %zu past the caller's %zu was written", i, small);
}

Test(abi, a_zero_size_is_refused_naming_the_init_function)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = 100;
    o.struct_size = 0;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect_null(s);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "options.struct_size is 0"), "%s",
                       clopt_errmsg(ctx));
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "clopt_options_init()"), "%s", clopt_errmsg(ctx));
}

/* A header newer than the library: its fields cannot be honoured, so nothing runs. */
Test(abi, a_size_the_library_does_not_know_is_refused)
{
    struct clopt_options o;
    clopt_options_init(&o);
    o.dim = 100;
    o.struct_size = sizeof o + 8;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "is not a size this libclopt"), "%s",
                       clopt_errmsg(ctx));
    struct clopt_step_timing timing;
    o.max_iters = 1;
    cr_expect_eq(clopt_bench_step(ctx, &o, 1, &timing), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "options.struct_size"), "%s", clopt_errmsg(ctx));
}

Test(abi, every_option_struct_is_checked)
{
    struct clopt_check_options k;
    clopt_check_options_init(&k);
    k.struct_size = 0;
    struct clopt_check_result kr;
    cr_expect_eq(clopt_check_gradient(ctx, &k, &kr), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "check_options.struct_size is 0"), "%s",
                       clopt_errmsg(ctx));

    struct clopt_options problem;
    clopt_options_init(&problem);
    problem.dim = 64;
    problem.max_iters = 1;
    struct clopt_tune_options t;
    clopt_tune_options_init(&t);
    t.struct_size = 0;
    struct clopt_tune_result tr;
    cr_expect_eq(clopt_tune(ctx, &problem, &t, &tr), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "clopt_tune_options_init()"), "%s",
                       clopt_errmsg(ctx));
    clopt_tune_result_free(&tr);

    struct clopt_context_options c;
    clopt_context_options_init(&c);
    c.struct_size = 0;
    struct clopt_context *other = NULL;
    cr_expect_eq(clopt_context_create(&other, &c), CLOPT_ERR_INVALID_ARG);
    cr_assert_not_null(other, "a refused context still carries its message");
    cr_expect_not_null(strstr(clopt_errmsg(other), "context_options.struct_size is 0"), "%s",
                       clopt_errmsg(other));
    clopt_context_destroy(other);

    char *dir = temp_dir();
    char *path = path_in(dir, "tuning.json");
    struct clopt_tuning_db *db = NULL;
    cr_assert_eq(clopt_tuning_db_open(&db, path, NULL, 0), CLOPT_OK);
    struct clopt_knobs knobs;
    int found = 0;
    problem.struct_size = 0;
    cr_expect_eq(clopt_tuning_db_lookup(db, ctx, &problem, &knobs, &found, NULL, 0),
                 CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_tuning_db_errmsg(db), "options.struct_size is 0"), "%s",
                       clopt_tuning_db_errmsg(db));
    clopt_tuning_db_close(db);
    remove_tree(dir);
    free(path);
    free(dir);
}

/* The struct as a program built before n_axes and shape were added passes it: whatever lies
 * past its size (here a shape that would not fit dim) is not read; theta stays a vector. */
Test(abi, an_older_struct_gets_the_defaults_of_later_fields)
{
    const size_t v1 =
        (offsetof(struct clopt_options, n_axes) + _Alignof(struct clopt_options) - 1) /
        _Alignof(struct clopt_options) * _Alignof(struct clopt_options);
    cr_assert_lt(v1, sizeof(struct clopt_options));
    struct clopt_options o;
    clopt_options_init_size(&o, v1);
    o.dim = 10;
    o.max_iters = 1;
    o.n_axes = 2; /* bytes the older program does not have */
    o.shape[0] = 3;
    o.shape[1] = 7;
    struct clopt_solver *s = NULL;
    cr_assert_eq(clopt_solver_create(&s, ctx, &o), CLOPT_OK, "%s", clopt_errmsg(ctx));
    char *dir = temp_dir();
    char *path = path_in(dir, "theta.npy");
    cr_assert_eq(clopt_solver_save_theta(s, path, CLOPT_FLOAT), CLOPT_OK, "%s", clopt_errmsg(ctx));
    struct clopt_npy_info info = read_npy_info(path);
    cr_expect_eq(info.n_axes, 1);
    cr_expect_eq(info.count, 10);
    clopt_solver_destroy(s);

    /* The same bytes with the current size: the shape is read, and refused. */
    o.struct_size = sizeof o;
    cr_expect_eq(clopt_solver_create(&s, ctx, &o), CLOPT_ERR_INVALID_ARG);
    cr_expect_not_null(strstr(clopt_errmsg(ctx), "options.shape (3, 7)"), "%s", clopt_errmsg(ctx));
    remove_tree(dir);
    free(path);
    free(dir);
}

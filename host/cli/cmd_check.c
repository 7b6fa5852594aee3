/* clopt check: an objective's gradient against finite differences. */
#include "args.h"
#include "commands.h"
#include "report.h"
#include "setup.h"

#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_OBJECTIVE = 256,
    OPT_PARAM,
    OPT_DIM,
    OPT_SAMPLES,
    OPT_INIT,
    OPT_SEED,
    OPT_TOL,
    OPT_JSON,
    OPT_DEVICE,
    OPT_KERNEL_DIR,
    OPT_PROGRAM_CACHE,
    OPT_SHAPE,
};

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
    {"shape", required_argument, NULL, OPT_SHAPE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct check_args {
    struct clopt_check_options o;
    struct clopt_param params[MAX_PARAMS];
    const char *device, *kernel_dir, *json_path, *program_cache;
    char program_cache_buffer[4096];
    double tol;
    int dim_given, shape_given;
};

/* --init for the check: a drawn point only. */
static int check_init(struct check_args *c, const char *spec)
{
    static struct run_args a;
    memset(&a, 0, sizeof a);
    if (parse_init(&a, spec))
        return EXIT_USAGE;
    if (a.init_file) {
        print_error("--init '%s': the check draws its point: use normal[:S], "
                    "uniform[:A] or const:V",
                    spec);
        return EXIT_USAGE;
    }
    c->o.init = a.opts.init;
    c->o.init_value = a.opts.init_value;
    return 0;
}

/* One option; 0, a usage status, or -1 after printing help. */
static int check_option(struct check_args *c, int opt, int argc, char **argv)
{
    uint64_t v;
    switch (opt) {
    case OPT_OBJECTIVE:
        c->o.objective = optarg;
        return 0;
    case OPT_PARAM:
        return add_param(optarg, c->params, &c->o.n_params);
    case OPT_DIM:
    case OPT_SAMPLES:
        if (parse_positive_flag(opt == OPT_DIM ? "--dim" : "--samples", optarg,
                                opt == OPT_DIM ? (uint64_t)1 << 48 : (uint64_t)1 << 24, &v))
            return EXIT_USAGE;
        *(opt == OPT_DIM ? &c->o.dim : &c->o.samples) = (size_t)v;
        c->dim_given |= opt == OPT_DIM;
        return 0;
    case OPT_SHAPE:
        c->shape_given = 1;
        return parse_shape_flag("--shape", optarg, &c->o.n_axes, c->o.shape);
    case OPT_INIT:
        return check_init(c, optarg);
    case OPT_SEED:
        return parse_count_flag("--seed", optarg, UINT64_MAX, &c->o.seed) ? EXIT_USAGE : 0;
    case OPT_TOL:
        if (parse_double_flag("--tol", optarg, &c->tol))
            return EXIT_USAGE;
        if (!(c->tol > 0)) {
            print_error("--tol '%s': must be > 0", optarg);
            return EXIT_USAGE;
        }
        return 0;
    case OPT_JSON:
    case OPT_DEVICE:
    case OPT_KERNEL_DIR:
    case OPT_PROGRAM_CACHE:
        *(opt == OPT_JSON         ? &c->json_path
          : opt == OPT_DEVICE     ? &c->device
          : opt == OPT_KERNEL_DIR ? &c->kernel_dir
                                  : &c->program_cache) = optarg;
        return 0;
    case 'h':
        print_command_usage(stdout, "check");
        return -1;
    default:
        return usage_error(opt, argc, argv, "check");
    }
}

static int parse_check_args(int argc, char **argv, struct check_args *c)
{
    clopt_check_options_init(&c->o);
    c->o.params = c->params;
    c->device = getenv("CLOPT_DEVICE");
    c->kernel_dir = getenv("CLOPT_KERNEL_DIR");
    c->tol = NAN;
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", check_options, NULL)) != -1) {
        const int rc = check_option(c, opt, argc, argv);
        if (rc)
            return rc;
    }
    if (usage_error(-1, argc, argv, "check"))
        return EXIT_USAGE;
    /* --shape sets the dimension; --dim, when given too, must agree. */
    if (c->shape_given) {
        size_t product = 1;
        for (size_t k = 0; k < c->o.n_axes; ++k)
            product *= c->o.shape[k];
        if (c->dim_given && product != c->o.dim) {
            print_error("--shape holds %zu elements but --dim is %zu: drop --dim or make them "
                        "agree",
                        product, c->o.dim);
            return EXIT_USAGE;
        }
        c->o.dim = product;
    }
    return 0;
}

static int write_check_json(const char *path, const struct clopt_check_options *o,
                            const struct clopt_check_result *r, double tol, int passed)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddStringToObject(root, "objective", o->objective) &&
             cJSON_AddNumberToObject(root, "n", (double)o->dim) &&
             cJSON_AddNumberToObject(root, "checked", (double)r->checked) &&
             cJSON_AddStringToObject(root, "precision", precision_name(r->precision)) &&
             cJSON_AddNumberToObject(root, "worst_error",
                                     isfinite(r->worst_error) ? r->worst_error : DBL_MAX) &&
             cJSON_AddNumberToObject(root, "worst_index", (double)r->worst_index) &&
             cJSON_AddNumberToObject(root, "gradient", r->gradient) &&
             cJSON_AddNumberToObject(root, "finite_difference", r->finite_difference) &&
             cJSON_AddNumberToObject(root, "tolerance", tol) &&
             cJSON_AddBoolToObject(root, "passed", passed);
    return emit_json(path, root, ok);
}

/* The result as JSON and text; the exit status. */
static int report_check(const struct check_args *c, const struct clopt_check_result *r,
                        const struct clopt_device_info *dev)
{
    const double tol = isnan(c->tol) ? (r->precision == CLOPT_DOUBLE ? 1e-6 : 1e-2) : c->tol;
    const int passed = r->worst_error <= tol;
    int rc = passed ? EXIT_SUCCESS : EXIT_CHECK_FAILED;
    if (c->json_path) {
        int json_rc = write_check_json(c->json_path, &c->o, r, tol, passed);
        if (json_rc)
            rc = json_rc;
    }
    if (!(c->json_path && !strcmp(c->json_path, "-"))) {
        printf("objective   %s (n = %zu, %zu elements checked, %s, on %s)\n", c->o.objective,
               c->o.dim, r->checked, precision_name(r->precision), dev->name);
        printf("worst error %.3e at element %zu: gradient %.17g, finite difference %.17g\n",
               r->worst_error, r->worst_index, r->gradient, r->finite_difference);
        printf("result      %s (tolerance %g)\n", passed ? "PASS" : "FAIL", tol);
    }
    if (!passed)
        print_error("gradient check failed: the gradient of '%s' at element %zu is %.9g but the "
                    "finite difference of its loss is %.9g (relative error %.3g > %g)",
                    c->o.objective, r->worst_index, r->gradient, r->finite_difference,
                    r->worst_error, tol);
    return rc;
}

int cmd_check(int argc, char **argv)
{
    static struct check_args c;
    memset(&c, 0, sizeof c);
    int rc = parse_check_args(argc, argv, &c);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    if (c.json_path && (rc = check_output_path("--json", c.json_path)) != 0)
        return rc;
    struct clopt_context *ctx = NULL;
    const char *program_cache =
        program_cache_dir(c.program_cache, c.program_cache_buffer, sizeof c.program_cache_buffer);
    if ((rc = open_context(c.device, NULL, c.kernel_dir, program_cache, &ctx)) != 0)
        return rc;
    struct clopt_check_result r;
    int status = clopt_check_gradient(ctx, &c.o, &r);
    if (status != CLOPT_OK) {
        print_library_error(NULL, clopt_errmsg(ctx));
        rc = exit_code_for(status, ends_with(c.o.objective, ".cl") || c.kernel_dir);
        clopt_context_destroy(ctx);
        return rc;
    }
    rc = report_check(&c, &r, clopt_context_device(ctx));
    close_context(ctx, program_cache);
    return rc;
}

/* See args.h. */
#include "args.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIM ((uint64_t)1 << 48)
#define MAX_COUNT ((uint64_t)1 << 62)
/* --shape: grid objectives have up to 3 axes. */
#define MAX_GRID_AXES 3

int parse_double_flag(const char *flag, const char *text, double *value)
{
    const char *why;
    if (clopt_parse_double(text, value, &why)) {
        print_error("%s '%s': %s", flag, text, why);
        return -1;
    }
    return 0;
}

int parse_count_flag(const char *flag, const char *text, uint64_t max, uint64_t *value)
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

int parse_positive_flag(const char *flag, const char *text, uint64_t max, uint64_t *value)
{
    if (parse_count_flag(flag, text, max, value))
        return EXIT_USAGE;
    if (*value == 0) {
        print_error("%s '%s': must be at least 1", flag, text);
        return EXIT_USAGE;
    }
    return 0;
}

int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int parse_init(struct run_args *a, const char *spec)
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

/* Whether a message of clopt_knobs_parse begins with the item it is about (a knob's name or
 * a quoted item): then it follows the flag after a space, else after a colon. */
static int about_an_item(const char *message)
{
    if (message[0] == '\'')
        return 1;
    for (size_t k = 0; clopt_knob_name(k, NULL); ++k) {
        const char *name = clopt_knob_name(k, NULL);
        const size_t n = strlen(name);
        if (!strncmp(message, name, n) && (message[n] == ' ' || message[n] == '='))
            return 1;
    }
    return 0;
}

int parse_knobs_flag(struct clopt_knobs *k, const char *spec, const char *flag)
{
    char err[512];
    if (clopt_knobs_parse(spec, k, err, sizeof err) == CLOPT_OK)
        return 0;
    print_error("%s%s%s", flag, about_an_item(err) ? " " : ": ", err);
    return -1;
}

int add_param(char *arg, struct clopt_param *params, size_t *count)
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

int usage_error(int c, int argc, char **argv, const char *command)
{
    if (c == ':')
        print_error("option '%s' needs a value (see clopt %s --help)", argv[optind - 1], command);
    else if (c != -1)
        print_error("unknown option '%s' for %s (see clopt %s --help)", argv[optind - 1], command,
                    command);
    else if (optind < argc)
        print_error("unexpected argument '%s' (see clopt %s --help)", argv[optind], command);
    else
        return 0;
    return EXIT_USAGE;
}

const char *program_cache_dir(const char *flag, char *buffer, size_t size)
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
    if (n > 0 && (size_t)n < size)
        return buffer;
    /* Never a cut-short path (it would name another directory): no cache, and say so (a
     * long XDG_CACHE_HOME is refused by open_context, which says why). */
    if (!(xdg && *xdg))
        fprintf(stderr,
                "clopt: warning: the program cache path under HOME is longer than %zu "
                "characters: running without the program cache (use --program-cache DIR)\n",
                size - 1);
    return NULL;
}

int check_output_path(const char *flag, const char *path)
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

FILE *open_input_file(const char *path, char *why, size_t size)
{
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    const char *problem = NULL;
    if (fd < 0 || fstat(fd, &st) != 0)
        problem = strerror(errno);
    else if (S_ISDIR(st.st_mode))
        problem = "a directory, not a regular file";
    else if (!S_ISREG(st.st_mode))
        problem = "not a regular file (a FIFO, device or socket)";
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        problem = strerror(errno);
    FILE *f = problem ? NULL : fdopen(fd, "rb");
    if (!f) {
        snprintf(why, size, "%s", problem ? problem : strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    return f;
}

int check_renamed_output(const char *flag, const char *path)
{
    const int rc = check_output_path(flag, path);
    struct stat st;
    if (rc || lstat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
        return rc;
    print_error("%s '%s' is not a regular file: clopt writes a new file and renames it over "
                "the old one, which would replace it; name a regular file",
                flag, path);
    return EXIT_USAGE;
}

/* The run option table: each long option with the handler that takes its value into the
 * run_args field at `offset`, and its bound where it has one. Handlers return 0 or a
 * usage status after saying why. */
struct run_flag;
typedef int (*flag_handler)(struct run_args *a, const struct run_flag *f, char *arg);

struct run_flag {
    const char *flag; /* "--dim" */
    int has_arg;
    flag_handler handle;
    size_t offset; /* of the field in struct run_args */
    uint64_t max;  /* counts */
};

#define FIELD(f) offsetof(struct run_args, f)
#define AT(a, f, type) ((type *)((char *)(a) + (f)->offset))

static int set_string(struct run_args *a, const struct run_flag *f, char *arg)
{
    *AT(a, f, const char *) = arg;
    return 0;
}

/* A number whose range the library checks (and names the flag and the range). */
static int set_double(struct run_args *a, const struct run_flag *f, char *arg)
{
    return parse_double_flag(f->flag, arg, AT(a, f, double)) ? EXIT_USAGE : 0;
}

static int set_nonnegative(struct run_args *a, const struct run_flag *f, char *arg)
{
    double d;
    if (parse_double_flag(f->flag, arg, &d))
        return EXIT_USAGE;
    if (d < 0) {
        print_error("%s '%s': must be >= 0", f->flag, arg);
        return EXIT_USAGE;
    }
    *AT(a, f, double) = d;
    return 0;
}

static int set_count(struct run_args *a, const struct run_flag *f, char *arg)
{
    return parse_count_flag(f->flag, arg, f->max, AT(a, f, uint64_t)) ? EXIT_USAGE : 0;
}

static int set_positive(struct run_args *a, const struct run_flag *f, char *arg)
{
    return parse_positive_flag(f->flag, arg, f->max, AT(a, f, uint64_t));
}

static int set_true(struct run_args *a, const struct run_flag *f, char *arg)
{
    (void)arg;
    *AT(a, f, int) = 1;
    return 0;
}

static int set_dim(struct run_args *a, const struct run_flag *f, char *arg)
{
    uint64_t v;
    if (parse_positive_flag(f->flag, arg, f->max, &v))
        return EXIT_USAGE;
    a->opts.dim = (size_t)v;
    a->dim_given = 1;
    return 0;
}

int parse_shape_flag(const char *flag, const char *arg, size_t *n_axes_out, size_t *shape)
{
    size_t n_axes = 0;
    uint64_t product = 1;
    for (const char *at = arg;; ++at) {
        const char *comma = strchr(at, ',');
        char axis_text[32];
        const size_t len = comma ? (size_t)(comma - at) : strlen(at);
        if (n_axes == MAX_GRID_AXES || len == 0 || len >= sizeof axis_text) {
            print_error("%s '%s': use 1 to %d axis lengths separated by commas, e.g. 1023,1025",
                        flag, arg, MAX_GRID_AXES);
            return EXIT_USAGE;
        }
        memcpy(axis_text, at, len);
        axis_text[len] = '\0';
        uint64_t v;
        if (parse_positive_flag(flag, axis_text, MAX_DIM, &v))
            return EXIT_USAGE;
        if (v > MAX_DIM / product) {
            print_error("%s '%s': the grid holds more than %llu elements", flag, arg,
                        (unsigned long long)MAX_DIM);
            return EXIT_USAGE;
        }
        product *= v;
        shape[n_axes++] = (size_t)v;
        if (!comma)
            break;
        at = comma;
    }
    *n_axes_out = n_axes;
    return 0;
}

/* --shape S0,S1[,S2]: theta as a grid in C order (the last axis fastest); n is the
 * product, which --dim, when given too, must equal (checked once all flags are read). */
static int set_shape(struct run_args *a, const struct run_flag *f, char *arg)
{
    if (parse_shape_flag(f->flag, arg, &a->opts.n_axes, a->opts.shape))
        return EXIT_USAGE;
    a->shape_given = 1;
    return 0;
}

/* --shape and --dim together must name one n; --shape alone sets it. */
static int settle_shape(struct run_args *a)
{
    if (!a->shape_given)
        return 0;
    size_t product = 1;
    for (size_t k = 0; k < a->opts.n_axes; ++k)
        product *= a->opts.shape[k];
    if (a->dim_given && product != a->opts.dim) {
        print_error("--shape holds %zu elements but --dim is %zu: drop --dim or make them agree",
                    product, a->opts.dim);
        return EXIT_USAGE;
    }
    a->opts.dim = product;
    a->dim_given = 1;
    return 0;
}

static int set_iters(struct run_args *a, const struct run_flag *f, char *arg)
{
    if (parse_count_flag(f->flag, arg, f->max, &a->opts.max_iters))
        return EXIT_USAGE;
    a->iters_given = 1;
    return 0;
}

static int set_max_shard(struct run_args *a, const struct run_flag *f, char *arg)
{
    uint64_t v;
    if (parse_count_flag(f->flag, arg, f->max, &v))
        return EXIT_USAGE;
    a->opts.max_shard_bytes = (size_t)v;
    return 0;
}

static int set_param(struct run_args *a, const struct run_flag *f, char *arg)
{
    (void)f;
    return add_param(arg, a->params, &a->opts.n_params);
}

static int set_init(struct run_args *a, const struct run_flag *f, char *arg)
{
    (void)f;
    a->init_spec = arg;
    return parse_init(a, arg) ? EXIT_USAGE : 0;
}

static int set_precision(struct run_args *a, const struct run_flag *f, char *arg)
{
    (void)f;
    if (!strcmp(arg, "float"))
        a->opts.precision = CLOPT_FLOAT;
    else if (!strcmp(arg, "double"))
        a->opts.precision = CLOPT_DOUBLE;
    else {
        print_error("--precision '%s': use float or double", arg);
        return EXIT_USAGE;
    }
    return 0;
}

/* Hyper-parameters given as words and stored as their CLOPT_ values. */
static const struct {
    const char *name, *flag, *word;
    double value;
} hyper_words[] = {{"line_search", "--line-search", "armijo", CLOPT_LINE_SEARCH_ARMIJO},
                   {"line_search", "--line-search", "wolfe", CLOPT_LINE_SEARCH_WOLFE},
                   {"cg_beta", "--cg-beta", "fr", CLOPT_CG_FR},
                   {"cg_beta", "--cg-beta", "pr", CLOPT_CG_PR},
                   {"cg_beta", "--cg-beta", "hs", CLOPT_CG_HS},
                   {"gd_step", "--step", "fixed", NAN},
                   {"gd_step", "--step", "bb1", CLOPT_STEP_BB1},
                   {"gd_step", "--step", "bb2", CLOPT_STEP_BB2}};

const char *hyper_word(const char *name, double value)
{
    for (size_t i = 0; i < sizeof hyper_words / sizeof *hyper_words; ++i)
        if (!strcmp(hyper_words[i].name, name) && hyper_words[i].value == value)
            return hyper_words[i].word;
    return NULL;
}

/* --line-search armijo|wolfe, --cg-beta fr|pr|hs, --step fixed|bb1|bb2. */
static int set_word(struct run_args *a, const struct run_flag *f, char *arg)
{
    for (size_t i = 0; i < sizeof hyper_words / sizeof *hyper_words; ++i)
        if (!strcmp(hyper_words[i].flag, f->flag) && !strcmp(hyper_words[i].word, arg)) {
            *AT(a, f, double) = hyper_words[i].value;
            return 0;
        }
    print_error("%s '%s': use %s", f->flag, arg,
                !strcmp(f->flag, "--cg-beta") ? "fr, pr or hs"
                : !strcmp(f->flag, "--step")  ? "fixed, bb1 or bb2"
                                              : "armijo or wolfe");
    return EXIT_USAGE;
}

static int set_knobs(struct run_args *a, const struct run_flag *f, char *arg)
{
    if (parse_knobs_flag(&a->opts.knobs, arg, f->flag))
        return EXIT_USAGE;
    a->knobs_given = 1;
    return 0;
}

static int set_budget(struct run_args *a, const struct run_flag *f, char *arg)
{
    if (parse_double_flag(f->flag, arg, &a->budget))
        return EXIT_USAGE;
    if (!(a->budget > 0)) {
        print_error("--budget '%s': must be > 0 seconds", arg);
        return EXIT_USAGE;
    }
    return 0;
}

static int show_help(struct run_args *a, const struct run_flag *f, char *arg)
{
    (void)f, (void)arg;
    print_command_usage(stdout, a->command);
    return -1;
}

static const struct run_flag run_flags[] = {
    {"--objective", 1, set_string, FIELD(opts.objective), 0},
    {"--param", 1, set_param, 0, 0},
    {"--dim", 1, set_dim, 0, MAX_DIM},
    {"--shape", 1, set_shape, 0, MAX_DIM},
    {"--init", 1, set_init, 0, 0},
    {"--seed", 1, set_count, FIELD(opts.seed), UINT64_MAX},
    {"--optimizer", 1, set_string, FIELD(opts.optimizer), 0},
    {"--lr", 1, set_nonnegative, FIELD(opts.lr), 0},
    {"--iters", 1, set_iters, 0, MAX_COUNT},
    {"--gtol", 1, set_nonnegative, FIELD(opts.gtol), 0},
    {"--ftol", 1, set_nonnegative, FIELD(opts.ftol), 0},
    {"--target", 1, set_double, FIELD(opts.target), 0},
    {"--loss-every", 1, set_positive, FIELD(opts.loss_every), MAX_COUNT},
    {"--precision", 1, set_precision, 0, 0},
    {"--out", 1, set_string, FIELD(out_path), 0},
    {"--trace", 1, set_string, FIELD(trace_path), 0},
    {"--json", 1, set_string, FIELD(json_path), 0},
    {"--device", 1, set_string, FIELD(device), 0},
    {"--devices", 1, set_string, FIELD(devices), 0},
    {"--tune", 1, set_knobs, 0, 0},
    {"--max-shard-bytes", 1, set_max_shard, 0, MAX_COUNT},
    {"--kernel-dir", 1, set_string, FIELD(kernel_dir), 0},
    {"--program-cache", 1, set_string, FIELD(program_cache), 0},
    {"--quiet", 0, set_true, FIELD(quiet), 0},
    {"--momentum", 1, set_double, FIELD(opts.momentum), 0},
    {"--dampening", 1, set_double, FIELD(opts.dampening), 0},
    {"--beta1", 1, set_double, FIELD(opts.beta1), 0},
    {"--beta2", 1, set_double, FIELD(opts.beta2), 0},
    {"--eps", 1, set_double, FIELD(opts.eps), 0},
    {"--weight-decay", 1, set_double, FIELD(opts.weight_decay), 0},
    {"--alpha", 1, set_double, FIELD(opts.alpha), 0},
    {"--amsgrad", 0, set_true, FIELD(opts.amsgrad), 0},
    {"--maximize", 0, set_true, FIELD(opts.maximize), 0},
    {"--schedule", 1, set_string, FIELD(opts.schedule), 0},
    {"--clip-value", 1, set_double, FIELD(opts.clip_value), 0},
    {"--clip-norm", 1, set_double, FIELD(opts.clip_norm), 0},
    {"--history", 1, set_double, FIELD(opts.history), 0},
    {"--c1", 1, set_double, FIELD(opts.c1), 0},
    {"--c2", 1, set_double, FIELD(opts.c2), 0},
    {"--max-ls", 1, set_double, FIELD(opts.max_ls), 0},
    {"--max-evals", 1, set_double, FIELD(opts.max_evals), 0},
    {"--line-search", 1, set_word, FIELD(opts.line_search), 0},
    {"--cg-beta", 1, set_word, FIELD(opts.cg_beta), 0},
    {"--step", 1, set_word, FIELD(opts.gd_step), 0},
    {"--checkpoint", 1, set_string, FIELD(opts.checkpoint), 0},
    {"--checkpoint-every", 1, set_positive, FIELD(opts.checkpoint_every), MAX_COUNT},
    {"--resume", 1, set_string, FIELD(resume_path), 0},
    {"--reps", 1, set_positive, FIELD(reps), 1000},
    {"--csv", 1, set_string, FIELD(csv_path), 0},
    {"--tuning-db", 1, set_string, FIELD(tuning_db), 0},
    {"--space", 1, set_string, FIELD(space), 0},
    {"--budget", 1, set_budget, 0, 0},
    {"--help", 0, show_help, 0, 0},
};
#define N_RUN_FLAGS (sizeof run_flags / sizeof *run_flags)
_Static_assert(N_RUN_FLAGS <= sizeof(((struct run_args *)0)->given), "run_args.given is too short");

int flag_given(const struct run_args *a, const char *flag)
{
    for (size_t i = 0; i < N_RUN_FLAGS; ++i)
        if (!strcmp(run_flags[i].flag, flag))
            return a->given[i];
    return 0;
}

/* getopt_long's table, made from run_flags: val is 256 + the row, 'h' for --help. */
static const struct option *run_options(void)
{
    static struct option options[N_RUN_FLAGS + 1];
    for (size_t i = 0; i < N_RUN_FLAGS; ++i) {
        const int help = !strcmp(run_flags[i].flag, "--help");
        options[i] = (struct option){run_flags[i].flag + 2,
                                     run_flags[i].has_arg ? required_argument : no_argument, NULL,
                                     help ? 'h' : 256 + (int)i};
    }
    return options;
}

int parse_run_args(int argc, char **argv, struct run_args *a)
{
    struct clopt_options *o = &a->opts;
    clopt_options_init(o);
    o->params = a->params;
    a->command = argv[0];
    a->device = getenv("CLOPT_DEVICE");
    a->kernel_dir = getenv("CLOPT_KERNEL_DIR");
    const struct option *options = run_options();
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        const struct run_flag *f = c == 'h' ? &run_flags[N_RUN_FLAGS - 1]
                                   : c >= 256 && c < 256 + (int)N_RUN_FLAGS ? &run_flags[c - 256]
                                                                            : NULL;
        if (!f)
            return usage_error(c, argc, argv, a->command);
        a->given[f - run_flags] = 1;
        const int rc = f->handle(a, f, optarg);
        if (rc)
            return rc;
    }
    if (usage_error(-1, argc, argv, a->command))
        return EXIT_USAGE;
    /* --devices names the devices itself: with --device it is ambiguous, and a
     * CLOPT_DEVICE from the environment gives way to it. */
    if (a->devices && flag_given(a, "--device")) {
        print_error("--device and --devices are both given: name the devices in one of them");
        return EXIT_USAGE;
    }
    if (a->devices)
        a->device = NULL;
    if (settle_shape(a))
        return EXIT_USAGE;
    if (o->checkpoint_every && !o->checkpoint) {
        print_error("--checkpoint-every needs --checkpoint FILE");
        return EXIT_USAGE;
    }
    a->program_cache = program_cache_dir(a->program_cache, a->program_cache_buffer,
                                         sizeof a->program_cache_buffer);
    return 0;
}

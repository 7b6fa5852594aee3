/* clopt checkpoint info|export FILE: what a checkpoint holds, and its theta and state as
 * .npy files, read by the library without a device. */
#include "args.h"
#include "commands.h"
#include "report.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct checkpoint_args {
    const char *file, *out, *state, *json;
};

static const struct option checkpoint_options[] = {
    {"out", required_argument, NULL, 'o'},
    {"state", required_argument, NULL, 's'},
    {"json", required_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* argv[0] is the subcommand; 0, a usage status, or -1 after printing help. */
static int parse_checkpoint_args(int argc, char **argv, struct checkpoint_args *c)
{
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", checkpoint_options, NULL)) != -1) {
        if (opt == 'h')
            return print_command_usage(stdout, "checkpoint"), -1;
        if (opt == 'o' || opt == 's' || opt == 'j')
            *(opt == 'o' ? &c->out : opt == 's' ? &c->state : &c->json) = optarg;
        else
            return usage_error(opt, argc, argv, "checkpoint");
    }
    if (optind != argc - 1) {
        print_error(optind < argc ? "checkpoint %s: one checkpoint FILE, not '%s'"
                                  : "checkpoint %s: which checkpoint? (clopt checkpoint %s FILE)",
                    argv[0], optind < argc ? argv[argc - 1] : argv[0]);
        return EXIT_USAGE;
    }
    c->file = argv[optind];
    return 0;
}

/* The configuration's "key=value" lines as a JSON object of strings. */
static int add_config_json(cJSON *root, const char *config)
{
    cJSON *o = cJSON_AddObjectToObject(root, "config");
    char line[1024];
    for (const char *at = config; o && *at;) {
        const char *end = strchr(at, '\n');
        const size_t len = end ? (size_t)(end - at) : strlen(at);
        snprintf(line, sizeof line, "%.*s", (int)len, at);
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            if (!cJSON_AddStringToObject(o, line, eq + 1))
                return 0;
        }
        at = end ? end + 1 : at + len;
    }
    return o != NULL;
}

static int info_json(const char *path, const char *file, const struct clopt_checkpoint_info *i)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddStringToObject(root, "checkpoint", file) &&
             cJSON_AddStringToObject(root, "objective", i->objective) &&
             cJSON_AddStringToObject(root, "optimizer", i->optimizer) &&
             cJSON_AddNumberToObject(root, "n", (double)i->n) &&
             cJSON_AddStringToObject(root, "precision", precision_name(i->precision)) &&
             cJSON_AddNumberToObject(root, "iteration", (double)i->iteration) &&
             cJSON_AddNumberToObject(root, "steps", (double)i->steps) &&
             cJSON_AddNumberToObject(root, "state_vectors", (double)i->n_state) &&
             cJSON_AddBoolToObject(root, "stopped", i->stopped) && add_config_json(root, i->config);
    return emit_json(path, root, ok);
}

static void info_text(const char *file, const struct clopt_checkpoint_info *i)
{
    printf("checkpoint  %s\n", file);
    printf("objective   %s\n", i->objective);
    printf("optimizer   %s\n", i->optimizer);
    printf("n           %llu (%s)\n", (unsigned long long)i->n, precision_name(i->precision));
    printf("iteration   %llu (%llu steps applied%s)\n", (unsigned long long)i->iteration,
           (unsigned long long)i->steps,
           i->stopped ? "; the run had met a stopping test" : "; --resume continues from here");
    printf("vectors     theta");
    for (size_t k = 0; k < i->n_state; ++k)
        printf(", state%zu", k);
    printf(" (%llu %s values each)\n", (unsigned long long)i->n, precision_name(i->precision));
    printf("configuration:\n");
    for (const char *at = i->config; *at;) {
        const char *end = strchr(at, '\n');
        const int len = (int)(end ? (size_t)(end - at) : strlen(at));
        printf("  %.*s\n", len, at);
        at = end ? end + 1 : at + len;
    }
}

static int checkpoint_info(const struct checkpoint_args *c)
{
    if (c->out || c->state) {
        print_error("checkpoint info: --out and --state are options of clopt checkpoint export");
        return EXIT_USAGE;
    }
    int rc;
    if (c->json && (rc = check_output_path("--json", c->json)) != 0)
        return rc;
    static struct clopt_checkpoint_info info;
    char err[1024];
    const int status = clopt_checkpoint_info(c->file, &info, err, sizeof err);
    if (status != CLOPT_OK) {
        print_error("%s", err);
        return exit_code_for(status, 0);
    }
    if (c->json)
        return info_json(c->json, c->file, &info);
    info_text(c->file, &info);
    return EXIT_SUCCESS;
}

static int checkpoint_export(const struct checkpoint_args *c)
{
    if (c->json) {
        print_error("checkpoint export: --json is an option of clopt checkpoint info");
        return EXIT_USAGE;
    }
    if (!c->out && !c->state) {
        print_error("checkpoint export: say where: --out THETA.npy and/or --state PREFIX");
        return EXIT_USAGE;
    }
    int rc;
    if (c->out && (rc = check_renamed_output("--out", c->out)) != 0)
        return rc;
    char err[1024];
    const int status = clopt_checkpoint_export(c->file, c->out, c->state, err, sizeof err);
    if (status != CLOPT_OK) {
        print_error("%s", err);
        return status == CLOPT_ERR_IO ? EXIT_FAILURE : exit_code_for(status, 0);
    }
    return EXIT_SUCCESS;
}

int cmd_checkpoint(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_command_usage(argc < 2 ? stderr : stdout, "checkpoint");
        return argc < 2 ? EXIT_USAGE : EXIT_SUCCESS;
    }
    const int info = !strcmp(argv[1], "info");
    if (!info && strcmp(argv[1], "export") != 0) {
        print_error("checkpoint '%s': use clopt checkpoint info FILE or clopt checkpoint export "
                    "FILE --out THETA.npy",
                    argv[1]);
        return EXIT_USAGE;
    }
    struct checkpoint_args c = {0};
    const int rc = parse_checkpoint_args(argc - 1, argv + 1, &c);
    if (rc)
        return rc < 0 ? EXIT_SUCCESS : rc;
    return info ? checkpoint_info(&c) : checkpoint_export(&c);
}

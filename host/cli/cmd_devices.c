/* clopt devices: every platform and device; clopt objectives: the built-in objectives. */
#include "commands.h"
#include "args.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_name(enum clopt_device_kind kind)
{
    return kind == CLOPT_DEVICE_GPU ? "GPU" : kind == CLOPT_DEVICE_CPU ? "CPU" : "other";
}

/* The devices as a JSON array of objects, to path ("-": stdout). */
static int write_devices_json(const char *path, const struct clopt_device_info *infos, size_t n)
{
    cJSON *root = cJSON_CreateArray();
    int ok = root != NULL;
    for (size_t i = 0; ok && i < n; ++i) {
        const struct clopt_device_info *d = &infos[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(root, o) &&
             cJSON_AddNumberToObject(o, "index", (double)d->index) &&
             cJSON_AddStringToObject(o, "platform", d->platform) &&
             cJSON_AddStringToObject(o, "name", d->name) &&
             cJSON_AddStringToObject(o, "driver_version", d->driver_version) &&
             cJSON_AddStringToObject(o, "kind", kind_name(d->kind)) &&
             cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d->global_mem_bytes) &&
             cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d->max_alloc_bytes) &&
             cJSON_AddNumberToObject(o, "compute_units", (double)d->compute_units) &&
             cJSON_AddBoolToObject(o, "has_fp64", d->has_fp64);
    }
    return emit_json(path, root, ok);
}

static int list_devices(const char *json_path)
{
    struct clopt_device_info *infos = NULL;
    size_t n = 0;
    int status = clopt_list_devices(&infos, &n);
    if (status == CLOPT_ERR_NO_DEVICE) {
        print_error("no OpenCL device found: install a driver, or PoCL for the CPU "
                    "(apt-get install pocl-opencl-icd)");
        return EXIT_FAILURE;
    }
    if (status != CLOPT_OK) {
        print_error("listing devices failed: %s", clopt_strerror(status));
        return EXIT_FAILURE;
    }
    if (json_path) {
        status = write_devices_json(json_path, infos, n);
        free(infos);
        return status;
    }
    /* Columns as wide as the longest name, so long device names keep the table aligned. */
    int name_width = 4, platform_width = 8;
    for (size_t i = 0; i < n; ++i) {
        if ((int)strlen(infos[i].name) > name_width)
            name_width = (int)strlen(infos[i].name);
        if ((int)strlen(infos[i].platform) > platform_width)
            platform_width = (int)strlen(infos[i].platform);
    }
    printf("%-5s %-5s %-*s  %-*s  %10s  %10s  %4s\n", "index", "type", name_width, "name",
           platform_width, "platform", "memory", "max alloc", "fp64");
    for (size_t i = 0; i < n; ++i)
        printf("%-5zu %-5s %-*s  %-*s  %6.1f GiB  %6.1f GiB  %4s\n", infos[i].index,
               kind_name(infos[i].kind), name_width, infos[i].name, platform_width,
               infos[i].platform, (double)infos[i].global_mem_bytes / (1 << 30),
               (double)infos[i].max_alloc_bytes / (1 << 30), infos[i].has_fp64 ? "yes" : "no");
    free(infos);
    return EXIT_SUCCESS;
}

static int is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/* clopt devices [--json [FILE|-]] (also --json=FILE). */
int cmd_devices(int argc, char **argv)
{
    if (argc == 2 && is_help(argv[1]))
        return print_command_usage(stdout, "devices"), EXIT_SUCCESS;
    const char *json = NULL;
    if (argc >= 2 && !strncmp(argv[1], "--json=", 7) && argc == 2)
        json = argv[1] + 7;
    else if (argc >= 2 && !strcmp(argv[1], "--json") && argc <= 3)
        json = argc == 3 ? argv[2] : "-";
    else if (argc > 1) {
        print_error("'devices' takes no arguments but --json [FILE|-]: '%s'", argv[1]);
        return EXIT_USAGE;
    }
    int rc;
    if (json && (rc = check_output_path("--json", json)) != 0)
        return rc;
    return list_devices(json);
}

int cmd_objectives(int argc, char **argv)
{
    if (argc == 2 && is_help(argv[1]))
        return print_command_usage(stdout, "objectives"), EXIT_SUCCESS;
    if (argc > 1) {
        print_error("'objectives' takes no arguments");
        return EXIT_USAGE;
    }
    for (const char *const *name = clopt_objective_names(); *name; ++name) {
        const char *formula, *minimum;
        char params[512];
        if (clopt_objective_describe(*name, &formula, &minimum, params, sizeof params))
            continue;
        double lr = 0;
        clopt_objective_suggested_lr(*name, &lr);
        printf("%s\n  L(theta) = %s\n  minimum:   %s\n  params:    %s\n  gd lr: %g\n", *name,
               formula, minimum, *params ? params : "none", lr);
    }
    return EXIT_SUCCESS;
}

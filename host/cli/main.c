/* clopt command-line tool: turns flags and files into library calls and prints results;
 * one file per command (commands.h). Exit status: 0 stopped normally, 2 bad usage or input,
 * 3 diverged, 4 gradient check failed, 1 other failures. */
#include "commands.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"devices", cmd_devices}, {"run", cmd_run},   {"check", cmd_check},
    {"bench", cmd_bench},     {"tune", cmd_tune}, {"objectives", cmd_objectives},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(cli_usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(cli_usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "--version")) {
        puts("clopt 0.1.0");
        return EXIT_SUCCESS;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; ++i)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    print_error("unknown command '%s': use devices, objectives, run, check, bench, tune or help",
                cmd);
    return EXIT_USAGE;
}

/* clopt command-line tool: turns flags and files into library calls and prints results;
 * one file per command (commands.h). Exit status: 0 stopped normally, 2 bad usage or input,
 * 3 diverged, 4 gradient check failed, 1 other failures. */
#include "commands.h"
#include "ranks.h"
#include "report.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"devices", cmd_devices},       {"run", cmd_run},   {"check", cmd_check},
    {"bench", cmd_bench},           {"tune", cmd_tune}, {"objectives", cmd_objectives},
    {"checkpoint", cmd_checkpoint},
};

/* What a command printed must have reached stdout: a closed pipe or a full disk is a
 * failure (exit 1, unless the command failed already). */
static int finish_stdout(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        print_error("writing to standard output failed: %s", strerror(errno));
        return rc ? rc : EXIT_FAILURE;
    }
    return rc;
}

/* clopt help [COMMAND]: the summary, or the command's own help. */
static int help(int argc, char **argv)
{
    if (argc < 3) {
        print_usage(stdout);
        return EXIT_SUCCESS;
    }
    if (argc > 3 || print_command_usage(stdout, argv[2]) != 0) {
        print_error("help '%s': no such command (use devices, objectives, run, check, bench, "
                    "tune or checkpoint)",
                    argv[2]);
        return EXIT_USAGE;
    }
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    /* A closed stdout (clopt ... | head) is a write error to report, not a silent death
     * before the outputs that matter (a checkpoint, the tuning database) are stored. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        return finish_stdout(help(argc, argv));
    if (!strcmp(cmd, "--version")) {
        printf("clopt %s\n", clopt_version());
        return finish_stdout(EXIT_SUCCESS);
    }
    /* `clopt run` under mpirun is one rank of several (host/mpi/); its ranks end together. */
    if (!strcmp(cmd, "run")) {
        cli_ranks_start(&argc, &argv);
        return cli_ranks_finish(finish_stdout(cmd_run(argc - 1, argv + 1)));
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; ++i)
        if (!strcmp(cmd, commands[i].name))
            return finish_stdout(commands[i].run(argc - 1, argv + 1));
    print_error("unknown command '%s': use devices, objectives, run, check, bench, tune, "
                "checkpoint or help",
                cmd);
    return EXIT_USAGE;
}

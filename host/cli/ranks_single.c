/* The CLI's ranks in a build without MPI: always one process. */
#include "ranks.h"

void cli_ranks_start(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}

size_t cli_rank(void)
{
    return 0;
}

size_t cli_rank_count(void)
{
    return 1;
}

const char *cli_rank_device(int *rc)
{
    *rc = 0;
    return NULL;
}

int cli_ranks_attach(struct clopt_context *ctx)
{
    (void)ctx;
    return 0;
}

int cli_ranks_finish(int rc)
{
    return rc;
}

/* The CLI's ranks over MPI (built with CLOPT_MPI): MPI starts only when the program runs
 * under mpirun with more than one process, so a plain `clopt run` behaves exactly as in a
 * build without MPI. The library gets three callbacks (struct clopt_ranks): a gather in
 * rank order, a neighbour exchange for stencil halos, and a logical OR for stopping
 * together; none of them reduces numbers, so no result depends on the rank count. */
#include "ranks.h"
#include "report.h"

#include <mpi.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a failed rank waits for the others at the end before aborting them all: they
 * may be waiting for it inside a collective of the run and would never come. */
#define FINISH_WAIT_SECONDS 3.0

/* The CLI is one process with one MPI world; this is its state, not the library's. */
static struct {
    int active;
    int rank, size, local_rank, local_size;
    MPI_Comm world;   /* the run's collectives */
    MPI_Comm end;     /* the final agreement only, never mixed with a run's collectives */
    int saved_stderr; /* ranks > 0: the real standard error; stderr goes to a file meanwhile */
    FILE *kept;       /* ranks > 0: what this rank wrote to stderr */
    char device[24];
} g = {.saved_stderr = -1};

static int env_size(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof *names; ++i) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return atoi(v);
    }
    return 1;
}

void cli_ranks_start(int *argc, char ***argv)
{
    if (env_size() <= 1)
        return;
    MPI_Init(argc, argv);
    MPI_Comm_dup(MPI_COMM_WORLD, &g.world);
    MPI_Comm_dup(MPI_COMM_WORLD, &g.end);
    MPI_Comm_rank(g.world, &g.rank);
    MPI_Comm_size(g.world, &g.size);
    MPI_Comm node;
    MPI_Comm_split_type(g.world, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &g.local_rank);
    MPI_Comm_size(node, &g.local_size);
    MPI_Comm_free(&node);
    g.active = g.size > 1;
    if (!g.active || g.rank == 0)
        return;
    /* Rank 0 alone prints: the others' output would repeat it. Their stderr is kept in a
     * file, shown only when their failure is the one to report. */
    if (!freopen("/dev/null", "w", stdout))
        return;
    fflush(stderr);
    g.kept = tmpfile();
    g.saved_stderr = g.kept ? dup(STDERR_FILENO) : -1;
    if (g.saved_stderr >= 0)
        dup2(fileno(g.kept), STDERR_FILENO);
}

size_t cli_rank(void)
{
    return g.active ? (size_t)g.rank : 0;
}

size_t cli_rank_count(void)
{
    return g.active ? (size_t)g.size : 1;
}

const char *cli_rank_device(int *rc)
{
    *rc = 0;
    if (!g.active)
        return NULL;
    struct clopt_device_info *infos = NULL;
    size_t count = 0;
    if (clopt_list_devices(&infos, &count) != CLOPT_OK || count <= 1) {
        free(infos);
        return NULL; /* one device: every rank of the node shares it (PoCL's CPU) */
    }
    free(infos);
    if ((size_t)g.local_size > count) {
        print_error("%d ranks run on this node but it has %zu OpenCL devices: start at most %zu "
                    "ranks per node, or name one device for all with --device",
                    g.local_size, count, count);
        *rc = EXIT_USAGE;
        return NULL;
    }
    snprintf(g.device, sizeof g.device, "%d", g.local_rank);
    return g.device;
}

/* MPI counts are ints: larger pieces are refused (the callers send bounded chunks). */
static int gatherv(void *user, const void *send, void *recv, const size_t *bytes)
{
    (void)user;
    int *counts = malloc(2 * (size_t)g.size * sizeof *counts);
    if (!counts)
        return 1;
    int *displs = counts + g.size;
    size_t at = 0;
    for (int r = 0; r < g.size; ++r) {
        if (bytes[r] > INT_MAX || at > INT_MAX) {
            free(counts);
            print_error("rank %d: a gather of %zu bytes is larger than MPI's int counts", g.rank,
                        bytes[r]);
            return 1;
        }
        counts[r] = (int)bytes[r];
        displs[r] = (int)at;
        at += bytes[r];
    }
    const int err =
        MPI_Allgatherv(send, counts[g.rank], MPI_BYTE, recv, counts, displs, MPI_BYTE, g.world);
    free(counts);
    return err != MPI_SUCCESS;
}

static int neighbours(void *user, const void *to_prev, void *from_prev, const void *to_next,
                      void *from_next, size_t bytes)
{
    (void)user;
    if (bytes > INT_MAX)
        return 1;
    const int n = (int)bytes, tag = 17;
    MPI_Request req[4];
    int k = 0;
    if (g.rank > 0) {
        MPI_Irecv(from_prev, n, MPI_BYTE, g.rank - 1, tag, g.world, &req[k++]);
        MPI_Isend(to_prev, n, MPI_BYTE, g.rank - 1, tag, g.world, &req[k++]);
    }
    if (g.rank + 1 < g.size) {
        MPI_Irecv(from_next, n, MPI_BYTE, g.rank + 1, tag, g.world, &req[k++]);
        MPI_Isend(to_next, n, MPI_BYTE, g.rank + 1, tag, g.world, &req[k++]);
    }
    const int err = MPI_Waitall(k, req, MPI_STATUSES_IGNORE);
    return err != MPI_SUCCESS;
}

static int any(void *user, int flag, int *result)
{
    (void)user;
    /* A logical OR of 0/1 flags: exact in any order. */
    const int err = MPI_Allreduce(&flag, result, 1, MPI_INT, MPI_LOR, g.world);
    return err != MPI_SUCCESS;
}

int cli_ranks_attach(struct clopt_context *ctx)
{
    if (!g.active)
        return 0;
    const struct clopt_ranks ranks = {.rank = (size_t)g.rank,
                                      .size = (size_t)g.size,
                                      .allgatherv = gatherv,
                                      .neighbours = neighbours,
                                      .any = any};
    if (clopt_context_set_ranks(ctx, &ranks) != CLOPT_OK) {
        print_error("%s", clopt_errmsg(ctx));
        return EXIT_FAILURE;
    }
    return 0;
}

/* Shows what this rank wrote to stderr on the real one. */
static void show_kept(void)
{
    if (!g.kept || g.saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(g.saved_stderr, STDERR_FILENO);
    rewind(g.kept);
    char line[1024];
    while (fgets(line, sizeof line, g.kept))
        fputs(line, stderr);
    fflush(stderr);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_ranks_finish(int rc)
{
    if (!g.active) {
        if (g.size == 1)
            MPI_Finalize();
        return rc;
    }
    fflush(stdout);
    fflush(stderr);
    int *all = calloc((size_t)g.size, sizeof *all);
    if (!all) {
        show_kept();
        MPI_Abort(MPI_COMM_WORLD, rc ? rc : EXIT_FAILURE);
    }
    MPI_Request req;
    MPI_Iallgather(&rc, 1, MPI_INT, all, 1, MPI_INT, g.end, &req);
    const double deadline = now_seconds() + FINISH_WAIT_SECONDS;
    int done = 0;
    const struct timespec pause = {0, 1000000};
    for (;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        /* A rank that succeeded waits as long as it takes: rank 0 may be writing files. */
        if (done || (rc && now_seconds() > deadline))
            break;
        nanosleep(&pause, NULL);
    }
    if (!done) {
        show_kept();
        print_error("rank %d of %d failed (exit status %d) while the others were still running: "
                    "stopping every rank",
                    g.rank, g.size, rc);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    /* Every rank is here: one of them reports, and all exit with its status. */
    int reporter = -1;
    for (int r = 0; r < g.size && reporter < 0; ++r)
        if (all[r])
            reporter = r;
    const int status = reporter < 0 ? 0 : all[reporter];
    free(all);
    if (reporter == g.rank && g.rank != 0)
        show_kept();
    if (g.kept)
        fclose(g.kept);
    MPI_Comm_free(&g.world);
    MPI_Comm_free(&g.end);
    MPI_Finalize();
    return status;
}

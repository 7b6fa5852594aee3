/* The CLI's ranks: one process, or one of several under mpirun when the build has MPI
 * (host/mpi/ranks_mpi.c; host/cli/ranks_single.c otherwise). Only rank 0 prints and writes
 * files; the library does the collective work through struct clopt_ranks. */
#ifndef CLOPT_CLI_RANKS_H
#define CLOPT_CLI_RANKS_H

#include "clopt.h"

#include <stddef.h>

/* Starts MPI when this program runs under mpirun with more than one process (and the build
 * has MPI). On ranks other than 0, standard output is discarded and standard error is kept
 * aside, to be shown only when this rank's failure is the one to report. */
void cli_ranks_start(int *argc, char ***argv);
size_t cli_rank(void);
size_t cli_rank_count(void);
/* The device this rank should use when none is named: NULL (the default device) when the
 * node has one device, else the local rank's index as text. *rc is set to 2 (with a message)
 * when a node runs more ranks than it has devices. */
const char *cli_rank_device(int *rc);
/* Hands the context the callbacks; 0 or an exit status. */
int cli_ranks_attach(struct clopt_context *ctx);
/* Ends the ranks with one exit status: every rank's status is gathered (a failure is
 * reported once: by rank 0, else by the lowest failing rank), or, when a failed rank does
 * not hear from the others within seconds (they wait inside the run for it), it shows its
 * message and aborts every rank. Returns the exit status to use. */
int cli_ranks_finish(int rc);

#endif /* CLOPT_CLI_RANKS_H */

/* clopt run's output files: checked before any work, and the trace made ready only once
 * the solver exists and any resume was accepted, so that a refused run leaves every file
 * as it was. */
#ifndef CLOPT_CLI_OUTPUTS_H
#define CLOPT_CLI_OUTPUTS_H

#include "args.h"

#include <stdint.h>
#include <stdio.h>

/* Before the run: each output's directory exists and takes the very file a write creates
 * (the temporary file beside --out and --checkpoint; the --trace and --json files
 * themselves, created and removed when new, opened without truncation when not), and no
 * output is the same file (device and inode) as an input or another output. --resume F
 * with --checkpoint F is allowed. 0, or EXIT_USAGE after one line. Nothing is changed. */
int check_run_outputs(const struct run_args *a);

/* A new trace: the file truncated, the header written. NULL on failure (errno). */
FILE *open_fresh_trace(const char *path);

/* The trace of a resumed run whose first row is iteration `first`: the rows an earlier run
 * wrote before it are kept, everything from it on (and a closing row off the loss_every
 * grid, and a line cut short) removed; a missing file is started afresh. Positioned at the
 * end for appending. NULL on failure (errno). */
FILE *open_resumed_trace(const char *path, uint64_t first, uint64_t loss_every);

#endif /* CLOPT_CLI_OUTPUTS_H */

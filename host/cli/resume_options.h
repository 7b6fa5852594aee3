/* --resume F takes the run's options from F: what the checkpoint's configuration records
 * (objective and parameters, dimension, precision, optimizer and hyper-parameters,
 * loss-every, and the learning rate, schedule, iteration limit and stopping tests of the run
 * that wrote it) fills every option the command line did not give. An option given again
 * must agree with F (the library refuses the resume naming the first difference), except
 * those that may change: the learning rate, schedule, stopping tests, iteration limit,
 * knobs, device and outputs. */
#ifndef CLOPT_CLI_RESUME_OPTIONS_H
#define CLOPT_CLI_RESUME_OPTIONS_H

#include "args.h"

/* Fills a from a->resume_path's configuration (nothing without --resume). 0, or the exit
 * status after one line (EXIT_USAGE for a checkpoint that cannot be read). */
int options_from_checkpoint(struct run_args *a);

#endif /* CLOPT_CLI_RESUME_OPTIONS_H */

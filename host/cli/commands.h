/* The clopt commands (one file each); argv[0] is the command's name. Each returns the exit
 * status. */
#ifndef CLOPT_CLI_COMMANDS_H
#define CLOPT_CLI_COMMANDS_H

int cmd_devices(int argc, char **argv);
int cmd_objectives(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);

#endif /* CLOPT_CLI_COMMANDS_H */

/* commands.h — the inspectd subcommands; each returns the process exit code. */
#ifndef INSPECTD_COMMANDS_H
#define INSPECTD_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_cameras(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_model(int argc, char **argv);

#endif

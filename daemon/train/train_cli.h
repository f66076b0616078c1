/* train_cli.h — the DINO training options `inspectd train` and `inspectd eval` both take on their
 * command lines (model shape, batch, crops, learning rate, teacher, budget, threads, seed): one
 * getopt_long table and one parser, so both commands accept the same names with the same ranges. */
#ifndef INSPECTD_TRAIN_CLI_H
#define INSPECTD_TRAIN_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "train.h"

/* getopt_long returns values from here on for the shared options; a command's own start lower. */
enum { TRAIN_CLI_FIRST = 0x1000 };

/* Writes the n_own entries of own (without a terminating null entry), then the shared ones, then
 * the null entry into out (cap entries). Returns 0, or -1 when out is too small. */
int train_cli_options(const struct option *own, int n_own, struct option *out, int cap);

/* Applies a value getopt_long returned: 1 when key is not a shared option (the command handles
 * it); 0 when arg was stored in t; -1 when arg is not a number in the option's range, after
 * printing "inspectd CMD: bad value 'ARG' for --NAME (RANGE)" to stderr. */
int train_cli_apply(const char *cmd, int key, const char *arg, struct train_options *t);

/* Prints the usage lines of the shared options but --minutes and --epochs (whose meaning each
 * command states), with train_defaults' values. */
void train_cli_usage(FILE *out);

#endif

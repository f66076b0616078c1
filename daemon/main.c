/* main.c — the inspectd command line: subcommands dispatch here. */
#include <stdio.h>
#include <string.h>

#include "version.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: inspectd COMMAND [OPTIONS]\n"
                 "       inspectd --version | --help\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 64 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("inspectd %s\n", INSPECTD_VERSION);
        return 0;
    }
    fprintf(stderr, "inspectd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 64;
}

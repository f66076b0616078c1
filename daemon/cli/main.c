/* main.c — the inspectd command line: subcommands dispatch here. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sysexits.h>

#include "array.h"
#include "commands.h"
#include "gemm.h"
#include "base/version.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"run", cmd_run, "the daemon: capture from the cameras into SQLite, serve the HTTP API"},
    {"eval", cmd_eval, "one-class anomaly benchmark (Fashion-MNIST): pixels, untrained, trained"},
    {"train", cmd_train,
     "self-supervised pretraining (DINO, BYOL, Barlow Twins, SimCLR), with checkpoints"},
    {"score", cmd_score, "score image files against the active model of a database (JSON lines)"},
    {"export", cmd_export, "the flagged frames of a database as a tar archive (images, heatmaps)"},
    {"model", cmd_model,
     "an outside checkpoint as a recipe's model (import); a model's patch tokens (tokens)"},
    {"cameras", cmd_cameras, "list the cameras the drivers can see (GigE/USB3 Vision, libcamera)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: inspectd COMMAND [OPTIONS]\n"
                 "       inspectd --version | --help\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n`inspectd COMMAND --help` describes a command's options.\n");
}

/* The daemon stops on SIGTERM and SIGINT and reloads on SIGHUP from its own sigtimedwait() loop
 * (cmd_run.c), which needs them blocked in every thread. Threads start long before main(): the
 * shared libraries' constructors start some (OpenBLAS its worker, lttng-ust its listeners), and
 * they inherit the mask of that moment. A stop signal that found one of them unblocked took the
 * default action and killed the daemon during its start-up (exit status -15, 143 in a shell)
 * instead of the clean stop that follows READY. So they are blocked here, before any
 * constructor runs (an executable's .preinit_array runs before its libraries' initialisers), and
 * main() gives every other command the mask it was started with. */
static sigset_t inherited_mask;

static void block_stop_signals(int argc, char **argv, char **envp)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, &inherited_mask);
}

__attribute__((used, section(".preinit_array"))) static void (*const preinit_block_stop)(
    int, char **, char **) = block_stop_signals;

int main(int argc, char **argv)
{
    /* only `inspectd run` takes its stop signals from a sigtimedwait() loop */
    if (argc < 2 || strcmp(argv[1], "run") != 0) sigprocmask(SIG_SETMASK, &inherited_mask, NULL);
    /* the daemon's training child is run as /proc/self/exe, which names the process "exe" in
     * ps, top and the process-list columns of the journal: it is inspectd */
    char comm[16] = "";
    if (prctl(PR_GET_NAME, comm) == 0 && strcmp(comm, "exe") == 0) prctl(PR_SET_NAME, "inspectd");
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EX_USAGE : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        char engine[128];
        gemm_describe(engine, sizeof engine);
        printf("inspectd %s\ngemm: %s\n", INSPECTD_VERSION, engine);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "inspectd: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EX_USAGE;
}

/* start.h — where a training run starts from. In order of precedence: resuming an interrupted
 * run (its checkpoint, step count and schedules), a warm start from the active model when it is
 * the same network (its weights, and its DINO centre and optimiser state when its file holds
 * them: train_warm_start), the weights of [trainer] import (`inspectd train --init`), random. A
 * fresh start (POST /api/v1/train {"fresh": true}, `inspectd train --fresh`) skips the first two;
 * so does a change of the network, for the warm start, and a change of the method (dino, byol,
 * barlow, simclr: [trainer] method), for the run or model trained by another. */
#ifndef INSPECTD_TRAIN_START_H
#define INSPECTD_TRAIN_START_H

#include <stdbool.h>

enum train_start { TRAIN_START_RESUME, TRAIN_START_WARM, TRAIN_START_IMPORT, TRAIN_START_RANDOM };

struct train_start_facts {
    bool interrupted; /* the checkpoint of an interrupted run is there to resume */
    bool fresh;       /* a fresh start was asked for */
    bool active_same; /* there is an active model, and it is the network this run trains */
    bool import;      /* weights trained elsewhere are configured to start from */
    bool interrupted_other_method; /* the interrupted run trained with another method */
    bool active_other_method;      /* the active model was trained with another method */
};

/* The start the facts call for. */
enum train_start train_start_choose(const struct train_start_facts *f);

/* "resume", "warm", "import" or "random". */
const char *train_start_name(enum train_start s);

/* The start of that name, or -1. */
int train_start_parse(const char *name, enum train_start *out);

#endif

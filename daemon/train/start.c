/* start.c — the order of precedence of a training run's start (see start.h). */
#include "train/start.h"

#include <string.h>

#include "array.h"

static const char *const names[] = {"resume", "warm", "import", "random"};

enum train_start train_start_choose(const struct train_start_facts *f)
{
    if (f->interrupted && !f->fresh && !f->interrupted_other_method) return TRAIN_START_RESUME;
    if (f->active_same && !f->fresh && !f->active_other_method) return TRAIN_START_WARM;
    if (f->import) return TRAIN_START_IMPORT;
    return TRAIN_START_RANDOM;
}

const char *train_start_name(enum train_start s)
{
    return (unsigned)s < ARRAY_LEN(names) ? names[s] : "random";
}

int train_start_parse(const char *name, enum train_start *out)
{
    for (unsigned i = 0; i < ARRAY_LEN(names); i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (enum train_start)i;
            return 0;
        }
    return -1;
}

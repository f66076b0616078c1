/* frame.c — the names of the defect kinds a synthetic source draws (see frame.h). */
#include "frame.h"

#include <string.h>

#include "array.h"

static const char *const names[] = {"none", "scratch", "hole", "stain"};

const char *frame_defect_name(enum defect_kind k)
{
    return (size_t)k < ARRAY_LEN(names) ? names[k] : "none";
}

int frame_defect_parse(const char *name, enum defect_kind *out)
{
    for (size_t k = 0; k < ARRAY_LEN(names); k++)
        if (strcmp(name, names[k]) == 0) return *out = (enum defect_kind)k, 0;
    return -1;
}

/* checkpoint.c — model ↔ safetensors mapping with full validation. */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int prefixed(char *out, size_t outsz, const char *prefix, const char *name)
{
    int n = snprintf(out, outsz, "%s%s", prefix, name);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int checkpoint_load_model(struct vit_model *m, const struct st_file *f, const char *prefix,
                          char *err, size_t errsz)
{
    char name[256];
    const struct st_tensor **found = calloc((size_t)m->ntensors, sizeof *found);
    if (!found) {
        if (errsz) snprintf(err, errsz, "out of memory");
        return -1;
    }
    int rc = 0;
    for (int i = 0; !rc && i < m->ntensors; i++) {
        const struct vit_tensor *t = &m->tensors[i];
        if (prefixed(name, sizeof name, prefix, t->name)) {
            rc = -1;
            if (errsz) snprintf(err, errsz, "tensor name too long");
        } else if (!(found[i] = st_find(f, name))) {
            rc = -1;
            if (errsz) snprintf(err, errsz, "missing tensor %s (model config differs?)", name);
        } else {
            rc = st_check_shape(found[i], t->ndim, t->shape, err, errsz);
        }
    }
    size_t plen = strlen(prefix);
    int expected = m->ntensors, under_prefix = 0;
    for (int i = 0; !rc && i < f->ntensors; i++)
        if (strncmp(f->tensors[i].name, prefix, plen) == 0) under_prefix++;
    if (!rc && under_prefix != expected) {
        for (int i = 0; i < f->ntensors; i++) {
            const char *nm = f->tensors[i].name;
            if (strncmp(nm, prefix, plen) == 0 && !vit_find_tensor(m, nm + plen)) {
                if (errsz) snprintf(err, errsz, "unexpected tensor %s (model config differs?)", nm);
                break;
            }
        }
        rc = -1;
    }
    for (int i = 0; !rc && i < m->ntensors; i++)
        st_read_f32(found[i], m->params + m->tensors[i].offset);
    free(found);
    return rc;
}

int checkpoint_save_models(const char *path, const struct vit_model *const *models,
                           const char *const *prefixes, int nmodels, const char *const *keys,
                           const char *const *values, int nmeta, char *err, size_t errsz)
{
    int total = 0;
    for (int k = 0; k < nmodels; k++) total += models[k]->ntensors;
    struct st_out *out = calloc((size_t)total, sizeof *out);
    char(*names)[256] = calloc((size_t)total, sizeof *names);
    int rc = -1;
    if (!out || !names) {
        if (errsz) snprintf(err, errsz, "out of memory");
        goto done;
    }
    int j = 0;
    for (int k = 0; k < nmodels; k++) {
        const struct vit_model *m = models[k];
        for (int i = 0; i < m->ntensors; i++, j++) {
            const struct vit_tensor *t = &m->tensors[i];
            if (prefixed(names[j], sizeof names[j], prefixes[k], t->name)) {
                if (errsz) snprintf(err, errsz, "tensor name too long");
                goto done;
            }
            out[j] = (struct st_out){names[j], t->ndim, t->shape, m->params + t->offset};
        }
    }
    rc = st_save(path, out, total, keys, values, nmeta, err, errsz);
done:
    free(out);
    free(names);
    return rc;
}

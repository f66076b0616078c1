/* checkpoint.c — model ↔ safetensors mapping with full validation. */
#include "checkpoint.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int prefixed(char *out, size_t outsz, const char *prefix, const char *name)
{
    int n = snprintf(out, outsz, "%s%s", prefix, name);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static bool task_head(const char *name)
{
    return strncmp(name, "aux_head.", 9) == 0 || strncmp(name, "defect_head.", 12) == 0 ||
           strncmp(name, "predictor.", 10) == 0;
}

static int load_model(struct vit_model *m, const struct st_file *f, const char *prefix,
                      bool tasks_optional, char *err, size_t errsz)
{
    char name[256];
    const struct st_tensor **found = calloc((size_t)m->ntensors, sizeof *found);
    if (!found) {
        if (errsz) snprintf(err, errsz, "out of memory");
        return -1;
    }
    int rc = 0, expected = m->ntensors;
    for (int i = 0; !rc && i < m->ntensors; i++) {
        const struct vit_tensor *t = &m->tensors[i];
        if (prefixed(name, sizeof name, prefix, t->name)) {
            rc = -1;
            if (errsz) snprintf(err, errsz, "tensor name too long");
        } else if (!(found[i] = st_find(f, name))) {
            if (tasks_optional && task_head(t->name)) {
                expected--;
                continue;
            }
            rc = -1;
            if (errsz) snprintf(err, errsz, "missing tensor %s (model config differs?)", name);
        } else {
            rc = st_check_shape(found[i], t->ndim, t->shape, err, errsz);
        }
    }
    size_t plen = strlen(prefix);
    int under_prefix = 0;
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
        if (found[i]) st_read_f32(found[i], m->params + m->tensors[i].offset);
    free(found);
    return rc;
}

int checkpoint_load_model(struct vit_model *m, const struct st_file *f, const char *prefix,
                          char *err, size_t errsz)
{
    return load_model(m, f, prefix, false, err, errsz);
}

int checkpoint_load_model_tasks_optional(struct vit_model *m, const struct st_file *f,
                                         const char *prefix, char *err, size_t errsz)
{
    return load_model(m, f, prefix, true, err, errsz);
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

/* Appends one tensor per model tensor, named prefix + name, viewing `base` (params or moments). */
static int add_views(struct st_out *out, char (*names)[256], int *j, const struct vit_model *m,
                     const char *prefix, const float *base)
{
    for (int i = 0; i < m->ntensors; i++, (*j)++) {
        const struct vit_tensor *t = &m->tensors[i];
        if (prefixed(names[*j], sizeof names[*j], prefix, t->name)) return -1;
        out[*j] = (struct st_out){names[*j], t->ndim, t->shape, base + t->offset};
    }
    return 0;
}

int checkpoint_save_training(const char *path, const struct dino_step *s, const char *const *keys,
                             const char *const *values, int nmeta, char *err, size_t errsz)
{
    const struct vit_model *m = &s->student;
    int total = 4 * m->ntensors + 1;
    struct st_out *out = calloc((size_t)total, sizeof *out);
    char(*names)[256] = calloc((size_t)total, sizeof *names);
    const char **k = calloc((size_t)nmeta + 1, sizeof *k),
               **v = calloc((size_t)nmeta + 1, sizeof *v);
    int rc = -1, j = 0;
    char step[32];
    if (!out || !names || !k || !v) {
        if (errsz) snprintf(err, errsz, "out of memory");
        goto done;
    }
    if (add_views(out, names, &j, m, "student.", m->params) ||
        add_views(out, names, &j, &s->teacher, "teacher.", s->teacher.params) ||
        add_views(out, names, &j, m, "adam_m.", m->adam_m) ||
        add_views(out, names, &j, m, "adam_v.", m->adam_v)) {
        if (errsz) snprintf(err, errsz, "tensor name too long");
        goto done;
    }
    out[j++] = (struct st_out){"dino.center", 1, &s->model.head_out, s->center};
    for (int i = 0; i < nmeta; i++) k[i] = keys[i], v[i] = values[i];
    snprintf(step, sizeof step, "%ld", m->adam_step);
    k[nmeta] = "adam_step", v[nmeta] = step;
    rc = st_save(path, out, j, k, v, nmeta + 1, err, errsz);
done:
    free(out), free(names), free(k), free(v);
    return rc;
}

static int load_moments(struct vit_model *m, const struct st_file *f, const char *prefix,
                        float *dst, char *err, size_t errsz)
{
    char name[256];
    for (int i = 0; i < m->ntensors; i++) {
        const struct vit_tensor *t = &m->tensors[i];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        const struct st_tensor *st = st_find(f, name);
        if (!st) {
            if (errsz) snprintf(err, errsz, "missing tensor %s", name);
            return -1;
        }
        if (st_check_shape(st, t->ndim, t->shape, err, errsz)) return -1;
    }
    for (int i = 0; i < m->ntensors; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, m->tensors[i].name);
        st_read_f32(st_find(f, name), dst + m->tensors[i].offset);
    }
    return 0;
}

int checkpoint_load_training(struct dino_step *s, const struct st_file *f, char *err, size_t errsz)
{
    const struct st_tensor *c = st_find(f, "dino.center");
    const char *step = st_meta(f, "adam_step");
    char *end = NULL;
    errno = 0;
    long adam_step = step && *step ? strtol(step, &end, 10) : -1;
    if (!c || c->ndim != 1 || c->shape[0] != s->model.head_out || adam_step < 0 || *end || errno) {
        if (errsz) snprintf(err, errsz, "not a training checkpoint of this model (centre/step)");
        return -1;
    }
    /* validate everything into scratch copies first so a bad file changes nothing */
    size_t n = s->student.nparams;
    float *buf = malloc(sizeof(float) * 4 * n);
    if (!buf) {
        if (errsz) snprintf(err, errsz, "out of memory");
        return -1;
    }
    struct vit_model sv = s->student, tv = s->teacher;
    sv.params = buf, tv.params = buf + n;
    int rc = checkpoint_load_model(&sv, f, "student.", err, errsz);
    if (!rc) rc = checkpoint_load_model(&tv, f, "teacher.", err, errsz);
    if (!rc) rc = load_moments(&s->student, f, "adam_m.", buf + 2 * n, err, errsz);
    if (!rc) rc = load_moments(&s->student, f, "adam_v.", buf + 3 * n, err, errsz);
    if (!rc) {
        memcpy(s->student.params, buf, sizeof(float) * n);
        memcpy(s->teacher.params, buf + n, sizeof(float) * n);
        memcpy(s->student.adam_m, buf + 2 * n, sizeof(float) * n);
        memcpy(s->student.adam_v, buf + 3 * n, sizeof(float) * n);
        st_read_f32(c, s->center);
        s->student.adam_step = adam_step;
    }
    free(buf);
    return rc;
}

/* fuzz_safetensors.c — libFuzzer target: a .safetensors file as inspectd loads checkpoints and
 * bank files: st_parse, then the model metadata (model_read_config), the weights of a plain
 * export and of a checkpoint's teacher (checkpoint_load_model) and a whole training state
 * (checkpoint_load_training), into one tiny model whose tensors the seed corpus matches.
 *
 * Invariants checked: a refused file leaves an error message and an empty st_file; an accepted
 * one has tensors whose bytes lie inside the buffer's data section, sorted by unique name and
 * each findable by it, with numel = product of the shape; a refused load leaves the model's
 * weights untouched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "checkpoint.h"
#include "scoring/model.h"
#include "safetensors.h"
#include "tiny_step.h"

static struct dino_step step;
static float *pristine; /* the student's weights as created: a refused load must keep them */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    if (tiny_step_create(&step, 1, err, sizeof err)) abort();
    pristine = malloc(sizeof(float) * step.student.nparams);
    if (!pristine) abort();
    memcpy(pristine, step.student.params, sizeof(float) * step.student.nparams);
    return 0;
}

static void check_parsed(const struct st_file *f)
{
    for (int i = 0; i < f->ntensors; i++) {
        const struct st_tensor *t = &f->tensors[i];
        if (!t->name || st_find(f, t->name) != t) abort();
        if (i > 0 && strcmp(f->tensors[i - 1].name, t->name) >= 0) abort(); /* sorted, unique */
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) abort();
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
        if (n != t->numel) abort();
        if (t->bytes < f->buf + 8 || t->bytes + t->numel * 4 > f->buf + f->len) abort();
        if (t->numel) {
            volatile uint8_t first = t->bytes[0], last = t->bytes[t->numel * 4 - 1];
            (void)first, (void)last;
        }
    }
    for (int i = 0; i < f->nmeta; i++)
        if (!f->meta_keys[i] || st_meta(f, f->meta_keys[i]) == NULL) abort();
}

static void reset(void)
{
    memcpy(step.student.params, pristine, sizeof(float) * step.student.nparams);
}

static void check_untouched(void)
{
    if (memcmp(step.student.params, pristine, sizeof(float) * step.student.nparams) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    struct st_file f;
    char err[256] = "";
    if (st_parse(buf, size, &f, err, sizeof err)) {
        if (err[0] == '\0' || f.buf || f.ntensors || f.nmeta) abort();
        return 0;
    }
    check_parsed(&f);

    struct scoring_model m = {0};
    struct vit_config c;
    err[0] = '\0';
    if (model_read_config(&f, "fuzz", &m, &c, err, sizeof err) && err[0] == '\0') abort();

    static const char *const prefixes[] = {"", "teacher.", "student."};
    for (size_t i = 0; i < ARRAY_LEN(prefixes); i++) {
        err[0] = '\0';
        reset();
        if (checkpoint_load_model(&step.student, &f, prefixes[i], err, sizeof err)) {
            if (err[0] == '\0') abort();
            check_untouched();
        }
    }
    err[0] = '\0';
    reset();
    if (checkpoint_load_training(&step, &f, err, sizeof err)) {
        if (err[0] == '\0') abort();
        check_untouched();
    }
    st_free(&f);
    return 0;
}

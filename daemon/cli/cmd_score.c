/* cmd_score.c — `inspectd score`: image files scored against the active model of a database's
 * recipe, one JSON line each (and optionally their heatmaps as JPEG files). */
#define LOG_TAG "score"
#include "heatmap.h"
#include "log.h"

#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "commands.h"
#include "parse.h"
#include "image.h"
#include "imageset.h"
#include "scoring/model.h"
#include "store/scoring_store.h"
#include "gemm.h"
#include "vit.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd score --db FILE [--recipe NAME] [--heatmap-dir DIR] [--threads N] "
            "IMAGE...\n"
            "  --db FILE           the database whose active model scores\n"
            "  --recipe NAME       the recipe whose model scores (default: the database's only\n"
            "                      recipe with a model)\n"
            "  --heatmap-dir DIR   also write each image's heatmap as DIR/NAME.heatmap.jpg\n"
            "  --grid              also print each image's patch scores: \"grid\": {\"w\", \"h\",\n"
            "                      \"values\"}, one grid over the whole image, row by row (the\n"
            "                      tiles' grids stitched back for a model with input tiles)\n"
            "  --threads N         workers (default 2)\n"
            "  --gemm B            matrix products: auto (onednn when built with it), onednn\n"
            "                      or openblas (default auto)\n"
            "  --precision P       matmul inputs: f32, or bf16 (onednn on a CPU with AVX-512\n"
            "                      BF16 or AMX) (default f32)\n"
            "Prints one JSON line per image: file, score, score_norm, flagged, model (and\n"
            "heatmap, grid); an unreadable image gets a line with \"error\", and the exit code is "
            "1.\n");
}

static int read_file(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int rc = fseek(f, 0, SEEK_END);
    long n = rc == 0 ? ftell(f) : -1;
    *data = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc(n ? (size_t)n : 1) : NULL;
    rc = *data && fread(*data, 1, (size_t)n, f) == (size_t)n ? 0 : -1;
    fclose(f);
    if (rc) free(*data);
    *size = (size_t)n;
    return rc;
}

static int write_heatmap(const char *dir, const char *file, const void *data, size_t size,
                         const struct scoring_model *m, const float *grid, int gh, int gw,
                         char *out, size_t outsz, char *err, size_t errsz)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", file);
    snprintf(out, outsz, "%s/%s.heatmap.jpg", dir, basename(copy));
    uint8_t *jpeg = NULL;
    size_t len = 0;
    if (heatmap_jpeg(data, size, grid, gh, gw, m->threshold, &jpeg, &len, err, errsz)) return -1;
    FILE *f = fopen(out, "wb");
    int rc = f && fwrite(jpeg, 1, len, f) == len ? 0 : -1;
    if (f && fclose(f)) rc = -1;
    if (rc) snprintf(err, errsz, "cannot write %.*s", (int)(errsz > 16 ? errsz - 16 : 0), out);
    free(jpeg);
    return rc;
}

/* Scores one file and prints its line. Returns 0, or 1 when it could not be scored. */
/* The grid (gh, gw) as JSON: {"w", "h", "values"}. */
static json_t *grid_json(const float *grid, int gh, int gw)
{
    json_t *values = json_array();
    for (int i = 0; values && i < gh * gw; i++)
        json_array_append_new(values, json_real((double)grid[i]));
    return json_pack("{s:i, s:i, s:o}", "w", gw, "h", gh, "values", values);
}

static int score_one(const char *file, struct scoring_model *m, const char *version,
                     const char *heatmap_dir, bool want_grid, int threads)
{
    void *data = NULL;
    size_t size = 0;
    char err[512] = "", heat[PATH_MAX + 32] = "";
    /* the whole image, shrunk (fit) or cut into tiles as the model was trained */
    struct image_set one = {.size = m->size, .channels = m->channels};
    struct image_view view = model_view(m, NULL);
    float score = 0, *grid = NULL, *frame = NULL;
    int ok = 1, w = 0, h = 0, gh = m->gh, gw = m->gw;
    if (read_file(file, &data, &size)) ok = 0, snprintf(err, sizeof err, "cannot read");
    if (ok && (image_probe(data, size, &w, &h) != IMAGE_OK ||
               image_set_add_region(&one, data, size, file, &view) < 1))
        ok = 0, snprintf(err, sizeof err, "not a decodable JPEG or PNG image");
    if (ok && !(grid = malloc(sizeof(float) * (size_t)m->gh * m->gw * one.n)))
        ok = 0, snprintf(err, sizeof err, "out of memory");
    struct model_input in = model_input_of(&one);
    if (ok && model_score_input(m, &in, threads, &score, grid, err, sizeof err)) ok = 0;
    if (ok && (heatmap_dir || want_grid) && view.tiles &&
        (!(frame = malloc(sizeof(float) * HEATMAP_MAX_GRID * HEATMAP_MAX_GRID)) ||
         model_frame_grid(m, NULL, w, h, grid, frame, &gh, &gw)))
        ok = 0, snprintf(err, sizeof err, "out of memory");
    if (ok && heatmap_dir &&
        write_heatmap(heatmap_dir, file, data, size, m, frame ? frame : grid, gh, gw, heat,
                      sizeof heat, err, sizeof err))
        ok = 0;
    json_t *j = ok ? json_pack("{s:s, s:f, s:f, s:b, s:s}", "file", file, "score", (double)score,
                               "score_norm", (double)(score / m->threshold), "flagged",
                               score > m->threshold, "model", version)
                   : json_pack("{s:s, s:s}", "file", file, "error", err);
    if (ok && heatmap_dir) json_object_set_new(j, "heatmap", json_string(heat));
    if (ok && want_grid) json_object_set_new(j, "grid", grid_json(frame ? frame : grid, gh, gw));
    char *line = json_dumps(j, JSON_COMPACT);
    puts(line ? line : "{\"error\":\"out of memory\"}");
    free(line);
    json_decref(j);
    free(data), free(grid), free(frame);
    image_set_free(&one);
    return ok ? 0 : 1;
}

int cmd_score(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", 1, 0, 'd'},     {"heatmap-dir", 1, 0, 'm'}, {"threads", 1, 0, 't'},
        {"gemm", 1, 0, 'g'},   {"precision", 1, 0, 'p'},   {"help", 0, 0, 'h'},
        {"recipe", 1, 0, 'r'}, {"grid", 0, 0, 'G'},        {0, 0, 0, 0}};
    const char *db = NULL, *heatmap_dir = NULL, *recipe = NULL;
    int threads = 2, c;
    bool want_grid = false;
    enum gemm_backend backend = GEMM_AUTO;
    enum gemm_precision precision = GEMM_F32;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            db = optarg;
        else if (c == 'r')
            recipe = optarg;
        else if (c == 'm')
            heatmap_dir = optarg;
        else if (c == 'G')
            want_grid = true;
        else if (c == 't' && parse_int(optarg, 1, 64, &threads) == 0)
            continue;
        else if (c == 'g' && gemm_backend_parse(optarg, &backend) == 0)
            continue;
        else if (c == 'p' && gemm_precision_parse(optarg, &precision) == 0)
            continue;
        else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (!db || optind == argc) {
        fprintf(stderr, "inspectd score: --db FILE and at least one image are required\n");
        usage(stderr);
        return EX_USAGE;
    }
    char err[512];
    if (gemm_select(backend, precision, err, sizeof err)) {
        fprintf(stderr, "inspectd score: %s\n", err);
        return EX_CONFIG;
    }
    struct scoring_store *ss = scoring_store_open(db, err, sizeof err);
    struct model_row row;
    char name[64], why[600] = "";
    int picked =
        ss ? scoring_store_pick_recipe(ss, recipe, true, name, sizeof name, why, sizeof why) : -1;
    int found = picked == 0 ? scoring_store_active_model(ss, name, &row) : -1;
    if (found <= 0) {
        fprintf(stderr, "inspectd score: %s\n",
                !ss          ? err
                : picked > 0 ? why
                : found == 0 ? "the recipe's model is gone"
                             : scoring_store_errmsg(ss));
        scoring_store_close(ss);
        return 1;
    }
    scoring_store_close(ss);
    struct scoring_model m;
    if (model_load(&m, row.path, row.bank, err, sizeof err)) {
        fprintf(stderr, "inspectd score: model %s: %s\n", row.version, err);
        return 1;
    }
    gemm_set_threads(threads);
    int failed = 0;
    for (int i = optind; i < argc; i++)
        failed |= score_one(argv[i], &m, row.version, heatmap_dir, want_grid, threads);
    model_free(&m);
    return failed;
}

/* synthetic.c — the synthetic camera: renders a product (tile, disc or nut) on a striped, grainy
 * belt with pose, lighting and sensor-noise jitter, and now and then a scratch, hole or stain. */
#include "synthetic.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "driver.h"
#include "parse.h"
#include "rng.h"

#define LOG_TAG "synthetic"
#include "log.h"

/* Everything that varies from frame to frame except the defect and the noise. Lengths in pixels,
 * (u, v) are product coordinates: origin at the product centre, rotated with it. */
struct scene {
    int width, height;
    float s; /* min(width, height): the unit every size is a fraction of */
    enum synthetic_shape shape;
    float cx, cy, R, cosr, sinr;
    float product[3];
    float belt_offset, stripe_period;
    int rail;
    float gain, grad_x, grad_y, tint[3];
    float shadow_dx, shadow_dy, shadow_blur;
    float reach2; /* squared distance from the centre beyond which neither product nor shadow is */
    uint32_t grain_seed;
};

struct defect {
    enum defect_kind kind;
    float cu, cv;   /* centre, product coordinates */
    float hu, hv;   /* scratch: half the segment, which runs from c - h to c + h */
    float radius;   /* hole/stain radius, scratch half-width */
    float reach2;   /* squared distance from the centre beyond which the weight is 0 */
    float strength; /* weight at the core, in (0, 1] */
    float tone[3];
    float wobble[4]; /* stain outline: two amplitudes and two phases */
};

#define VISIBLE_WEIGHT 0.02f /* a pixel whose defect weight is at least this counts in the box */

void synthetic_params_default(struct synthetic_params *p)
{
    *p = (struct synthetic_params){.width = 640,
                                   .height = 480,
                                   .fps = 20,
                                   .seed = 1,
                                   .defect_rate = 0.1,
                                   .defect_scale = 1.0,
                                   .format = FRAME_JPEG,
                                   .jpeg_quality = 90,
                                   .frames = 0,
                                   .shape = SYNTHETIC_SQUARE};
}

static int set_enum(const char *value, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0) return *out = i, 0;
    return -1;
}

int synthetic_param_set(struct synthetic_params *p, const char *key, const char *value, char *err,
                        size_t errsz)
{
    long l;
    double d;
    int e;
    if (strcmp(key, "width") == 0 || strcmp(key, "height") == 0) {
        if (parse_long(value, 16, 8192, &l))
            return driver_fail(err, errsz, "%s must be an integer in [16, 8192]", key);
        *(key[0] == 'w' ? &p->width : &p->height) = (int)l;
    } else if (strcmp(key, "fps") == 0) {
        if (parse_double(value, 0, 1000, false, &d))
            return driver_fail(err, errsz, "fps must be a number in [0, 1000] (0: unpaced)");
        p->fps = d;
    } else if (strcmp(key, "seed") == 0) {
        if (parse_long(value, 0, 0x7fffffffL, &l))
            return driver_fail(err, errsz, "seed must be an integer in [0, 2147483647]");
        p->seed = (uint64_t)l;
    } else if (strcmp(key, "defect_rate") == 0) {
        if (parse_double(value, 0, 1, false, &d))
            return driver_fail(err, errsz, "defect_rate must be a number in [0, 1]");
        p->defect_rate = d;
    } else if (strcmp(key, "defect_scale") == 0) {
        if (parse_double(value, 0.1, 4, false, &d))
            return driver_fail(err, errsz, "defect_scale must be a number in [0.1, 4]");
        p->defect_scale = d;
    } else if (strcmp(key, "format") == 0) {
        static const char *const names[] = {"jpeg", "rgb8", "mono8"};
        static const enum frame_format formats[] = {FRAME_JPEG, FRAME_RGB8, FRAME_MONO8};
        if (set_enum(value, names, 3, &e))
            return driver_fail(err, errsz, "format must be jpeg, rgb8 or mono8");
        p->format = formats[e];
    } else if (strcmp(key, "jpeg_quality") == 0) {
        if (parse_long(value, 1, 100, &l))
            return driver_fail(err, errsz, "jpeg_quality must be an integer in [1, 100]");
        p->jpeg_quality = (int)l;
    } else if (strcmp(key, "frames") == 0) {
        if (parse_long(value, 0, 0x7fffffffL, &l))
            return driver_fail(err, errsz, "frames must be an integer >= 0 (0: endless)");
        p->frames = (uint64_t)l;
    } else if (strcmp(key, "defect_region") == 0) {
        int x, y, w, h, n = -1;
        if (sscanf(value, "%d,%d,%d,%d%n", &x, &y, &w, &h, &n) != 4 || n < 0 || value[n] || x < 0 ||
            y < 0 || w < 1 || h < 1 || x > 8192 || y > 8192 || w > 8192 || h > 8192)
            return driver_fail(err, errsz,
                               "defect_region must be x,y,w,h in pixels (x, y >= 0; w, h >= 1)");
        p->region_x = x, p->region_y = y, p->region_w = w, p->region_h = h;
    } else if (strcmp(key, "shape") == 0) {
        static const char *const names[] = {"square", "disc", "nut", "mixed"};
        if (set_enum(value, names, 4, &e))
            return driver_fail(err, errsz, "shape must be square, disc, nut or mixed");
        p->shape = (enum synthetic_shape)e;
    } else {
        return driver_fail(err, errsz, "unknown key '%s' for the synthetic driver", key);
    }
    return 0;
}

/* --- geometry ------------------------------------------------------------------------------- */

static inline float clampf(float x, float lo, float hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* fminf/fmaxf without their NaN rules, so they compile to one instruction. */
static inline float minf(float a, float b)
{
    return a < b ? a : b;
}

static inline float maxf(float a, float b)
{
    return a > b ? a : b;
}

static inline float smoothstep(float e0, float e1, float x)
{
    float t = clampf((x - e0) / (e1 - e0), 0, 1);
    return t * t * (3 - 2 * t);
}

/* Signed distance (pixels, negative inside) from product point (u, v) to the outline. */
static float shape_sd(enum synthetic_shape shape, float R, float u, float v)
{
    switch (shape) {
    case SYNTHETIC_DISC:
        return sqrtf(u * u + v * v) - R;
    case SYNTHETIC_NUT: {
        const float kx = -0.866025404f, ky = 0.5f, kz = 0.577350269f;
        float r = 0.92f * R, x = fabsf(u), y = fabsf(v);
        float d = 2 * minf(kx * x + ky * y, 0);
        x -= d * kx, y -= d * ky;
        x -= clampf(x, -kz * r, kz * r), y -= r;
        float hex = sqrtf(x * x + y * y) * (y < 0 ? -1 : 1);
        float bore = 0.38f * R - sqrtf(u * u + v * v);
        return maxf(hex, bore);
    }
    default: { /* rounded rectangle R x 0.72R, corner radius 0.2R */
        float rc = 0.2f * R;
        float qx = fabsf(u) - (R - rc), qy = fabsf(v) - (0.72f * R - rc);
        float ox = maxf(qx, 0), oy = maxf(qy, 0);
        return sqrtf(ox * ox + oy * oy) + minf(maxf(qx, qy), 0) - rc;
    }
    }
}

static inline void to_product(const struct scene *sc, float x, float y, float *u, float *v)
{
    float dx = x - sc->cx, dy = y - sc->cy;
    *u = sc->cosr * dx + sc->sinr * dy;
    *v = -sc->sinr * dx + sc->cosr * dy;
}

static inline uint32_t hash3(uint32_t x, uint32_t y, uint32_t z)
{
    uint32_t h = x * 0x8da6b343u ^ y * 0xd8163841u ^ z * 0xcb1ab31fu;
    h ^= h >> 15, h *= 0x2c1b3c6du;
    h ^= h >> 12, h *= 0x297a2d39u;
    return h ^ (h >> 15);
}

/* --- the frame's random choices ------------------------------------------------------------- */

static void plan_scene(const struct synthetic_params *p, uint64_t seq, struct scene *sc)
{
    static const float colours[3][3] = {
        {200, 168, 118}, /* tile: biscuit */
        {160, 172, 190}, /* disc: steel */
        {196, 164, 86},  /* nut: brass */
    };
    struct rng r = rng_seed(p->seed, seq * 4 + 0);
    sc->width = p->width, sc->height = p->height;
    sc->s = (float)(p->width < p->height ? p->width : p->height);
    sc->shape = p->shape == SYNTHETIC_MIXED ? (enum synthetic_shape)(rng_next(&r) % 3) : p->shape;
    sc->R = 0.3f * sc->s * (float)rng_range(&r, 0.95, 1.05);
    sc->cx = 0.5f * p->width + (float)rng_range(&r, -0.06, 0.06) * p->width;
    sc->cy = 0.5f * p->height + (float)rng_range(&r, -0.05, 0.05) * p->height;
    float rot = (float)rng_range(&r, -0.26, 0.26); /* about +-15 degrees */
    sc->cosr = cosf(rot), sc->sinr = sinf(rot);
    float tone = (float)rng_range(&r, 0.96, 1.04);
    for (int c = 0; c < 3; c++) sc->product[c] = colours[sc->shape][c] * tone;
    sc->stripe_period = fmaxf(4, 0.06f * sc->s);
    sc->belt_offset = (float)fmod((double)(seq % 1000003) * 0.037 * sc->s, 65536.0);
    sc->rail = (int)(0.08f * p->height);
    sc->gain = (float)rng_range(&r, 0.88, 1.12);
    float dir = (float)rng_range(&r, 0, 6.283185307);
    sc->grad_x = 0.08f * cosf(dir) / sc->s, sc->grad_y = 0.08f * sinf(dir) / sc->s;
    for (int c = 0; c < 3; c++) sc->tint[c] = (float)rng_range(&r, 0.97, 1.03);
    sc->shadow_dx = 0.025f * sc->s, sc->shadow_dy = 0.035f * sc->s;
    sc->shadow_blur = fmaxf(1, 0.03f * sc->s);
    float reach = 1.25f * sc->R + 0.05f * sc->s + 2 * sc->shadow_blur + 2;
    sc->reach2 = reach * reach;
    sc->grain_seed = (uint32_t)p->seed;
}

/* A point of the product at least `margin` inside its outline, drawn from r. */
static void place_inside(const struct scene *sc, struct rng *r, float margin, float *u, float *v)
{
    for (int tries = 0; tries < 64; tries++) {
        *u = (float)rng_range(r, -sc->R, sc->R);
        *v = (float)rng_range(r, -sc->R, sc->R);
        if (shape_sd(sc->shape, sc->R, *u, *v) < -margin) return;
    }
    *u = 0.65f * sc->R, *v = 0; /* inside every shape, clear of the nut's bore */
}

/* Whether image pixel (x, y) is where p draws defects. */
static bool in_region(const struct synthetic_params *p, float x, float y)
{
    return p->region_w <= 0 || (x >= p->region_x && x < p->region_x + p->region_w &&
                                y >= p->region_y && y < p->region_y + p->region_h);
}

/* With a defect region: a point of the product at least `margin` inside its outline whose image
 * position is inside the region (kept as drawn when there is none: the defect is then clipped
 * away). */
static void place_in_region(const struct synthetic_params *p, const struct scene *sc, struct rng *r,
                            float margin, float *u, float *v)
{
    place_inside(sc, r, margin, u, v);
    for (int tries = 0; p->region_w > 0 && tries < 256; tries++) {
        float x = sc->cx + sc->cosr * *u - sc->sinr * *v,
              y = sc->cy + sc->sinr * *u + sc->cosr * *v;
        if (in_region(p, x, y) && in_region(p, x + 1, y + 1) && in_region(p, x - 1, y - 1)) return;
        place_inside(sc, r, margin, u, v);
    }
}

static void plan_defect(const struct synthetic_params *p, uint64_t seq, const struct scene *sc,
                        struct defect *d)
{
    memset(d, 0, sizeof *d);
    struct rng r = rng_seed(p->seed, seq * 4 + 1);
    bool defective = rng_uniform(&r) < p->defect_rate;
    d->kind = (enum defect_kind)(DEFECT_SCRATCH + rng_next(&r) % 3);
    float k = (float)p->defect_scale, s = sc->s;
    switch (d->kind) {
    case DEFECT_SCRATCH: {
        place_in_region(p, sc, &r, 0.3f * sc->R, &d->cu, &d->cv);
        float half = sc->R * (float)rng_range(&r, 0.35, 0.7) * k;
        float a = (float)rng_range(&r, 0, 3.14159265);
        d->hu = half * cosf(a), d->hv = half * sinf(a);
        d->radius = fmaxf(0.6f, 0.007f * s) * k;
        float reach = half + d->radius + 2;
        d->reach2 = reach * reach;
        d->strength = 0.9f;
        bool bright = rng_uniform(&r) < 1.0 / 3;
        for (int c = 0; c < 3; c++) d->tone[c] = bright ? 255 : 38;
        break;
    }
    case DEFECT_HOLE:
        d->radius = fmaxf(1.5f, 0.035f * s) * k * (float)rng_range(&r, 0.8, 1.2);
        place_in_region(p, sc, &r, d->radius + 0.04f * sc->R, &d->cu, &d->cv);
        d->reach2 = (d->radius + 2) * (d->radius + 2);
        d->strength = 1;
        d->tone[0] = 16, d->tone[1] = 14, d->tone[2] = 12;
        break;
    default: {
        d->radius = fmaxf(3, 0.08f * s) * k * (float)rng_range(&r, 0.8, 1.2);
        place_in_region(p, sc, &r, 0.6f * d->radius, &d->cu, &d->cv);
        d->reach2 = (1.5f * d->radius) * (1.5f * d->radius);
        d->strength = 0.75f;
        static const float rust[3] = {120, 62, 30}, oil[3] = {64, 60, 52};
        const float *tone = rng_uniform(&r) < 0.5 ? rust : oil;
        memcpy(d->tone, tone, sizeof d->tone);
        d->wobble[0] = (float)rng_range(&r, 0.1, 0.25);
        d->wobble[1] = (float)rng_range(&r, 0.05, 0.15);
        d->wobble[2] = (float)rng_range(&r, 0, 6.283185307);
        d->wobble[3] = (float)rng_range(&r, 0, 6.283185307);
        break;
    }
    }
    if (!defective) d->kind = DEFECT_NONE;
}

/* Defect weight in [0, strength] at product point (u, v). */
static float defect_weight(const struct defect *d, float u, float v)
{
    float du = u - d->cu, dv = v - d->cv, q = du * du + dv * dv;
    if (q > d->reach2) return 0;
    switch (d->kind) {
    case DEFECT_SCRATCH: {
        float t = clampf((du * d->hu + dv * d->hv) / (d->hu * d->hu + d->hv * d->hv), -1, 1);
        float px = du - t * d->hu, py = dv - t * d->hv;
        return d->strength * clampf(d->radius + 0.5f - sqrtf(px * px + py * py), 0, 1);
    }
    case DEFECT_HOLE:
        return d->strength * clampf(d->radius + 0.5f - sqrtf(q), 0, 1);
    case DEFECT_STAIN: {
        float th = atan2f(dv, du);
        float rr = d->radius * (1 + d->wobble[0] * sinf(3 * th + d->wobble[2]) +
                                d->wobble[1] * sinf(5 * th + d->wobble[3]));
        return d->strength * (1 - smoothstep(0.4f, 1.0f, sqrtf(q) / rr));
    }
    default:
        return 0;
    }
}

/* --- rendering ------------------------------------------------------------------------------ */

static void belt_colour(const struct scene *sc, int x, int y, float rgb[3])
{
    if (y < sc->rail || y >= sc->height - sc->rail) {
        bool lip = y == sc->rail - 1 || y == sc->height - sc->rail;
        float v = lip ? 60 : 124 + (float)(hash3((uint32_t)x, (uint32_t)y, 7) & 7);
        rgb[0] = v, rgb[1] = v + 2, rgb[2] = v + 6;
        return;
    }
    float pos = (float)x + sc->belt_offset;
    float ph = pos / sc->stripe_period;
    float tri = fabsf(ph - floorf(ph) - 0.5f) * 2;
    float grain =
        (float)(hash3((uint32_t)(int)floorf(pos), (uint32_t)y, sc->grain_seed) & 15) - 7.5f;
    float v = 70 * (0.88f + 0.24f * tri * tri) + 0.8f * grain;
    rgb[0] = v, rgb[1] = v + 2, rgb[2] = v + 5;
}

/* Product colour at (u, v) with signed distance sd; the defect blends in with weight w. */
static void product_colour(const struct scene *sc, const struct defect *d, float u, float v,
                           float sd, float rgb[3], float *w)
{
    float dome = 1.06f - 0.18f * (u * u + v * v) / (sc->R * sc->R);
    float bevel = 0.72f + 0.28f * smoothstep(0, 0.08f * sc->R, -sd);
    float grain = (float)(hash3((uint32_t)(int)floorf(u + 4096), (uint32_t)(int)floorf(v + 4096),
                                sc->grain_seed ^ 0x5bd1e995u) &
                          7) -
                  3.5f;
    *w = defect_weight(d, u, v);
    for (int c = 0; c < 3; c++) {
        float base = sc->product[c] * dome * bevel + grain;
        rgb[c] = base + *w * (d->tone[c] - base);
    }
}

/* Sensor noise: sum of four uniform bytes, about N(0, 1.9^2) grey levels. */
static inline float noise(struct rng *r)
{
    uint64_t b = rng_next(r);
    float sum = (float)((b & 255) + (b >> 8 & 255) + (b >> 16 & 255) + (b >> 24 & 255));
    return (sum - 510) * (1.9f / 147.8f);
}

static void render_pixel(const struct scene *sc, const struct defect *d, int x, int y, float rgb[3],
                         float *defect_w)
{
    belt_colour(sc, x, y, rgb);
    *defect_w = 0;
    float px = x + 0.5f, py = y + 0.5f;
    float dx = px - sc->cx, dy = py - sc->cy;
    if (dx * dx + dy * dy > sc->reach2) return;
    float u, v;
    to_product(sc, px - sc->shadow_dx, py - sc->shadow_dy, &u, &v);
    float shadow = smoothstep(0, 1, 0.5f - shape_sd(sc->shape, sc->R, u, v) / sc->shadow_blur);
    for (int c = 0; c < 3; c++) rgb[c] *= 1 - 0.45f * shadow;
    to_product(sc, px, py, &u, &v);
    float sd = shape_sd(sc->shape, sc->R, u, v);
    float cover = clampf(0.5f - sd, 0, 1);
    if (cover <= 0) return;
    float prod[3];
    product_colour(sc, d, u, v, sd, prod, defect_w);
    for (int c = 0; c < 3; c++) rgb[c] += cover * (prod[c] - rgb[c]);
    *defect_w *= cover;
}

static void grow_box(struct frame_truth *t, int x, int y)
{
    if (t->x1 == 0) {
        t->x0 = x, t->y0 = y, t->x1 = x + 1, t->y1 = y + 1;
        return;
    }
    if (x < t->x0) t->x0 = x;
    if (y < t->y0) t->y0 = y;
    if (x >= t->x1) t->x1 = x + 1;
    if (y >= t->y1) t->y1 = y + 1;
}

int synthetic_render(const struct synthetic_params *p, uint64_t seq, struct image *out,
                     struct frame_truth *truth)
{
    memset(out, 0, sizeof *out);
    memset(truth, 0, sizeof *truth);
    if (p->width < 16 || p->height < 16 || p->width > 8192 || p->height > 8192 ||
        !(p->defect_rate >= 0 && p->defect_rate <= 1) || !(p->defect_scale > 0) ||
        (unsigned)p->shape > SYNTHETIC_MIXED)
        return IMAGE_EINVAL;
    int rc = image_alloc(out, p->width, p->height, 3);
    if (rc != IMAGE_OK) return rc;
    struct scene sc;
    struct defect d;
    plan_scene(p, seq, &sc);
    plan_defect(p, seq, &sc, &d);
    struct defect none = d;
    none.kind = DEFECT_NONE; /* outside the defect region */
    struct rng nr = rng_seed(p->seed, seq * 4 + 2);
    for (int y = 0; y < p->height; y++) {
        uint8_t *row = out->data + (size_t)y * out->stride;
        for (int x = 0; x < p->width; x++) {
            float rgb[3], w;
            render_pixel(&sc, in_region(p, x, y) ? &d : &none, x, y, rgb, &w);
            if (w >= VISIBLE_WEIGHT) grow_box(truth, x, y);
            float light = sc.gain * (1 + sc.grad_x * (x - 0.5f * p->width) +
                                     sc.grad_y * (y - 0.5f * p->height));
            float n = noise(&nr);
            for (int c = 0; c < 3; c++)
                row[3 * x + c] = (uint8_t)(clampf(rgb[c] * light * sc.tint[c] + n, 0, 255) + 0.5f);
        }
    }
    truth->defect = truth->x1 > 0 ? d.kind : DEFECT_NONE;
    return IMAGE_OK;
}

/* --- the driver ----------------------------------------------------------------------------- */

struct synthetic_source {
    struct synthetic_params p;
    struct driver_pacer pacer;
    uint64_t seq;
    char name[64];
};

static int synthetic_check_param(const char *key, const char *value, char *err, size_t errsz)
{
    struct synthetic_params scratch;
    synthetic_params_default(&scratch);
    return synthetic_param_set(&scratch, key, value, err, errsz);
}

static void *synthetic_open(const char *name, const struct source_param *params, size_t nparams,
                            int *status, char *err, size_t errsz)
{
    struct synthetic_source *s = calloc(1, sizeof *s);
    if (!s) {
        *status = SOURCE_ENOMEM;
        driver_fail(err, errsz, "out of memory");
        return NULL;
    }
    synthetic_params_default(&s->p);
    for (size_t i = 0; i < nparams; i++) {
        if (synthetic_param_set(&s->p, params[i].key, params[i].value, err, errsz)) {
            *status = SOURCE_EINVAL;
            free(s);
            return NULL;
        }
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    driver_pacer_start(&s->pacer, s->p.fps);
    log_info("%s: %dx%d at %g fps, seed %llu, defect rate %g", s->name, s->p.width, s->p.height,
             s->p.fps, (unsigned long long)s->p.seed, s->p.defect_rate);
    return s;
}

/* Turns the rendered RGB image into the configured frame format; takes ownership of *im. */
static int to_frame(struct synthetic_source *s, struct image *im, struct frame *f)
{
    f->width = im->width, f->height = im->height;
    if (s->p.format == FRAME_RGB8) {
        f->format = FRAME_RGB8, f->stride = im->stride;
        f->data = im->data, f->size = im->stride * (size_t)im->height;
        *im = (struct image){0};
        return SOURCE_OK;
    }
    if (s->p.format == FRAME_MONO8) {
        struct image grey;
        int rc = image_convert(im, 1, &grey);
        image_free(im);
        if (rc != IMAGE_OK) return SOURCE_ENOMEM;
        f->format = FRAME_MONO8, f->stride = grey.stride;
        f->data = grey.data, f->size = grey.stride * (size_t)grey.height;
        return SOURCE_OK;
    }
    char why[128];
    int rc = image_encode_jpeg(im, s->p.jpeg_quality, &f->data, &f->size, why, sizeof why);
    image_free(im);
    if (rc != IMAGE_OK) {
        log_error("%s: JPEG encoding failed: %s", s->name, why);
        return rc == IMAGE_ENOMEM ? SOURCE_ENOMEM : SOURCE_EIO;
    }
    f->format = FRAME_JPEG;
    return SOURCE_OK;
}

static int synthetic_next(void *state, struct frame *f, int timeout_ms)
{
    struct synthetic_source *s = state;
    if (s->p.frames && s->seq >= s->p.frames) return SOURCE_END;
    int rc = driver_pacer_wait(&s->pacer, timeout_ms);
    if (rc != SOURCE_OK) return rc;
    struct image im;
    struct frame_truth truth;
    if (synthetic_render(&s->p, s->seq, &im, &truth) != IMAGE_OK) {
        log_error("%s: out of memory rendering frame %llu", s->name, (unsigned long long)s->seq);
        return SOURCE_ENOMEM;
    }
    f->captured_at_us = clock_wall_us();
    rc = to_frame(s, &im, f);
    if (rc != SOURCE_OK) return rc;
    f->seq = s->seq++;
    f->has_truth = true;
    f->truth = truth;
    return SOURCE_OK;
}

static void synthetic_close(void *state)
{
    free(state);
}

const struct source_driver synthetic_driver = {
    .name = "synthetic",
    .check_param = synthetic_check_param,
    .open = synthetic_open,
    .next = synthetic_next,
    .close = synthetic_close,
};

/* synthetic.h — renders "products" on a moving belt, with an occasional defect, for the synthetic
 * camera and for tests and benchmarks that need frames with known ground truth.
 *
 * A frame is a pure function of (params, seq): position, rotation and lighting jitter, belt
 * motion, sensor noise and the defect all come from random streams seeded by (seed, seq), so any
 * frame can be re-rendered. Scene, defect and noise use separate streams: rendering the same seq
 * with defect_rate 0 gives the identical frame without its defect.
 *
 * Sizes scale with min(width, height), so a 64x64 render shows the same scene as a 640x640 one;
 * defects stay visible at 64x64 (a scratch is at least about one pixel wide, a hole a few pixels
 * across) and cover a small part of the product. */
#ifndef INSPECTD_SYNTHETIC_H
#define INSPECTD_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "source.h"

enum synthetic_shape {
    SYNTHETIC_SQUARE = 0, /* rounded rectangle (a tile) */
    SYNTHETIC_DISC,       /* a washer-like disc */
    SYNTHETIC_NUT,        /* a hexagon nut with its bore */
    SYNTHETIC_MIXED       /* one of the three per frame */
};

struct synthetic_params {
    int width, height;        /* 640 x 480 */
    double fps;               /* 20; 0 = as fast as possible (driver only) */
    uint64_t seed;            /* 1 */
    double defect_rate;       /* 0.1, probability that a frame shows a defect */
    double defect_scale;      /* 1.0, multiplies defect sizes */
    enum frame_format format; /* FRAME_JPEG (driver only; renders are RGB) */
    int jpeg_quality;         /* 90 */
    uint64_t frames;          /* 0 = endless, else SOURCE_END after this many (driver only) */
    enum synthetic_shape shape;
    int region_x, region_y, region_w, region_h; /* defect_region: defects are drawn only inside
                                                   this box of the frame (w 0: anywhere) */
};

/* Fills *p with the defaults above. */
void synthetic_params_default(struct synthetic_params *p);

/* Sets one parameter from its config text: width, height, fps, seed, defect_rate, defect_scale,
 * format (jpeg|rgb8|mono8), jpeg_quality, frames, shape (square|disc|nut|mixed), defect_region
 * (x,y,w,h in pixels of the frame). Returns 0, or -1
 * with a reason in err ("unknown key", "width must be an integer in [16, 8192]", ...). */
int synthetic_param_set(struct synthetic_params *p, const char *key, const char *value, char *err,
                        size_t errsz);

/* Renders frame `seq` as an RGB image into *out (allocated here; free with image_free) and
 * describes its defect in *truth (DEFECT_NONE and a zero box for a good product; otherwise the
 * box of every pixel the defect visibly changes). Returns IMAGE_OK, IMAGE_EINVAL (bad params) or
 * IMAGE_ENOMEM; on error *out is empty. */
int synthetic_render(const struct synthetic_params *p, uint64_t seq, struct image *out,
                     struct frame_truth *truth);

#endif

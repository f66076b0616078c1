/* frame.h — one captured frame as data: its pixel format, its bytes, when it was taken, and what a
 * synthetic source knows it drew. Sources fill frames (drivers/source.h, which also frees them);
 * the daemon queues, stores and scores them. */
#ifndef INSPECTD_FRAME_H
#define INSPECTD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum frame_format {
    FRAME_MONO8 = 1, /* raw 8-bit grey, width/height/stride valid */
    FRAME_RGB8,      /* raw interleaved RGB, width/height/stride valid */
    FRAME_JPEG,      /* encoded; width/height filled when known, else 0 */
    FRAME_PNG        /* encoded; width/height filled when known, else 0 */
};

/* Ground truth a synthetic source knows about what it drew (for tests and benchmarks). */
enum defect_kind { DEFECT_NONE = 0, DEFECT_SCRATCH, DEFECT_HOLE, DEFECT_STAIN };

/* "none", "scratch", "hole", "stain": the names the database and the API use. */
const char *frame_defect_name(enum defect_kind k);
/* The kind named name: 0 with *out set, or -1 for an unknown name. */
int frame_defect_parse(const char *name, enum defect_kind *out);

struct frame_truth {
    enum defect_kind defect; /* DEFECT_NONE for a good product */
    int x0, y0, x1, y1;      /* defect bounding box in pixels, [x0,x1) x [y0,y1) */
};

/* What to do with a frame's input file once the frame is stored (folder watch with
 * delete_after_ingest or move_to); opaque, owned by the frame, created and disposed of by
 * drivers/source.h (frame_origin_file, frame_stored, frame_free). */
struct frame_origin;

struct frame {
    enum frame_format format;
    int width, height;
    size_t stride;          /* raw formats only */
    uint8_t *data;          /* owned by the receiver of the frame; free with frame_free() */
    size_t size;            /* bytes in data */
    int64_t captured_at_us; /* wall clock (CLOCK_REALTIME) microseconds, camera's when it has one */
    uint64_t seq;           /* per-source sequence number, from 0, gaps mean lost frames */
    bool has_truth;
    struct frame_truth truth;
    struct frame_origin *origin; /* NULL, or the input to dispose of by frame_stored() */
};

#endif

/* plc.h — the PLC handshake over Modbus TCP (libmodbus; [plc] listen): holding registers from
 * address 0, unit id ignored, read with function 3 and written with 6 or 16. The map (the README
 * has it as a table; PLC_* below are its addresses):
 *
 *   0        status bits: 0 Ready, 1 Busy, 2 ResultValid, 3 Fault, 4 Learning, 5 Paused
 *   1        map version (1)          2  cameras              3  heartbeat (seconds, wraps)
 *   4-5      parts (32 bits, high word first)   6-7 OK   8-9 NG   10-11 unscored
 *   20  (W)  reset fault: writing 1 clears the latched Fault (reads back 0)
 *   21  (W)  pause inspection: 1 paused (Ready off), 0 running
 *   per camera c (config order, at most 16), B = 100 + 100 c:
 *   B+0      result counter: +1 with every result (wraps)
 *   B+1      verdict: 0 none yet, 1 ok, 2 ng, 3 unscored
 *   B+2      reason of unscored: 0 none, 1 no_model, 2 skipped, 3 undecodable, 4 no_image,
 *            5 error, 6 late
 *   B+3      score x 1000 (0..65535; 0 when unscored)    B+4 score / threshold x 1000
 *   B+5      recipe number of the result ([recipe.NAME] number; 65535 when it has none)
 *   B+6-7    model id (32 bits)       B+8-9  sequence number (its low 32 bits)
 *   B+10-41  part id of the result: 64 bytes, two per register (high byte first), NUL padded
 *   B+50-81 (W) part id for the next trigger: a write that covers B+50 sets the id of the
 *            camera's next frame to the block's text up to its first NUL, and clears the block
 *   B+82 (W) recipe select: writing N switches the camera to the recipe numbered N from its next
 *            frame (an unknown number is logged and changes nothing)
 *
 * Writes anywhere else, or any write with [plc] writable = false, are refused with exception 2
 * (illegal data address) and change nothing. Modbus has no authentication: a non-loopback listen
 * needs [plc] allow_remote = true. One thread serves up to 8 clients at once; the registers
 * change under a lock, so a read sees one result whole. */
#ifndef INSPECTD_LINE_PLC_H
#define INSPECTD_LINE_PLC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "line_config.h"
#include "store/store_results.h"

#define PLC_STATUS      0
#define PLC_VERSION     1
#define PLC_CAMERAS     2
#define PLC_HEARTBEAT   3
#define PLC_PARTS       4
#define PLC_OK          6
#define PLC_NG          8
#define PLC_UNSCORED    10
#define PLC_RESET_FAULT 20
#define PLC_PAUSE       21
#define PLC_CAMERA_BASE 100
#define PLC_CAMERA_SPAN 100
#define PLC_MAX_CAMERAS 16
#define PLC_COUNTER     0
#define PLC_VERDICT     1
#define PLC_REASON      2
#define PLC_SCORE       3
#define PLC_SCORE_NORM  4
#define PLC_RECIPE      5
#define PLC_MODEL       6
#define PLC_SEQ         8
#define PLC_PART        10
#define PLC_NEXT_PART   50
#define PLC_PART_REGS   32
#define PLC_RECIPE_SET  82
#define PLC_NO_RECIPE   65535
#define PLC_REGISTERS   (PLC_CAMERA_BASE + PLC_CAMERA_SPAN * PLC_MAX_CAMERAS)

enum {
    PLC_READY = 1,
    PLC_BUSY = 2,
    PLC_RESULT_VALID = 4,
    PLC_FAULT = 8,
    PLC_LEARNING = 16,
    PLC_PAUSED = 32
};

/* What the daemon tells the registers, and what the PLC's writes act on (called on the PLC
 * thread). */
struct line_plc_hooks {
    /* learning: no model yet; fault: a camera or the scorer in error; last_frame_id: the newest
     * frame stored */
    void (*state)(void *ctx, bool *learning, bool *fault, int64_t *last_frame_id);
    /* counts of every verdict so far (RESULT_OK, RESULT_NG, RESULT_UNSCORED) */
    void (*counts)(void *ctx, uint64_t counts[RESULT_NVERDICTS]);
    int (*set_part)(void *ctx, const char *camera, const char *part_id);
    /* the number of a recipe (-1: it has none) */
    int (*recipe_number)(void *ctx, const char *recipe);
    /* camera's recipe from its next frame, by number: 0, or -1 (no such recipe or camera) */
    int (*select_recipe)(void *ctx, const char *camera, int number);
    void *ctx;
};

struct line_plc;

/* Listens on c->host:c->port for the cameras names[0..n) (n <= PLC_MAX_CAMERAS are mapped).
 * Returns NULL with the reason in err (a port in use, say). */
struct line_plc *line_plc_start(const struct line_plc_config *c, const char *const *names, int n,
                                const struct line_plc_hooks *hooks, char *err, size_t errsz);
/* Stops serving, closes every connection and frees; NULL is fine. */
void line_plc_stop(struct line_plc *p);
/* The feed's output (line/feed.h). */
void line_plc_result(void *ctx, const struct result_info *r);
/* Whether it listens (false after the socket broke), and its clients now. */
bool line_plc_listening(struct line_plc *p, int *clients);

/* A request's write (q: len bytes received, the function code at q[hl]): its first register and
 * count for function 6 or 16. Returns 1, 0 for a request that writes no register (a read), or -1
 * for a write the map does not take (coils: 5, 15; mask or read/write: 22, 23). */
int line_plc_write_range(const uint8_t *q, int hl, int len, int *addr, int *n);

/* Checks a write request of n registers at addr against the map. Returns 0 when allowed, or -1. */
int line_plc_check_write(bool writable, int addr, int n);

#endif

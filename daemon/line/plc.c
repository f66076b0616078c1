/* plc.c — the Modbus TCP server: a register map updated by the results feed, served by one
 * thread that accepts clients, answers their requests and acts on their writes. */
#define LOG_TAG "plc"
#include "log.h"

#include "plc.h"

#include <errno.h>
#include <modbus/modbus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "clock.h"

#define MAX_CLIENTS 8
#define POLL_MS     50

struct line_plc {
    struct line_plc_config cfg;
    struct line_plc_hooks hooks;
    char names[PLC_MAX_CAMERAS][64];
    int ncameras;
    modbus_t *ctx;
    int listen_fd;
    int clients[MAX_CLIENTS];
    pthread_t thread;
    bool started; /* a thread to join */
    atomic_bool stop;
    atomic_bool listening;
    atomic_int nclients;

    pthread_mutex_t lock; /* guards the map and what follows */
    modbus_mapping_t *map;
    bool fault_latched;
    int64_t last_result_frame; /* the newest frame with a result */
    bool any_result;
};

static void put32(uint16_t *regs, int at, uint32_t v)
{
    regs[at] = (uint16_t)(v >> 16);
    regs[at + 1] = (uint16_t)(v & 0xffff);
}

static uint16_t milli(double v)
{
    double m = v * 1000.0 + 0.5;
    return m <= 0 ? 0 : m >= 65535 ? 65535 : (uint16_t)m;
}

static void put_text(uint16_t *regs, int at, int nregs, const char *text)
{
    size_t len = strlen(text);
    for (int i = 0; i < nregs; i++) {
        uint8_t hi = (size_t)(2 * i) < len ? (uint8_t)text[2 * i] : 0;
        uint8_t lo = (size_t)(2 * i + 1) < len ? (uint8_t)text[2 * i + 1] : 0;
        regs[at + i] = (uint16_t)(hi << 8 | lo);
    }
}

/* The text of nregs registers (two bytes each, high first) up to the first NUL, into out
 * (2 nregs + 1 bytes). */
static void get_text(const uint16_t *regs, int at, int nregs, char *out)
{
    int n = 0;
    for (int i = 0; i < nregs; i++) {
        uint8_t b[2] = {(uint8_t)(regs[at + i] >> 8), (uint8_t)(regs[at + i] & 0xff)};
        for (int k = 0; k < 2; k++) {
            if (!b[k]) {
                out[n] = '\0';
                return;
            }
            out[n++] = (char)b[k];
        }
    }
    out[n] = '\0';
}

void line_plc_result(void *ctx, const struct result_info *r)
{
    struct line_plc *p = ctx;
    int c = 0;
    while (c < p->ncameras && strcmp(p->names[c], r->camera) != 0) c++;
    if (c == p->ncameras) return;
    int number = r->recipe[0] ? p->hooks.recipe_number(p->hooks.ctx, r->recipe) : -1;
    pthread_mutex_lock(&p->lock);
    uint16_t *regs = p->map->tab_registers;
    int b = PLC_CAMERA_BASE + PLC_CAMERA_SPAN * c;
    bool unscored = r->verdict == RESULT_UNSCORED;
    regs[b + PLC_VERDICT] = (uint16_t)(r->verdict + 1);
    regs[b + PLC_REASON] = (uint16_t)(unscored && r->reason >= 0 ? r->reason + 1 : 0);
    regs[b + PLC_SCORE] = unscored || !r->has_score ? 0 : milli(r->score);
    regs[b + PLC_SCORE_NORM] = unscored || !r->has_score ? 0 : milli(r->score_norm);
    regs[b + PLC_RECIPE] = number >= 0 && number < PLC_NO_RECIPE ? (uint16_t)number : PLC_NO_RECIPE;
    put32(regs, b + PLC_MODEL, unscored ? 0 : (uint32_t)r->model_id);
    put32(regs, b + PLC_SEQ, (uint32_t)r->seq);
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)r->seq);
    put_text(regs, b + PLC_PART, PLC_PART_REGS, r->part_id[0] ? r->part_id : seq);
    regs[b + PLC_COUNTER]++; /* last: a PLC that sees it change reads a whole result */
    if (r->frame_id > p->last_result_frame) p->last_result_frame = r->frame_id;
    p->any_result = true;
    pthread_mutex_unlock(&p->lock);
}

/* The status and counters, from the daemon's state. */
static void refresh(struct line_plc *p)
{
    bool learning = false, fault = false;
    int64_t last_frame = 0;
    uint64_t counts[RESULT_NVERDICTS] = {0};
    p->hooks.state(p->hooks.ctx, &learning, &fault, &last_frame);
    p->hooks.counts(p->hooks.ctx, counts);
    pthread_mutex_lock(&p->lock);
    uint16_t *regs = p->map->tab_registers;
    p->fault_latched |= fault;
    bool paused = regs[PLC_PAUSE] != 0;
    bool busy = last_frame > p->last_result_frame;
    regs[PLC_STATUS] =
        (uint16_t)((!paused && !p->fault_latched ? PLC_READY : 0) | (busy ? PLC_BUSY : 0) |
                   (p->any_result && !busy ? PLC_RESULT_VALID : 0) |
                   (p->fault_latched ? PLC_FAULT : 0) | (learning ? PLC_LEARNING : 0) |
                   (paused ? PLC_PAUSED : 0));
    regs[PLC_HEARTBEAT] = (uint16_t)(clock_mono_us() / 1000000);
    uint64_t parts = counts[RESULT_OK] + counts[RESULT_NG] + counts[RESULT_UNSCORED];
    put32(regs, PLC_PARTS, (uint32_t)parts);
    put32(regs, PLC_OK, (uint32_t)counts[RESULT_OK]);
    put32(regs, PLC_NG, (uint32_t)counts[RESULT_NG]);
    put32(regs, PLC_UNSCORED, (uint32_t)counts[RESULT_UNSCORED]);
    pthread_mutex_unlock(&p->lock);
}

int line_plc_check_write(bool writable, int addr, int n)
{
    if (!writable || n < 1 || addr < 0) return -1;
    int end = addr + n; /* exclusive */
    if (addr >= PLC_RESET_FAULT && end <= PLC_PAUSE + 1) return 0;
    if (addr < PLC_CAMERA_BASE || end > PLC_REGISTERS) return -1;
    int c = (addr - PLC_CAMERA_BASE) / PLC_CAMERA_SPAN, b = PLC_CAMERA_BASE + PLC_CAMERA_SPAN * c;
    if (addr == b + PLC_RECIPE_SET && n == 1) return 0;
    return addr >= b + PLC_NEXT_PART && end <= b + PLC_NEXT_PART + PLC_PART_REGS ? 0 : -1;
}

int line_plc_write_range(const uint8_t *q, int hl, int len, int *addr, int *n)
{
    if (len < hl + 5) return 0;
    int fc = q[hl];
    *addr = q[hl + 1] << 8 | q[hl + 2];
    if (fc == 0x06) {
        *n = 1;
        return 1;
    }
    if (fc == 0x10) {
        *n = q[hl + 3] << 8 | q[hl + 4];
        return 1;
    }
    return fc == 0x05 || fc == 0x0f || fc == 0x16 || fc == 0x17 ? -1 : 0;
}

/* What a write that was applied does. */
static void act_on_write(struct line_plc *p, int addr, int n)
{
    pthread_mutex_lock(&p->lock);
    uint16_t *regs = p->map->tab_registers;
    if (addr <= PLC_RESET_FAULT && addr + n > PLC_RESET_FAULT && regs[PLC_RESET_FAULT] == 1) {
        p->fault_latched = false;
        log_info("the PLC reset the fault");
    }
    regs[PLC_RESET_FAULT] = 0;
    char part[2 * PLC_PART_REGS + 1] = "", camera[64] = "";
    int recipe = -1;
    if (addr >= PLC_CAMERA_BASE) {
        int c = (addr - PLC_CAMERA_BASE) / PLC_CAMERA_SPAN;
        int base = PLC_CAMERA_BASE + PLC_CAMERA_SPAN * c, b = base + PLC_NEXT_PART;
        if (c < p->ncameras) snprintf(camera, sizeof camera, "%s", p->names[c]);
        if (c < p->ncameras && addr == base + PLC_RECIPE_SET) recipe = regs[addr];
        if (c < p->ncameras && addr == b) get_text(regs, b, PLC_PART_REGS, part);
        if (addr >= b && addr < b + PLC_PART_REGS)
            memset(regs + b, 0, sizeof *regs * PLC_PART_REGS);
    }
    pthread_mutex_unlock(&p->lock);
    if (recipe >= 0 && p->hooks.select_recipe(p->hooks.ctx, camera, recipe))
        log_warn("the PLC selected recipe number %d for camera %s: no such recipe", recipe, camera);
    if (part[0] && p->hooks.set_part(p->hooks.ctx, camera, part))
        log_warn("the PLC's part id for camera %s was not taken (%s)", camera,
                 strlen(part) > 64 ? "too long" : "the camera is not capturing");
}

/* Answers one request of a client. Returns 0, or -1 when the client went away. */
static int serve_request(struct line_plc *p, int fd)
{
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    modbus_set_socket(p->ctx, fd);
    int len = modbus_receive(p->ctx, q);
    if (len < 0) return -1;
    if (len == 0) return 0; /* not for us (another unit id is answered too; ignored) */
    int hl = modbus_get_header_length(p->ctx), addr = 0, n = 0;
    int w = line_plc_write_range(q, hl, len, &addr, &n);
    if (w < 0 || (w == 1 && line_plc_check_write(p->cfg.writable, addr, n))) {
        modbus_reply_exception(p->ctx, q, MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS);
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    int rc = modbus_reply(p->ctx, q, len, p->map);
    pthread_mutex_unlock(&p->lock);
    if (rc >= 0 && w == 1) act_on_write(p, addr, n);
    return rc < 0 ? -1 : 0;
}

static void drop_client(struct line_plc *p, int i)
{
    close(p->clients[i]);
    p->clients[i] = -1;
    atomic_fetch_sub(&p->nclients, 1);
}

static void accept_client(struct line_plc *p)
{
    int fd = p->listen_fd;
    modbus_set_socket(p->ctx, fd);
    int c = modbus_tcp_pi_accept(p->ctx, &fd);
    if (c < 0) return;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (p->clients[i] < 0) {
            p->clients[i] = c;
            atomic_fetch_add(&p->nclients, 1);
            return;
        }
    log_warn("a Modbus client beyond the %d served at once was refused", MAX_CLIENTS);
    close(c);
}

static void *plc_main(void *arg)
{
    struct line_plc *p = arg;
    while (!atomic_load(&p->stop)) {
        refresh(p);
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p->listen_fd, &rd);
        int top = p->listen_fd;
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (p->clients[i] >= 0) {
                FD_SET(p->clients[i], &rd);
                if (p->clients[i] > top) top = p->clients[i];
            }
        struct timeval tv = {0, POLL_MS * 1000};
        int ready = select(top + 1, &rd, NULL, NULL, &tv);
        if (ready < 0 && errno != EINTR) {
            log_error("the Modbus server stops: select: %s", strerror(errno));
            atomic_store(&p->listening, false);
            break;
        }
        if (ready <= 0) continue;
        refresh(p);
        if (FD_ISSET(p->listen_fd, &rd)) accept_client(p);
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (p->clients[i] >= 0 && FD_ISSET(p->clients[i], &rd) &&
                serve_request(p, p->clients[i]) < 0)
                drop_client(p, i);
    }
    return NULL;
}

struct line_plc *line_plc_start(const struct line_plc_config *c, const char *const *names, int n,
                                const struct line_plc_hooks *hooks, char *err, size_t errsz)
{
    struct line_plc *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errsz, "out of memory for the PLC registers");
        return NULL;
    }
    p->cfg = *c;
    p->hooks = *hooks;
    p->ncameras = n < PLC_MAX_CAMERAS ? n : PLC_MAX_CAMERAS;
    for (int i = 0; i < p->ncameras; i++) snprintf(p->names[i], sizeof p->names[i], "%s", names[i]);
    for (int i = 0; i < MAX_CLIENTS; i++) p->clients[i] = -1;
    pthread_mutex_init(&p->lock, NULL);
    atomic_init(&p->stop, false);
    atomic_init(&p->listening, false);
    atomic_init(&p->nclients, 0);
    char port[8];
    snprintf(port, sizeof port, "%d", c->port);
    p->listen_fd = -1;
    if (!(p->map = modbus_mapping_new_start_address(0, 0, 0, 0, 0, PLC_REGISTERS, 0, 0)) ||
        !(p->ctx = modbus_new_tcp_pi(c->host, port)) ||
        (p->listen_fd = modbus_tcp_pi_listen(p->ctx, MAX_CLIENTS)) < 0) {
        snprintf(err, errsz, "[plc] cannot listen on %s:%d: %s", c->host, c->port,
                 modbus_strerror(errno));
        line_plc_stop(p);
        return NULL;
    }
    p->map->tab_registers[PLC_VERSION] = 1;
    p->map->tab_registers[PLC_CAMERAS] = (uint16_t)p->ncameras;
    atomic_store(&p->listening, true);
    if ((p->started = pthread_create(&p->thread, NULL, plc_main, p) == 0) == false) {
        snprintf(err, errsz, "cannot start the Modbus thread");
        atomic_store(&p->listening, false);
        line_plc_stop(p);
        return NULL;
    }
    log_info("Modbus TCP on %s:%d (%s), %d camera(s) mapped", c->host, c->port,
             c->writable ? "writable" : "read-only", p->ncameras);
    return p;
}

void line_plc_stop(struct line_plc *p)
{
    if (!p) return;
    atomic_store(&p->stop, true);
    if (p->started) pthread_join(p->thread, NULL);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (p->clients[i] >= 0) close(p->clients[i]);
    if (p->listen_fd >= 0) close(p->listen_fd);
    if (p->ctx) modbus_free(p->ctx);
    if (p->map) modbus_mapping_free(p->map);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

bool line_plc_listening(struct line_plc *p, int *clients)
{
    if (clients) *clients = atomic_load(&p->nclients);
    return atomic_load(&p->listening);
}

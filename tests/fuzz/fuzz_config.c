/* fuzz_config.c — libFuzzer target: config_parse_string on arbitrary text (the INI file an
 * operator writes, through inih and every key's validation, camera parameters included).
 *
 * Invariants checked: the text is refused with a "NAME:LINE: message" or "NAME: message" error,
 * or accepted with the documented post-conditions (at least one camera, unique valid names,
 * values in range); config_free always leaves nothing behind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 63 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static void check_accepted(const struct config *c)
{
    if (c->ncameras < 1 || c->ncameras > CONFIG_MAX_CAMERAS) abort();
    if (c->http_port < 0 || c->http_port > 65535 || c->http_threads < 1) abort();
    if (c->jpeg_quality < 1 || c->jpeg_quality > 100) abort();
    if (c->trainer_knobs.channels != 1 && c->trainer_knobs.channels != 3) abort();
    for (size_t i = 0; i < c->ncameras; i++) {
        if (!valid_name(c->cameras[i].name) || c->cameras[i].nparams > CONFIG_MAX_PARAMS) abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->cameras[i].name, c->cameras[j].name) == 0) abort();
        for (size_t k = 0; k < c->cameras[i].nparams; k++)
            if (!c->cameras[i].params[k].key || !c->cameras[i].params[k].value) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct config cfg;
    char err[512] = "";
    int rc = config_parse_string(&cfg, text, "fuzz.conf", err, sizeof err);
    if (rc == 0) {
        check_accepted(&cfg);
        config_free(&cfg);
    } else if (rc != -1 || strncmp(err, "fuzz.conf:", 10) != 0) {
        abort();
    }
    config_free(&cfg); /* safe twice */
    free(text);
    return 0;
}

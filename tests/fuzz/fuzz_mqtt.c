/* fuzz_mqtt.c — libFuzzer target: what the MQTT output makes of the messages it receives (any
 * client of the broker may send them): the subscription topics and the payloads of
 * PREFIX/CAMERA/part/set, PREFIX/CAMERA/recipe/set and PREFIX/train/set.
 *
 * Input layout: the first byte picks the kind of input (byte % number of kinds), the rest is
 * that kind's text. New kinds are appended so existing corpus files keep their meaning.
 *
 * Invariants checked: a topic parsed as a camera's names a non-empty camera without '/' that is
 * a prefix of the topic's rest; an accepted part id is 1..STORE_PART_ID_MAX bytes without NUL; a
 * refusal always says why. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "line/mqtt.h"
#include "store/store.h"

/* "TOPIC": parsed under the prefix "inspectd". */
static void fuzz_topic(const char *text, size_t len)
{
    char camera[64] = "";
    enum line_mqtt_topic kind = line_mqtt_parse_topic("inspectd", text, camera, sizeof camera);
    if (kind == MQTT_TOPIC_PART || kind == MQTT_TOPIC_RECIPE) {
        size_t n = strlen(camera);
        if (!n || strchr(camera, '/') || strncmp(text + 9, camera, n) != 0) abort();
    } else if (kind == MQTT_TOPIC_TRAIN) {
        if (strcmp(text, "inspectd/train/set") != 0) abort();
    }
}

static void fuzz_part(const char *text, size_t len)
{
    char part[STORE_PART_ID_MAX + 1], why[256] = "";
    if (line_mqtt_parse_part(text, len, part, why, sizeof why) == 0) {
        size_t n = strlen(part);
        if (!n || n > STORE_PART_ID_MAX) abort();
    } else if (!why[0]) {
        abort();
    }
}

static void fuzz_train(const char *text, size_t len)
{
    bool fresh = true;
    char why[256] = "";
    if (line_mqtt_parse_train(text, len, &fresh, why, sizeof why) != 0 && !why[0]) abort();
}

static void fuzz_recipe(const char *text, size_t len)
{
    char recipe[64], why[256] = "";
    if (line_mqtt_parse_recipe(text, len, recipe, why, sizeof why) == 0) {
        size_t n = strlen(recipe);
        if (!n || n > 63) abort();
    } else if (!why[0]) {
        abort();
    }
}

static void (*const kinds[])(const char *text, size_t len) = {
    fuzz_topic,  /* 0 */
    fuzz_part,   /* 1 */
    fuzz_train,  /* 2 */
    fuzz_recipe, /* 3 */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    kinds[data[0] % ARRAY_LEN(kinds)](text, n);
    free(text);
    return 0;
}

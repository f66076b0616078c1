/* test_line.c — the line outputs' small pieces: the webhook signature (RFC 4231's HMAC-SHA256
 * vectors), the webhook event lists and shift times of the config, the MQTT topics and payloads
 * the daemon accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "line/line_config.h"
#include "line/mqtt.h"
#include "line/webhook.h"
#include "store/store.h"

static void signature(void **state)
{
    char sig[80];
    const char *data = "what do ya want for nothing?";
    assert_int_equal(line_webhook_signature("Jefe", data, strlen(data), sig, sizeof sig), 0);
    assert_string_equal(sig, "sha256="
                             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_int_equal(line_webhook_signature("k", "", 0, sig, 10), -1); /* no room */
}

static void event_lists(void **state)
{
    assert_int_equal(line_parse_events("alert"), LINE_EVENT_ALERT);
    assert_int_equal(line_parse_events("result, alert,model"),
                     LINE_EVENT_RESULT | LINE_EVENT_ALERT | LINE_EVENT_MODEL);
    assert_int_equal(line_parse_events("review,review"), LINE_EVENT_REVIEW);
    assert_int_equal(line_parse_events(""), 0);
    assert_int_equal(line_parse_events("alert,"), 0);
    assert_int_equal(line_parse_events("alerts"), 0);
}

static void shifts(void **state)
{
    int m[LINE_MAX_SHIFTS];
    char why[128];
    assert_int_equal(line_parse_shifts("06:00,14:00,22:00", m, why, sizeof why), 3);
    assert_int_equal(m[0], 360);
    assert_int_equal(m[2], 1320);
    assert_int_equal(line_parse_shifts("  ", m, why, sizeof why), 0);
    assert_int_equal(line_parse_shifts("06:00,06:00", m, why, sizeof why), -1);
    assert_int_equal(line_parse_shifts("23:60", m, why, sizeof why), -1);
    assert_int_equal(line_parse_shifts("0600", m, why, sizeof why), -1);
}

static void mqtt_topics(void **state)
{
    char cam[64];
    assert_int_equal(line_mqtt_parse_topic("inspectd", "inspectd/line1/part/set", cam, sizeof cam),
                     MQTT_TOPIC_PART);
    assert_string_equal(cam, "line1");
    assert_int_equal(line_mqtt_parse_topic("a/b", "a/b/dock/recipe/set", cam, sizeof cam),
                     MQTT_TOPIC_RECIPE);
    assert_string_equal(cam, "dock");
    assert_int_equal(line_mqtt_parse_topic("inspectd", "inspectd/train/set", cam, sizeof cam),
                     MQTT_TOPIC_TRAIN);
    assert_int_equal(line_mqtt_parse_topic("inspectd", "inspectd//part/set", cam, sizeof cam),
                     MQTT_TOPIC_OTHER);
    assert_int_equal(line_mqtt_parse_topic("inspectd", "inspectdx/a/part/set", cam, sizeof cam),
                     MQTT_TOPIC_OTHER);
    assert_int_equal(line_mqtt_parse_topic("inspectd", "inspectd/a/result", cam, sizeof cam),
                     MQTT_TOPIC_OTHER);
}

static void mqtt_payloads(void **state)
{
    char part[STORE_PART_ID_MAX + 1], why[256];
    const char *ok = "{\"part_id\": \"SN-1\"}";
    assert_int_equal(line_mqtt_parse_part(ok, strlen(ok), part, why, sizeof why), 0);
    assert_string_equal(part, "SN-1");
    const char *bad[] = {"{}",
                         "{\"part_id\": 5}",
                         "{\"part_id\": \"\"}",
                         "[\"a\"]",
                         "x",
                         "{\"part_id\": \"a\", \"b\": 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(line_mqtt_parse_part(bad[i], strlen(bad[i]), part, why, sizeof why), -1);
        assert_true(why[0] != '\0');
    }
    char longer[128] = "{\"part_id\": \"";
    memset(longer + strlen(longer), 'x', 65);
    strcat(longer, "\"}");
    assert_int_equal(line_mqtt_parse_part(longer, strlen(longer), part, why, sizeof why), -1);
    char recipe[64];
    assert_int_equal(line_mqtt_parse_recipe("{\"recipe\":\"m8\"}", 15, recipe, why, sizeof why), 0);
    assert_string_equal(recipe, "m8");
    assert_int_equal(line_mqtt_parse_recipe("{\"recipe\":\"\"}", 13, recipe, why, sizeof why), -1);
    bool fresh = true;
    assert_int_equal(line_mqtt_parse_train("", 0, &fresh, why, sizeof why), 0);
    assert_false(fresh);
    assert_int_equal(line_mqtt_parse_train("{\"fresh\":true}", 14, &fresh, why, sizeof why), 0);
    assert_true(fresh);
    assert_int_equal(line_mqtt_parse_train("{\"fresh\":1}", 11, &fresh, why, sizeof why), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signature),   cmocka_unit_test(event_lists),   cmocka_unit_test(shifts),
        cmocka_unit_test(mqtt_topics), cmocka_unit_test(mqtt_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

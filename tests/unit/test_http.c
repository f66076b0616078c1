/* test_http.c — what the HTTP layer makes of a request before any handler work, on the real route
 * tables: route matching with {params}, 405 with the allowed methods, query checks on decoded
 * arguments, the frame and alert lists' query parsing, JSON bodies, the alert review's body
 * and POST /api/v1/train's. (The
 * server itself is tested end to end by tests/integration/test_daemon.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "http/api.h"
#include "http/http.h"
#include "store/store_alerts.h"

static http_handler find(const char *method, const char *path, struct http_request *req, char *buf,
                         size_t bufsz, char *allow, bool *known)
{
    *req = (struct http_request){.method = method, .path = path, .body = ""};
    return http_find_route(req, buf, bufsz, allow, 128, known);
}

static void routes_match_with_params(void **state)
{
    struct http_request req;
    char buf[1024], allow[128];
    bool known;
    assert_non_null(find("GET", "/api/v1/frames/42/image", &req, buf, sizeof buf, allow, &known));
    assert_int_equal(req.nparams, 1);
    assert_string_equal(req.params[0], "42");
    assert_non_null(find("HEAD", "/healthz", &req, buf, sizeof buf, allow, &known));
    assert_non_null(find("GET", "//api//v1/frames/", &req, buf, sizeof buf, allow, &known));

    assert_null(find("POST", "/api/v1/status", &req, buf, sizeof buf, allow, &known));
    assert_true(known);
    assert_string_equal(allow, "GET");
    assert_null(find("GET", "/api/v1/frames/1/2/3", &req, buf, sizeof buf, allow, &known));
    assert_false(known);
    assert_non_null(find("GET", "", &req, buf, sizeof buf, allow, &known)); /* the page, "/" */

    /* a path longer than the buffer, or with more segments than any route, is simply unknown */
    char long_path[2048];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/', long_path[sizeof long_path - 1] = '\0';
    assert_null(find("GET", long_path, &req, buf, sizeof buf, allow, &known));
    assert_false(known);
    assert_null(find("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s", &req, buf, sizeof buf, allow,
                     &known));
    assert_false(known);
}

static struct http_query_arg args[16];

/* A request whose decoded query arguments are kv[0]=kv[1], kv[2]=kv[3], ... */
static struct http_request with_query(const char *const *kv, size_t n)
{
    struct http_request req = {.method = "GET", .path = "/api/v1/frames", .body = ""};
    for (size_t i = 0; i < n; i++) args[i] = (struct http_query_arg){kv[2 * i], kv[2 * i + 1]};
    req.query = args;
    req.nquery = n;
    return req;
}

/* Asserts a 400 whose {"error"} message contains `what`. */
static void assert_400(struct http_reply *r, const char *what)
{
    assert_int_equal(r->status, 400);
    assert_non_null(r->body);
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (!msg || !strstr(msg, what)) fail_msg("expected '%s' in %s", what, r->body);
    json_decref(j);
    free(r->body);
    *r = (struct http_reply){0};
}

static void frame_list_query(void **state)
{
    struct http_reply r = {0};
    struct api_frames_query q;
    const char *ok[] = {"limit", "7", "camera", "line1", "before", "99", "limit", "8"};
    struct http_request req = with_query(ok, 4);
    assert_int_equal(api_frames_list_query(&req, &r, &q), 0);
    assert_int_equal(q.limit, 7); /* the first of a repeated key */
    assert_string_equal(q.camera, "line1");
    assert_int_equal(q.before, 99);
    assert_null(r.body);

    req = with_query(NULL, 0);
    assert_int_equal(api_frames_list_query(&req, &r, &q), 0);
    assert_int_equal(q.limit, 50);
    assert_null(q.camera);
    assert_int_equal(q.before, 0);

    const char *unknown[] = {"limit", "5", "colour", "red"};
    req = with_query(unknown, 2);
    assert_int_equal(api_frames_list_query(&req, &r, &q), -1);
    assert_400(&r, "unknown query parameter 'colour'");
    const char *bare[] = {"limit", NULL}; /* "?limit": a known key without value is absent */
    req = with_query(bare, 1);
    assert_int_equal(api_frames_list_query(&req, &r, &q), 0);
    assert_int_equal(q.limit, 50);
    const char *big[] = {"limit", "1001"};
    req = with_query(big, 1);
    assert_int_equal(api_frames_list_query(&req, &r, &q), -1);
    assert_400(&r, "limit must be an integer in [1, 1000]");
    const char *empty_camera[] = {"camera", ""};
    req = with_query(empty_camera, 1);
    assert_int_equal(api_frames_list_query(&req, &r, &q), -1);
    assert_400(&r, "camera must be a camera name");
    const char *zero_before[] = {"before", "0"};
    req = with_query(zero_before, 1);
    assert_int_equal(api_frames_list_query(&req, &r, &q), -1);
    assert_400(&r, "before must be a positive frame id");
}

static json_t *body(const char *text, struct http_reply *r)
{
    return http_parse_json(text, strlen(text), r);
}

static void json_bodies(void **state)
{
    struct http_reply r = {0};
    json_t *j = body("{\"verdict\":\"defect\",\"note\":\"edge\"}", &r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "defect");
    assert_null(r.body);
    json_decref(j);

    assert_null(body("", &r));
    assert_400(&r, "bad JSON body");
    assert_null(body("[1]", &r));
    assert_400(&r, "must be an object");
    assert_null(body("{\"a\":1,\"a\":2}", &r));
    assert_400(&r, "duplicate");
    assert_null(body("{\"a\":", &r));
    assert_400(&r, "at byte");
    assert_null(body("{\"a\":\"\\u0000\"}", &r));
    assert_400(&r, "bad JSON body");
    /* the body is taken by its length: a NUL byte inside is invalid JSON, not the end */
    assert_null(http_parse_json("{}\0{", 4, &r));
    assert_400(&r, "bad JSON body");
    char *big = malloc(HTTP_MAX_JSON + 2);
    memset(big, ' ', HTTP_MAX_JSON + 1);
    memcpy(big, "{}", 2);
    big[HTTP_MAX_JSON + 1] = '\0';
    assert_null(http_parse_json(big, HTTP_MAX_JSON + 1, &r));
    assert_int_equal(r.status, 413);
    free(r.body);
    r = (struct http_reply){0};
    free(big);
}

/* Parses text as a JSON object and then as a review body. */
static int review(const char *text, struct http_reply *r, const char **verdict, const char **note,
                  json_t **j)
{
    *j = http_parse_json(text, strlen(text), r);
    assert_non_null(*j);
    return api_alerts_review_body(*j, r, verdict, note);
}

static void review_bodies(void **state)
{
    struct http_reply r = {0};
    const char *v = NULL, *note = NULL;
    json_t *j;
    assert_int_equal(review("{\"verdict\":\"defect\",\"note\":\"chip\"}", &r, &v, &note, &j), 0);
    assert_string_equal(v, "defect");
    assert_string_equal(note, "chip");
    json_decref(j);
    assert_int_equal(review("{\"verdict\":\"false_positive\",\"note\":null}", &r, &v, &note, &j),
                     0);
    assert_null(note);
    json_decref(j);

    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{}", "verdict must be"},
        {"{\"verdict\":\"maybe\"}", "verdict must be"},
        {"{\"verdict\":1}", "verdict must be"},
        {"{\"verdict\":\"defect\",\"note\":5}", "note must be a string"},
        {"{\"verdict\":\"defect\",\"note\":\"a\\u0000b\"}", "bad JSON"},
        {"{\"verdict\":\"defect\",\"severity\":2}", "unknown field 'severity'"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        j = http_parse_json(bad[i].body, strlen(bad[i].body), &r);
        if (j) assert_int_equal(api_alerts_review_body(j, &r, &v, &note), -1);
        assert_400(&r, bad[i].why);
        json_decref(j);
    }
}

/* POST /api/v1/train's body: {}, {"fresh": true|false}, {"recipe": NAME}, nothing else. */
static void train_bodies(void **state)
{
    struct http_reply r = {0};
    static const struct {
        const char *body;
        bool fresh;
        const char *recipe;
    } good[] = {{"{}", false, NULL},
                {"{\"fresh\":true}", true, NULL},
                {"{\"fresh\": false}", false, NULL},
                {"{\"recipe\": \"top-1\", \"fresh\": true}", true, "top-1"}};
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        json_t *j = http_parse_json(good[i].body, strlen(good[i].body), &r);
        assert_non_null(j);
        bool fresh = !good[i].fresh;
        const char *recipe = "unset";
        assert_int_equal(api_models_train_body(j, &r, &fresh, &recipe), 0);
        assert_true(fresh == good[i].fresh);
        if (good[i].recipe)
            assert_string_equal(recipe, good[i].recipe);
        else
            assert_null(recipe);
        assert_null(r.body);
        json_decref(j);
    }
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{\"fresh\":1}", "fresh must be true or false"},
        {"{\"fresh\":\"yes\"}", "fresh must be true or false"},
        {"{\"fresh\":null}", "fresh must be true or false"},
        {"{\"fresh\":true,\"minutes\":3}", "unknown field 'minutes'"},
        {"{\"recipe\":3}", "recipe must be a recipe name"},
        {"{\"recipe\":\"a b\"}", "recipe must be a recipe name"},
        {"{\"recipe\":\"\"}", "recipe must be a recipe name"},
        {"[true]", "must be an object"},
        {"fresh", "bad JSON"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        bool fresh = false;
        const char *recipe = NULL;
        json_t *j = http_parse_json(bad[i].body, strlen(bad[i].body), &r);
        if (j) assert_int_equal(api_models_train_body(j, &r, &fresh, &recipe), -1);
        assert_400(&r, bad[i].why);
        assert_false(fresh);
        json_decref(j);
    }
}

/* POST /api/v1/cameras/{name}/recipe's body: {"recipe": NAME} and nothing else. */
static void recipe_switch_bodies(void **state)
{
    struct http_reply r = {0};
    json_t *j = http_parse_json("{\"recipe\": \"plate_2\"}", 21, &r);
    assert_non_null(j);
    const char *recipe = NULL;
    assert_int_equal(api_recipes_switch_body(j, &r, &recipe), 0);
    assert_string_equal(recipe, "plate_2");
    assert_null(r.body);
    json_decref(j);
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{}", "must be {\"recipe\": NAME}"},
        {"{\"recipe\":null}", "recipe must be a recipe name"},
        {"{\"recipe\":\"../x\"}", "recipe must be a recipe name"},
        {"{\"recipe\":\"a\",\"camera\":\"b\"}", "unknown field 'camera'"},
        {"[\"a\"]", "must be an object"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        recipe = NULL;
        j = http_parse_json(bad[i].body, strlen(bad[i].body), &r);
        if (j) assert_int_equal(api_recipes_switch_body(j, &r, &recipe), -1);
        assert_400(&r, bad[i].why);
        json_decref(j);
    }
}

/* PUT /api/v1/recipes/{name}/sensitivity's body: one of false_alarm_rate (0, 1) and threshold
 * (> 0). */
static void sensitivity_bodies(void **state)
{
    struct http_reply r = {0};
    double rate, threshold;
    json_t *j = http_parse_json("{\"false_alarm_rate\": 0.05}", 26, &r);
    assert_int_equal(api_recipes_sensitivity_body(j, &r, &rate, &threshold), 0);
    assert_true(rate == 0.05 && threshold == 0);
    json_decref(j);
    j = http_parse_json("{\"threshold\": 2}", 16, &r);
    assert_int_equal(api_recipes_sensitivity_body(j, &r, &rate, &threshold), 0);
    assert_true(rate == 0 && threshold == 2);
    json_decref(j);
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{}", "the body must be"},
        {"{\"false_alarm_rate\": 0.1, \"threshold\": 2}", "the body must be"},
        {"{\"false_alarm_rate\": 1}", "false_alarm_rate must be"},
        {"{\"false_alarm_rate\": 0}", "false_alarm_rate must be"},
        {"{\"false_alarm_rate\": \"0.1\"}", "false_alarm_rate must be"},
        {"{\"threshold\": -1}", "threshold must be"},
        {"{\"threshold\": null}", "threshold must be"},
        {"{\"rate\": 0.1}", "unknown field 'rate'"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        j = http_parse_json(bad[i].body, strlen(bad[i].body), &r);
        assert_non_null(j);
        assert_int_equal(api_recipes_sensitivity_body(j, &r, &rate, &threshold), -1);
        assert_400(&r, bad[i].why);
        json_decref(j);
    }
}

static void alerts_query(void **state)
{
    struct http_reply r = {0};
    struct alert_filter f;
    int64_t limit;
    const char *ok[] = {"state",        "new",
                        "since",        "2025-11-29T12:00:00Z",
                        "until",        "1764460800000000",
                        "cursor",       "9",
                        "access_token", "x"};
    struct http_request req = with_query(ok, 5);
    assert_int_equal(api_alerts_list_query(&req, &r, &f, &limit), 0);
    assert_string_equal(f.state, "new");
    assert_true(f.since == 1764417600000000LL);
    assert_true(f.until == 1764460800000000LL);
    assert_int_equal(f.before, 9);
    assert_int_equal(limit, 50);

    const char *backwards[] = {"since", "2026-11-29T12:00:00Z", "until", "2026-11-29T11:00:00Z"};
    req = with_query(backwards, 2);
    assert_int_equal(api_alerts_list_query(&req, &r, &f, &limit), -1);
    assert_400(&r, "since must be before until");
    const char *bad_time[] = {"since", "2026-02-30T00:00:00Z"};
    req = with_query(bad_time, 1);
    assert_int_equal(api_alerts_list_query(&req, &r, &f, &limit), -1);
    assert_400(&r, "since must be an RFC 3339 time");
    const char *bad_state[] = {"state", "old"};
    req = with_query(bad_state, 1);
    assert_int_equal(api_alerts_list_query(&req, &r, &f, &limit), -1);
    assert_400(&r, "state must be");
    const char *big[] = {"limit", "501"};
    req = with_query(big, 1);
    assert_int_equal(api_alerts_list_query(&req, &r, &f, &limit), -1);
    assert_400(&r, "limit must be an integer in [1, 500]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_match_with_params),
        cmocka_unit_test(frame_list_query),
        cmocka_unit_test(json_bodies),
        cmocka_unit_test(review_bodies),
        cmocka_unit_test(train_bodies),
        cmocka_unit_test(recipe_switch_bodies),
        cmocka_unit_test(sensitivity_bodies),
        cmocka_unit_test(alerts_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

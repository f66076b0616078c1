/* test_http.c — what the HTTP layer makes of a request before any handler work, on the real route
 * tables: route matching with {params}, 405 with the allowed methods, query checks on decoded
 * arguments, the frame list's query parsing, http_parse_int at its edges, JSON bodies. (The
 * server itself is tested end to end by tests/integration/test_daemon.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http.h"

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
    assert_null(find("GET", "", &req, buf, sizeof buf, allow, &known));
    assert_false(known);

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

static struct http_request with_query(const char *const *kv, size_t n)
{
    struct http_request req = {.method = "GET", .path = "/api/v1/frames", .body = ""};
    for (size_t i = 0; i < n; i++) req.query[i] = (struct http_query_arg){kv[2 * i], kv[2 * i + 1]};
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

static void parse_int_edges(void **state)
{
    int64_t v = 12345;
    assert_int_equal(http_parse_int("9223372036854775807", 1, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(http_parse_int("-9223372036854775808", INT64_MIN, 0, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(http_parse_int("007", 1, 10, &v), 0);
    assert_int_equal(v, 7);
    v = 12345;
    static const char *const bad[] = {"",    "-",    "+1",  " 1", "1 ", "1-2",
                                      "--1", "0x10", "1e3", "11", "-1", "9223372036854775808",
                                      NULL};
    for (const char *const *s = bad; *s; s++)
        if (http_parse_int(*s, 0, 10, &v) != -1) fail_msg("'%s' accepted", *s);
    assert_int_equal(http_parse_int(NULL, 0, 10, &v), -1);
    assert_int_equal(v, 12345); /* untouched on refusal */
}

static int body(const char *text, struct http_reply *r, json_t **j)
{
    struct http_request req = {
        .method = "POST", .path = "/", .body = text, .body_len = strlen(text)};
    return http_json_body(&req, r, j);
}

static void json_bodies(void **state)
{
    struct http_reply r = {0};
    json_t *j = NULL;
    assert_int_equal(body("{\"verdict\":\"defect\",\"note\":\"edge\"}", &r, &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "defect");
    assert_null(r.body);
    json_decref(j);

    assert_int_equal(body("", &r, &j), -1);
    assert_null(j);
    assert_400(&r, "needs a JSON object");
    assert_int_equal(body("[1]", &r, &j), -1);
    assert_400(&r, "must be a JSON object");
    assert_int_equal(body("{\"a\":1,\"a\":2}", &r, &j), -1);
    assert_400(&r, "duplicate");
    assert_int_equal(body("{\"a\":", &r, &j), -1);
    assert_400(&r, "line 1");
    assert_int_equal(body("{\"a\":\"\\u0000\"}", &r, &j), -1);
    assert_400(&r, "not valid JSON");
    /* the body is taken by its length: a NUL byte inside is invalid JSON, not the end */
    struct http_request req = {.method = "POST", .path = "/", .body = "{}\0{", .body_len = 4};
    assert_int_equal(http_json_body(&req, &r, &j), -1);
    assert_400(&r, "not valid JSON");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_match_with_params),
        cmocka_unit_test(frame_list_query),
        cmocka_unit_test(parse_int_edges),
        cmocka_unit_test(json_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_registry_rest.c — the REST registry client (host/codec/
 * registry_rest.c and registry_rest_http.c).
 *
 * Always run: a registry that is down (a closed port: retried with
 * backoff, then a clear error naming the request and id), and what goes
 * on the wire (a one-shot listener on 127.0.0.1 records the request: the
 * basic-auth header, the content type, the subject in the path, the .avsc
 * text as written).
 * Slow and failing registries (a listener that answers 503 before 200,
 * one that never answers): retried, then an error naming the registry's
 * URL.
 * Against a real Confluent-compatible registry (common_registry.h:
 * Apicurio 3.3.3 from scripts/registry-start.sh, or STELE_REGISTRY_URL):
 * the registry conformance suite the embedded registry also runs
 * (tests/unit/registry_conformance.c), and Apicurio's deviations from
 * Confluent that stele must not depend on.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "common_registry.h"
#include "registry_conformance.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A port on 127.0.0.1 with nothing listening (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_registry_down_retries_then_names_the_id(void **s)
{
    (void)s;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port());
    stele_registry_rest_opts o = {
        .url = url, .retries = 3, .backoff_ms = 50, .timeout_ms = 1000};
    stele_registry *reg;
    stele_err err = {0};
    assert_int_equal(stele_registry_open_rest(&o, &reg, &err), 0);
    const char *text;
    double t0 = now_s();
    int rc = stele_registry_lookup(reg, 42, &text, &err);
    double took = now_s() - t0;
    assert_int_equal(rc, STELE_EIO);
    /* 4 attempts, waits 50 + 100 + 200 ms between them. */
    assert_true(took >= 0.33);
    assert_non_null(strstr(err.msg, "schema id 42"));
    assert_non_null(strstr(err.msg, "GET"));
    assert_non_null(strstr(err.msg, "/schemas/ids/42"));
    assert_non_null(strstr(err.msg, "after 4 attempts"));
    stele_registry_close(reg);
}

/* HTTP listener: reads one request per connection, answers `answer`;
 * with `fails`, first answers that many times 503; with `silent`, reads
 * and never answers (until the client gives up). */
typedef struct listener {
    int fd, port;
    char request[8192];
    const char *answer;
    int fails, silent, served;
} listener;

static void read_request(listener *l, int c);

static void *serve_one(void *p)
{
    listener *l = p;
    int c;
    for (;;) {
        c = accept(l->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        read_request(l, c);
        l->served++;
        if (l->silent) {
            char b[256];
            while (read(c, b, sizeof b) > 0)
                ;
            close(c);
            if (l->served >= l->silent)
                return NULL;
            continue;
        }
        if (l->fails-- <= 0)
            break;
        static const char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
            "application/json\r\nContent-Length: 45\r\nConnection: close"
            "\r\n\r\n{\"error_code\": 50003, \"message\": \"busy busy\"}";
        if (write(c, busy, sizeof busy - 1) < 0)
            perror("write");
        close(c);
    }
    char out[512];
    snprintf(out, sizeof out,
             "HTTP/1.1 200 OK\r\nContent-Type: "
             "application/vnd.schemaregistry.v1+json\r\nContent-Length: "
             "%zu\r\nConnection: close\r\n\r\n%s",
             strlen(l->answer), l->answer);
    if (write(c, out, strlen(out)) < 0)
        perror("write");
    close(c);
    return NULL;
}

static void read_request(listener *l, int c)
{
    size_t n = 0;
    while (n < sizeof l->request - 1) {
        ssize_t r = read(c, l->request + n, sizeof l->request - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        l->request[n] = '\0';
        char *body = strstr(l->request, "\r\n\r\n");
        char *cl = strcasestr(l->request, "Content-Length:");
        if (body && (!cl || strlen(body + 4) >= (size_t)atoi(cl + 15)))
            break;
    }
}

static void listener_start(listener *l, pthread_t *t)
{
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l->fd, 8), 0);
    getsockname(l->fd, (struct sockaddr *)&a, &len);
    l->port = ntohs(a.sin_port);
    pthread_create(t, NULL, serve_one, l);
}

static const char *AVSC = "{\"type\": \"record\", \"name\": \"Deposited\",\n"
                          " \"namespace\": \"bank\", \"fields\": [\n"
                          "  {\"name\": \"amount\", \"type\": \"long\", "
                          "\"default\": 0}]}";

static void test_register_sends_auth_content_type_and_text(void **s)
{
    (void)s;
    listener l = {.answer = "{\"id\": 17}"};
    pthread_t t;
    listener_start(&l, &t);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/apis/ccompat/v7/", l.port);
    stele_registry_rest_opts o = {.url = url,
                                  .username = "stele",
                                  .password = "pw",
                                  .strategy = STELE_SUBJECT_TOPIC_RECORD};
    stele_registry *reg;
    stele_err err = {0};
    assert_int_equal(stele_registry_open_rest(&o, &reg, &err), 0);
    char subject[200];
    assert_int_equal(stele_registry_subject(reg, "bank.Account.events",
                                            "bank.Deposited", subject,
                                            sizeof subject),
                     0);
    assert_string_equal(subject, "bank.Account.events-bank.Deposited");
    int32_t id = 0;
    if (stele_registry_register(reg, subject, AVSC, &id, &err))
        fail_msg("%s", err.msg);
    pthread_join(t, NULL);
    close(l.fd);
    assert_int_equal(id, 17);
    assert_non_null(strstr(l.request, "POST /apis/ccompat/v7/subjects/"
                                      "bank.Account.events-bank.Deposited/"
                                      "versions HTTP/1.1"));
    /* base64("stele:pw") */
    assert_non_null(strstr(l.request, "Authorization: Basic c3RlbGU6cHc="));
    assert_non_null(strstr(
        l.request, "Content-Type: application/vnd.schemaregistry.v1+json"));
    /* The text as written, defaults and newlines included (JSON-escaped). */
    assert_non_null(strstr(l.request, "\\\"default\\\": 0}]}"));
    assert_non_null(strstr(l.request, "\\n \\\"namespace\\\""));
    /* Cached: a second registration asks nothing (no listener now). */
    id = 0;
    assert_int_equal(stele_registry_register(reg, subject, AVSC, &id, &err), 0);
    assert_int_equal(id, 17);
    stele_registry_close(reg);
}

/* ------------------------------------------------------------------ */
/* Slow and failing registries                                          */

static void test_5xx_is_retried_then_succeeds(void **s)
{
    (void)s;
    listener l = {.answer = "{\"schema\": \"\\\"long\\\"\"}", .fails = 2};
    pthread_t t;
    listener_start(&l, &t);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", l.port);
    stele_registry_rest_opts o = {.url = url, .retries = 3, .backoff_ms = 20};
    stele_registry *reg;
    stele_err err = {0};
    assert_int_equal(stele_registry_open_rest(&o, &reg, &err), 0);
    uint64_t before = stele_registry_rest_requests();
    const char *text;
    if (stele_registry_lookup(reg, 5, &text, &err))
        fail_msg("%s", err.msg);
    pthread_join(t, NULL);
    close(l.fd);
    assert_string_equal(text, "\"long\"");
    assert_int_equal(l.served, 3);
    /* Every attempt is a request. */
    assert_int_equal(stele_registry_rest_requests() - before, 3);
    stele_registry_close(reg);
}

static void test_5xx_exhausted_names_the_registry_url(void **s)
{
    (void)s;
    listener l = {.answer = "{}", .fails = 100};
    pthread_t t;
    listener_start(&l, &t);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/apis/ccompat/v7", l.port);
    stele_registry_rest_opts o = {.url = url, .retries = 2, .backoff_ms = 20};
    stele_registry *reg;
    stele_err err = {0};
    assert_int_equal(stele_registry_open_rest(&o, &reg, &err), 0);
    const char *text;
    assert_int_equal(stele_registry_lookup(reg, 8, &text, &err), STELE_EIO);
    assert_non_null(strstr(err.msg, url));
    assert_non_null(strstr(err.msg, "HTTP 503"));
    assert_non_null(strstr(err.msg, "busy busy"));
    assert_non_null(strstr(err.msg, "after 3 attempts"));
    stele_registry_close(reg);
    pthread_cancel(t);
    pthread_join(t, NULL);
    close(l.fd);
}

static void test_silent_registry_times_out_naming_the_url(void **s)
{
    (void)s;
    listener l = {.answer = "{}", .silent = 2};
    pthread_t t;
    listener_start(&l, &t);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", l.port);
    stele_registry_rest_opts o = {
        .url = url, .retries = 1, .backoff_ms = 20, .timeout_ms = 300};
    stele_registry *reg;
    stele_err err = {0};
    assert_int_equal(stele_registry_open_rest(&o, &reg, &err), 0);
    double t0 = now_s();
    const char *text;
    assert_int_equal(stele_registry_lookup(reg, 9, &text, &err), STELE_EIO);
    double took = now_s() - t0;
    assert_true(took >= 0.6 && took < 5);
    assert_non_null(strstr(err.msg, url));
    assert_non_null(strstr(err.msg, "/schemas/ids/9"));
    assert_non_null(strstr(err.msg, "after 2 attempts"));
    stele_registry_close(reg);
    pthread_join(t, NULL);
    close(l.fd);
}

/* ------------------------------------------------------------------ */
/* Against a real registry                                              */

static char run_prefix[64];

static int real_setup(void **fx)
{
    *fx = NULL;
    return 0;
}

static int real_open(void *fx, stele_registry **out, stele_err *err)
{
    (void)fx;
    stele_registry_rest_opts o = {.url = crt_url()};
    return stele_registry_open_rest(&o, out, err);
}

static void real_teardown(void *fx)
{
    (void)fx;
}

static stele_registry *real_registry(void)
{
    stele_registry *reg;
    stele_err err = {0};
    if (real_open(NULL, &reg, &err))
        fail_msg("%s", err.msg);
    return reg;
}

/* Apicurio: the same text under a second subject may get an id of its
 * own, and a whitespace variant does. Each id still names the text, and
 * stele finds its schema under its own subject by text: it never needs
 * one id per schema. */
static void test_real_whitespace_variant_gets_its_own_id(void **s)
{
    (void)s;
    stele_registry *reg = real_registry();
    char a_subj[128], b_subj[128], t1[256], t2[256];
    snprintf(a_subj, sizeof a_subj, "%sws.a", run_prefix);
    snprintf(b_subj, sizeof b_subj, "%sws.b", run_prefix);
    snprintf(t1, sizeof t1,
             "{\"type\":\"record\",\"name\":\"W\",\"namespace\":\"%.40sws\","
             "\"fields\":[{\"name\":\"n\",\"type\":\"int\"}]}",
             run_prefix);
    for (char *p = t1; *p; p++)
        if (*p == '-')
            *p = '_';
    /* the same schema, spaced out */
    size_t j = 0;
    for (size_t i = 0; t1[i] && j < sizeof t2 - 3; i++) {
        t2[j++] = t1[i];
        if (t1[i] == ',' || t1[i] == ':')
            t2[j++] = ' ';
    }
    t2[j] = '\0';
    int32_t a = 0, b = 0;
    stele_err err = {0};
    if (stele_registry_register(reg, a_subj, t1, &a, &err) ||
        stele_registry_register(reg, b_subj, t2, &b, &err))
        fail_msg("%s", err.msg);
    print_message("whitespace variant under a new subject: ids %d and %d\n", a,
                  b);
    const char *text;
    assert_int_equal(stele_registry_lookup(reg, b, &text, &err), 0);
    assert_non_null(strstr(text, "\"n\""));
    stele_registry_schema got = {0};
    assert_int_equal(stele_registry_find(reg, b_subj, t2, &got, &err), 0);
    assert_int_equal(got.id, b);
    stele_registry_schema_clear(&got);
    assert_int_equal(stele_registry_find(reg, a_subj, t1, &got, &err), 0);
    assert_int_equal(got.id, a);
    stele_registry_schema_clear(&got);
    stele_registry_close(reg);
}

/* A registry restarted empty (Apicurio keeps schemas in memory) hands out
 * the ids it gave before to other schemas. What the REST client does:
 * a handle that fetched id N keeps the old text (ids are cached as
 * immutable); a new handle gets the new schema under the same id. The
 * stele-level consequence is tested in tests/interop/ (a host that
 * writes after such a restart). */
static void test_real_restarted_empty_reuses_ids(void **s)
{
    (void)s;
    char url[96];
    if (crt_private_registry(18091, "restart", url, sizeof url))
        fail_msg("cannot start a registry of the test's own on 18091");
    stele_registry_rest_opts o = {.url = url};
    stele_registry *old, *fresh;
    stele_err err = {0};
    assert_int_equal(stele_registry_open_rest(&o, &old, &err), 0);
    const char *ta = "{\"type\":\"record\",\"name\":\"A\",\"fields\":"
                     "[{\"name\":\"x\",\"type\":\"long\"}]}";
    const char *tb = "{\"type\":\"record\",\"name\":\"B\",\"fields\":"
                     "[{\"name\":\"y\",\"type\":\"string\"}]}";
    int32_t ia = 0, ib = 0;
    if (stele_registry_register(old, "A", ta, &ia, &err))
        fail_msg("%s", err.msg);
    const char *text;
    assert_int_equal(stele_registry_lookup(old, ia, &text, &err), 0);
    if (crt_private_registry(18091, "restart", NULL, 0))
        fail_msg("cannot restart the registry on 18091");
    assert_int_equal(stele_registry_open_rest(&o, &fresh, &err), 0);
    if (stele_registry_register(fresh, "B", tb, &ib, &err))
        fail_msg("%s", err.msg);
    print_message("before the restart A had id %d; after it B got id %d\n", ia,
                  ib);
    assert_int_equal(ib, ia); /* the same id, now another schema */
    assert_int_equal(stele_registry_lookup(old, ia, &text, &err), 0);
    assert_non_null(strstr(text, "\"A\"")); /* cached */
    assert_int_equal(stele_registry_lookup(fresh, ia, &text, &err), 0);
    assert_non_null(strstr(text, "\"B\""));
    /* The old handle's cached registration of A is also stale: it answers
     * A's old id without asking, though the registry no longer has A. */
    int32_t again = 0;
    assert_int_equal(stele_registry_register(old, "A", ta, &again, &err), 0);
    assert_int_equal(again, ia);
    stele_registry_close(old);
    stele_registry_close(fresh);
}

/* The registry of the restart test stops even when the test failed. */
static int stop_private_registry(void **state)
{
    (void)state;
    crt_private_registry(18091, "stop", NULL, 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_down_retries_then_names_the_id),
        cmocka_unit_test(test_register_sends_auth_content_type_and_text),
        cmocka_unit_test(test_5xx_is_retried_then_succeeds),
        cmocka_unit_test(test_5xx_exhausted_names_the_registry_url),
        cmocka_unit_test(test_silent_registry_times_out_naming_the_url),
    };
    int failed = cmocka_run_group_tests_name("REST client", tests, NULL, NULL);
    if (crt_ensure_registry())
        return 1;
    snprintf(run_prefix, sizeof run_prefix, "stele-test-%ld-%d.",
             (long)time(NULL), (int)getpid());
    const registry_conformance_backend b = {
        .name = "registry conformance: REST client on a real registry",
        .setup = real_setup,
        .open = real_open,
        .teardown = real_teardown,
        .subject_prefix = run_prefix,
        .ids_across_subjects = RC_IDS_EITHER, /* Apicurio: not always one */
        .register_checks_compat = true,
    };
    failed += registry_conformance_run(&b);
    const struct CMUnitTest real[] = {
        cmocka_unit_test(test_real_whitespace_variant_gets_its_own_id),
        cmocka_unit_test(test_real_restarted_empty_reuses_ids),
    };
    failed += cmocka_run_group_tests_name("Apicurio deviations", real, NULL,
                                          stop_private_registry);
    return failed ? 1 : 0;
}

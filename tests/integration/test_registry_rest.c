/*
 * test_registry_rest.c — the REST registry client (host/codec/
 * registry_rest.c and registry_rest_http.c).
 *
 * Always run: a registry that is down (a closed port: retried with
 * backoff, then a clear error naming the request and id), and what goes
 * on the wire (a one-shot listener on 127.0.0.1 records the request: the
 * basic-auth header, the content type, the subject in the path, the .avsc
 * text as written).
 * Against a real Confluent-compatible registry when STELE_REGISTRY_URL is
 * set (e.g. http://127.0.0.1:8081): register, find, fetch by id, latest,
 * compatibility test and config, record and topic-record subjects.
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

/* One-shot HTTP listener: reads one request, answers `answer`. */
typedef struct listener {
    int fd, port;
    char request[8192];
    const char *answer;
} listener;

static void *serve_one(void *p)
{
    listener *l = p;
    int c = accept(l->fd, NULL, NULL);
    size_t n = 0;
    while (c >= 0 && n < sizeof l->request - 1) {
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
    char out[512];
    snprintf(out, sizeof out,
             "HTTP/1.1 200 OK\r\nContent-Type: "
             "application/vnd.schemaregistry.v1+json\r\nContent-Length: "
             "%zu\r\nConnection: close\r\n\r\n%s",
             strlen(l->answer), l->answer);
    if (c >= 0) {
        if (write(c, out, strlen(out)) < 0)
            perror("write");
        close(c);
    }
    return NULL;
}

static void listener_start(listener *l, pthread_t *t)
{
    l->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l->fd, 1), 0);
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
/* Against a real registry                                              */

static void test_real_registry_round_trip(void **s)
{
    (void)s;
    const char *url = getenv("STELE_REGISTRY_URL");
    if (!url || !*url)
        skip();
    stele_registry_rest_opts o = {.url = url};
    stele_registry *reg;
    stele_err err = {0};
    assert_int_equal(stele_registry_open_rest(&o, &reg, &err), 0);
    char subject[128];
    snprintf(subject, sizeof subject, "stele.test.Deposited%ld",
             (long)time(NULL));
    int32_t id = 0, id2 = 0;
    if (stele_registry_register(reg, subject, AVSC, &id, &err))
        fail_msg("%s", err.msg);
    assert_true(id > 0);
    const char *text;
    assert_int_equal(stele_registry_lookup(reg, id, &text, &err), 0);
    stele_registry_schema got = {0};
    assert_int_equal(stele_registry_find(reg, subject, AVSC, &got, &err), 0);
    assert_int_equal(got.id, id);
    assert_int_equal(got.version, 1);
    stele_registry_schema_clear(&got);
    assert_int_equal(stele_registry_version(reg, subject, -1, &got, &err), 0);
    assert_int_equal(got.id, id);
    stele_registry_schema_clear(&got);
    assert_int_equal(
        stele_registry_set_compat(reg, subject, STELE_COMPAT_BACKWARD, &err),
        0);
    stele_compat_mode m;
    assert_int_equal(stele_registry_get_compat(reg, subject, &m, &err), 0);
    assert_int_equal(m, STELE_COMPAT_BACKWARD);
    /* A new field without a default is not backward compatible. */
    const char *v2 = "{\"type\":\"record\",\"name\":\"Deposited\","
                     "\"namespace\":\"bank\",\"fields\":[{\"name\":"
                     "\"amount\",\"type\":\"long\"},{\"name\":\"note\","
                     "\"type\":\"string\"}]}";
    bool ok = true;
    stele_compat_report rep = {0};
    assert_int_equal(stele_registry_test_compat(reg, subject, v2,
                                                STELE_COMPAT_BACKWARD, &ok,
                                                &rep, &err),
                     0);
    assert_false(ok);
    stele_compat_report_clear(&rep);
    assert_int_not_equal(stele_registry_register(reg, subject, v2, &id2, &err),
                         0);
    assert_non_null(strstr(err.msg, subject));
    assert_int_equal(stele_registry_lookup(reg, 999999, &text, &err),
                     STELE_ENOTFOUND);
    assert_non_null(strstr(err.msg, "999999"));
    stele_registry_close(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_down_retries_then_names_the_id),
        cmocka_unit_test(test_register_sends_auth_content_type_and_text),
        cmocka_unit_test(test_real_registry_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

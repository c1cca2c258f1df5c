/*
 * http.c — the REST registry client's HTTP transport, over
 * libcurl: basic auth and TLS as configured, bounded answers.
 *
 * One curl handle, reused so connections stay open. Every request is
 * retried on a connection error or a 5xx answer, with exponential backoff,
 * a bounded number of times: a registry that restarts does not fail a
 * decode, and one that stays down fails it with the reason, never with a
 * default value. 4xx answers are final and reported with the registry's
 * error_code and message.
 */
#define _GNU_SOURCE
#include "http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
/* A schema is at most STELE_REGISTRY_MAX_SCHEMA; answers list a few more. */
#define MAX_BODY (2u * STELE_REGISTRY_MAX_SCHEMA)
#define MAX_BACKOFF_MS 5000

static atomic_uint_fast64_t requests;

uint64_t stele_registry_rest_requests(void)
{
    return (uint64_t)atomic_load(&requests);
}

typedef struct body {
    char *data;
    size_t len;
    bool too_large;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > MAX_BODY) {
        b->too_large = true;
        return 0;
    }
    char *d = realloc(b->data, b->len + n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, ptr, n);
    b->len += n;
    d[b->len] = '\0';
    b->data = d;
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static bool transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: return true;
    default: return false;
    }
}

/* "HTTP 404, error_code 40401: Subject 'x' not found." from an answer. */
static void describe(long status, const body *b, char *buf, size_t size)
{
    json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    json_t *code = json_object_get(j, "error_code");
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (json_is_integer(code) && msg)
        snprintf(buf, size, "HTTP %ld, error_code %lld: %s", status,
                 (long long)json_integer_value(code), msg);
    else
        snprintf(buf, size, "HTTP %ld: %.200s", status,
                 b->data ? b->data : "(empty answer)");
    json_decref(j);
}

int registry_http_request(rest_http *r, const char *method, const char *path,
                          const json_t *payload, long *status, json_t **out,
                          int32_t *error_code, const char *what, stele_err *err)
{
    char *url = NULL, *data = NULL;
    *out = NULL;
    *status = 0;
    if (error_code)
        *error_code = 0;
    if (asprintf(&url, "%s%s", r->url, path) < 0)
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    if (payload && !(data = json_dumps(payload, JSON_COMPACT))) {
        free(url);
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    }
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Accept: " CONTENT_TYPE ", application/json");
    hdr = curl_slist_append(hdr, "Content-Type: " CONTENT_TYPE);
    int rc = STELE_EIO;
    long wait = r->backoff_ms;
    for (int attempt = 0;; attempt++) {
        body b = {0};
        CURL *c = r->curl;
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (data) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
        }
        if (r->username) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERNAME, r->username);
            curl_easy_setopt(c, CURLOPT_PASSWORD,
                             r->password ? r->password : "");
        }
        if (r->ca_file)
            curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
        if (r->cert_file)
            curl_easy_setopt(c, CURLOPT_SSLCERT, r->cert_file);
        if (r->key_file)
            curl_easy_setopt(c, CURLOPT_SSLKEY, r->key_file);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, r->insecure ? 0L : 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, r->insecure ? 0L : 2L);

        atomic_fetch_add(&requests, 1);
        CURLcode cc = curl_easy_perform(c);
        char why[600];
        bool retry = false;
        if (cc != CURLE_OK) {
            snprintf(why, sizeof why, "%s",
                     b.too_large ? "answer larger than the limit"
                                 : curl_easy_strerror(cc));
            retry = transient(cc);
            rc = b.too_large ? STELE_ENOMEM : STELE_EIO;
        } else {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
            if (*status >= 500) {
                describe(*status, &b, why, sizeof why);
                retry = true;
                rc = STELE_EIO;
            } else {
                rc = 0;
                if (*status >= 200 && *status < 300) {
                    json_error_t jerr;
                    *out = json_loadb(b.data ? b.data : "", b.len,
                                      JSON_DECODE_ANY, &jerr);
                    if (!*out) {
                        snprintf(why, sizeof why,
                                 "HTTP %ld with an answer that is not JSON "
                                 "(%s)",
                                 *status, jerr.text);
                        rc = STELE_EIO;
                    }
                } else {
                    describe(*status, &b, why, sizeof why);
                    json_t *j =
                        b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
                    if (error_code)
                        *error_code = (int32_t)json_integer_value(
                            json_object_get(j, "error_code"));
                    json_decref(j);
                    rc = *status == 404 ? STELE_ENOTFOUND : STELE_EINVAL;
                    stele_err_set(err, rc, "%s: %s %s: %s", what, method, path,
                                  why);
                    free(b.data);
                    break;
                }
            }
        }
        free(b.data);
        if (rc == 0)
            break;
        if (!retry || attempt >= r->retries) {
            stele_err_set(err, rc, "%s: %s %s%s: %s (after %d attempt%s)", what,
                          method, r->url, path, why, attempt + 1,
                          attempt ? "s" : "");
            break;
        }
        sleep_ms(wait);
        wait = wait * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : wait * 2;
    }
    curl_slist_free_all(hdr);
    free(url);
    free(data);
    return rc;
}

char *registry_http_subject_path(rest_http *r, const char *prefix,
                                 const char *subject, const char *rest)
{
    char *esc = curl_easy_escape(r->curl, subject, 0);
    char *p = NULL;
    if (esc && asprintf(&p, "%s%s%s", prefix, esc, rest) < 0)
        p = NULL;
    curl_free(esc);
    return p;
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool dup_opt(const char *in, char **out)
{
    *out = in && *in ? strdup(in) : NULL;
    return !in || !*in || *out;
}

int registry_http_open(rest_http *r, const stele_registry_rest_opts *opts,
                       stele_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    r->insecure = opts->insecure;
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    r->retries = opts->retries < 0 ? 0 : opts->retries ? opts->retries : 4;
    r->backoff_ms = opts->backoff_ms > 0 ? opts->backoff_ms : 100;
    bool ok = dup_opt(opts->url, &r->url) &&
              dup_opt(opts->username, &r->username) &&
              dup_opt(opts->password, &r->password) &&
              dup_opt(opts->ca_file, &r->ca_file) &&
              dup_opt(opts->cert_file, &r->cert_file) &&
              dup_opt(opts->key_file, &r->key_file);
    r->curl = curl_easy_init();
    if (!ok || !r->curl) {
        registry_http_close(r);
        return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
    }
    size_t n = strlen(r->url);
    while (n > 0 && r->url[n - 1] == '/')
        r->url[--n] = '\0';
    return 0;
}

void registry_http_close(rest_http *r)
{
    if (r->curl)
        curl_easy_cleanup(r->curl);
    free(r->url);
    free(r->username);
    free(r->password);
    free(r->ca_file);
    free(r->cert_file);
    free(r->key_file);
    memset(r, 0, sizeof *r);
}

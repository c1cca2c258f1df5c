/*
 * registry_rest.c — a client of the Confluent Schema Registry REST API
 * over libcurl (Confluent, Karapace, Apicurio's ccompat API, Redpanda).
 *
 * One curl handle, reused so connections stay open. Every request is
 * retried on a connection error or a 5xx answer, with exponential backoff,
 * a bounded number of times: a registry that restarts does not fail a
 * decode, and one that stays down fails it with the reason, never with a
 * default value. 4xx answers are final and reported with the registry's
 * error_code and message.
 */
#define _GNU_SOURCE
#include "codec_private.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
/* A schema is at most STELE_CODEC_MAX_VALUE; answers list a few more. */
#define MAX_BODY (2u * STELE_CODEC_MAX_VALUE)
#define MAX_BACKOFF_MS 5000

typedef struct rest_registry {
    stele_registry base;
    CURL *curl;
    char *url; /* without a trailing slash */
    char *username, *password, *ca_file, *cert_file, *key_file;
    bool insecure;
    long timeout_ms;
    int retries, backoff_ms;
    stele_map *by_id;      /* int32_t id -> text (owned) */
    stele_map *registered; /* subject "\0" text -> id */
    pthread_mutex_t lock;
} rest_registry;

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

/*
 * One request. *status is the HTTP status of the last attempt and *out
 * the parsed answer of a 2xx. Returns 0 for a 2xx, STELE_ENOTFOUND for a
 * 404, STELE_EINVAL for another 4xx (err has the registry's error_code and
 * message), STELE_EIO when the retries are exhausted. `what` names the
 * request for messages.
 */
static int request(rest_registry *r, const char *method, const char *path,
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

/* "/subjects/<escaped subject><rest>" */
static char *subject_path(rest_registry *r, const char *prefix,
                          const char *subject, const char *rest)
{
    char *esc = curl_easy_escape(r->curl, subject, 0);
    char *p = NULL;
    if (esc && asprintf(&p, "%s%s%s", prefix, esc, rest) < 0)
        p = NULL;
    curl_free(esc);
    return p;
}

static int no_memory(stele_err *err)
{
    return stele_err_set(err, STELE_ENOMEM, "schema registry: no memory");
}

static json_t *schema_payload(const char *text)
{
    return json_pack("{s:s, s:s}", "schema", text, "schemaType", "AVRO");
}

static int rest_register(stele_registry *reg, const char *subject,
                         const char *text, int32_t *id, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    size_t ls = strlen(subject), lt = strlen(text);
    char *key = malloc(ls + 1 + lt);
    if (!key)
        return no_memory(err);
    memcpy(key, subject, ls + 1);
    memcpy(key + ls + 1, text, lt);
    int32_t cached =
        (int32_t)(intptr_t)stele_map_get(r->registered, key, ls + 1 + lt);
    if (cached) {
        free(key);
        *id = cached;
        return 0;
    }
    char what[300];
    snprintf(what, sizeof what, "schema registry: registering under %s",
             subject);
    char *path = subject_path(r, "/subjects/", subject, "/versions");
    json_t *payload = schema_payload(text), *ans = NULL;
    long status = 0;
    int rc = path && payload ? request(r, "POST", path, payload, &status, &ans,
                                       NULL, what, err)
                             : no_memory(err);
    if (rc == 0) {
        json_int_t got = json_integer_value(json_object_get(ans, "id"));
        if (got <= 0 || got > INT32_MAX)
            rc =
                stele_err_set(err, STELE_EIO, "%s: the answer has no id", what);
        else if (stele_map_put(r->registered, key, ls + 1 + lt,
                               (void *)(intptr_t)got, NULL))
            rc = no_memory(err);
        else
            *id = (int32_t)got;
    }
    if (rc == STELE_EINVAL && status == 409)
        stele_err_prefix(err, "incompatible schema (version not "
                              "registered)");
    json_decref(ans);
    json_decref(payload);
    free(path);
    free(key);
    return rc;
}

static void free_text(void *p)
{
    free(p);
}

static int rest_lookup(stele_registry *reg, int32_t id, const char **text,
                       stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    pthread_mutex_lock(&r->lock);
    char *t = stele_map_get(r->by_id, &id, sizeof id);
    int rc = 0;
    if (!t) {
        char path[64], what[80];
        snprintf(path, sizeof path, "/schemas/ids/%d", id);
        snprintf(what, sizeof what, "schema registry: schema id %d", id);
        long status;
        int32_t code;
        json_t *ans;
        rc = request(r, "GET", path, NULL, &status, &ans, &code, what, err);
        if (rc == STELE_ENOTFOUND)
            stele_err_set(err, rc,
                          "schema registry: unknown schema id %d "
                          "(HTTP 404, error_code %d)",
                          id, code);
        const char *s = json_string_value(json_object_get(ans, "schema"));
        if (rc == 0 && !s)
            rc = stele_err_set(err, STELE_EIO, "%s: the answer has no schema",
                               what);
        if (rc == 0 && (!(t = strdup(s)) ||
                        stele_map_put(r->by_id, &id, sizeof id, t, NULL))) {
            free(t);
            t = NULL;
            rc = no_memory(err);
        }
        json_decref(ans);
    }
    pthread_mutex_unlock(&r->lock);
    if (rc == 0)
        *text = t;
    return rc;
}

/* Fills out from a {subject, version, id, schema} answer. */
static int fill(json_t *ans, const char *subject, stele_registry_schema *out,
                stele_err *err)
{
    const char *s = json_string_value(json_object_get(ans, "schema"));
    const char *subj = json_string_value(json_object_get(ans, "subject"));
    out->version = (int)json_integer_value(json_object_get(ans, "version"));
    out->id = (int32_t)json_integer_value(json_object_get(ans, "id"));
    if (!s || out->id <= 0)
        return stele_err_set(err, STELE_EIO,
                             "schema registry: %s: the answer lacks the "
                             "schema or its id",
                             subject);
    out->subject = strdup(subj ? subj : subject);
    out->text = strdup(s);
    if (!out->subject || !out->text) {
        stele_registry_schema_clear(out);
        return no_memory(err);
    }
    return 0;
}

/* A GET or POST whose 404 means "no such subject/version/schema". */
static int fetch(rest_registry *r, const char *method, const char *path,
                 const json_t *payload, const char *what, json_t **ans,
                 stele_err *err)
{
    long status;
    return request(r, method, path, payload, &status, ans, NULL, what, err);
}

static int rest_find(stele_registry *reg, const char *subject, const char *text,
                     stele_registry_schema *out, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char what[300];
    snprintf(what, sizeof what, "schema registry: looking up a schema under %s",
             subject);
    char *path = subject_path(r, "/subjects/", subject, "");
    json_t *payload = schema_payload(text), *ans = NULL;
    int rc = path && payload ? fetch(r, "POST", path, payload, what, &ans, err)
                             : no_memory(err);
    if (rc == 0)
        rc = fill(ans, subject, out, err);
    json_decref(ans);
    json_decref(payload);
    free(path);
    return rc;
}

static int rest_version(stele_registry *reg, const char *subject, int version,
                        stele_registry_schema *out, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char rest[48], what[300];
    if (version == -1)
        snprintf(rest, sizeof rest, "/versions/latest");
    else
        snprintf(rest, sizeof rest, "/versions/%d", version);
    snprintf(what, sizeof what, "schema registry: %s version %s", subject,
             rest + 10);
    char *path = subject_path(r, "/subjects/", subject, rest);
    json_t *ans = NULL;
    int rc =
        path ? fetch(r, "GET", path, NULL, what, &ans, err) : no_memory(err);
    if (rc == 0)
        rc = fill(ans, subject, out, err);
    json_decref(ans);
    free(path);
    return rc;
}

static int rest_subjects(stele_registry *reg, char ***out, size_t *n,
                         stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    json_t *ans = NULL;
    int rc = fetch(r, "GET", "/subjects", NULL, "schema registry: subjects",
                   &ans, err);
    if (rc == 0 && !json_is_array(ans))
        rc = stele_err_set(err, STELE_EIO,
                           "schema registry: GET /subjects: not a list");
    size_t count = rc ? 0 : json_array_size(ans);
    char **v = rc == 0 ? calloc(count ? count : 1, sizeof *v) : NULL;
    if (rc == 0 && !v)
        rc = no_memory(err);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *s = json_string_value(json_array_get(ans, i));
        if (!(v[i] = strdup(s ? s : "")))
            rc = no_memory(err);
    }
    json_decref(ans);
    if (rc) {
        stele_registry_strings_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

static int rest_versions(stele_registry *reg, const char *subject, int **out,
                         size_t *n, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char what[300];
    snprintf(what, sizeof what, "schema registry: versions of %s", subject);
    char *path = subject_path(r, "/subjects/", subject, "/versions");
    json_t *ans = NULL;
    int rc =
        path ? fetch(r, "GET", path, NULL, what, &ans, err) : no_memory(err);
    free(path);
    if (rc == 0 && !json_is_array(ans))
        rc = stele_err_set(err, STELE_EIO, "%s: not a list", what);
    size_t count = rc ? 0 : json_array_size(ans);
    if (rc == 0 && !(*out = malloc((count ? count : 1) * sizeof **out)))
        rc = no_memory(err);
    for (size_t i = 0; rc == 0 && i < count; i++)
        (*out)[i] = (int)json_integer_value(json_array_get(ans, i));
    if (rc == 0)
        *n = count;
    json_decref(ans);
    return rc;
}

static int rest_get_compat(stele_registry *reg, const char *subject,
                           stele_compat_mode *out, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char what[300];
    snprintf(what, sizeof what, "schema registry: compatibility of %s",
             subject);
    char *path = subject_path(r, "/config/", subject, "");
    json_t *ans = NULL;
    int rc =
        path ? fetch(r, "GET", path, NULL, what, &ans, err) : no_memory(err);
    free(path);
    if (rc == 0) {
        json_t *m = json_object_get(ans, "compatibilityLevel");
        if (!m)
            m = json_object_get(ans, "compatibility");
        if (stele_compat_mode_parse(json_string_value(m), out))
            rc = stele_err_set(err, STELE_EIO, "%s: unknown mode in %s", what,
                               "the answer");
    }
    json_decref(ans);
    return rc;
}

static int rest_set_compat(stele_registry *reg, const char *subject,
                           stele_compat_mode mode, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char what[300];
    snprintf(what, sizeof what,
             "schema registry: setting the compatibility "
             "of %s",
             subject);
    char *path = subject_path(r, "/config/", subject, "");
    json_t *payload =
        json_pack("{s:s}", "compatibility", stele_compat_mode_name(mode));
    json_t *ans = NULL;
    int rc = path && payload ? fetch(r, "PUT", path, payload, what, &ans, err)
                             : no_memory(err);
    json_decref(ans);
    json_decref(payload);
    free(path);
    return rc;
}

static int rest_test_compat(stele_registry *reg, const char *subject,
                            const char *text, bool *compatible,
                            stele_compat_report *rep, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char what[300];
    snprintf(what, sizeof what, "schema registry: compatibility test of %s",
             subject);
    char *path = subject_path(r, "/compatibility/subjects/", subject,
                              "/versions/latest?verbose=true");
    json_t *payload = schema_payload(text), *ans = NULL;
    int rc = path && payload ? fetch(r, "POST", path, payload, what, &ans, err)
                             : no_memory(err);
    free(path);
    json_decref(payload);
    if (rc == STELE_ENOTFOUND) { /* no subject or no version yet */
        *compatible = true;
        return 0;
    }
    if (rc == 0) {
        *compatible = json_is_true(json_object_get(ans, "is_compatible"));
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(ans, "messages"), i, m)
        {
            const char *s = json_string_value(m);
            char **msgs =
                rep->n == rep->cap
                    ? realloc(rep->msgs,
                              (rep->cap ? rep->cap * 2 : 8) * sizeof *msgs)
                    : rep->msgs;
            if (!msgs || !s) {
                rc = s ? no_memory(err) : 0;
                if (rc)
                    break;
                continue;
            }
            if (rep->n == rep->cap)
                rep->cap = rep->cap ? rep->cap * 2 : 8;
            rep->msgs = msgs;
            if (!(rep->msgs[rep->n] = strdup(s))) {
                rc = no_memory(err);
                break;
            }
            rep->n++;
        }
        if (!*compatible && rep->n == 0 && rc == 0 &&
            !(rep->msgs = calloc(1, sizeof *rep->msgs)))
            rc = no_memory(err);
        if (!*compatible && rep->n == 0 && rc == 0) {
            rep->cap = 1;
            if (!(rep->msgs[0] = strdup("the registry says the schema is "
                                        "incompatible (no reason given)")))
                rc = no_memory(err);
            else
                rep->n = 1;
        }
    }
    json_decref(ans);
    return rc;
}

static void rest_close(stele_registry *reg)
{
    rest_registry *r = (rest_registry *)reg;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    stele_map_free(r->by_id, free_text);
    stele_map_free(r->registered, NULL);
    free(r->url);
    free(r->username);
    free(r->password);
    free(r->ca_file);
    free(r->cert_file);
    free(r->key_file);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static const registry_ops rest_ops = {.register_schema = rest_register,
                                      .lookup = rest_lookup,
                                      .close = rest_close,
                                      .find = rest_find,
                                      .version = rest_version,
                                      .subjects = rest_subjects,
                                      .versions = rest_versions,
                                      .get_compat = rest_get_compat,
                                      .set_compat = rest_set_compat,
                                      .test_compat = rest_test_compat};

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool dup_opt(const char *in, char **out)
{
    *out = in && *in ? strdup(in) : NULL;
    return !in || !*in || *out;
}

int stele_registry_open_rest(const stele_registry_rest_opts *opts,
                             stele_registry **out, stele_err *err)
{
    if (!opts || !out || !opts->url || !*opts->url)
        return stele_err_set(err, STELE_EINVAL,
                             "schema registry: the REST registry needs a url");
    if (strncmp(opts->url, "http://", 7) != 0 &&
        strncmp(opts->url, "https://", 8) != 0)
        return stele_err_set(err, STELE_EINVAL,
                             "schema registry: url '%s' is not http:// or "
                             "https://",
                             opts->url);
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    rest_registry *r = calloc(1, sizeof *r);
    if (!r)
        return no_memory(err);
    pthread_mutex_init(&r->lock, NULL);
    r->base.ops = &rest_ops;
    r->base.strategy = opts->strategy;
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
    r->by_id = stele_map_new();
    r->registered = stele_map_new();
    if (!ok || !r->curl || !r->by_id || !r->registered) {
        rest_close(&r->base);
        return no_memory(err);
    }
    size_t n = strlen(r->url);
    while (n > 0 && r->url[n - 1] == '/')
        r->url[--n] = '\0';
    *out = &r->base;
    return 0;
}

/*
 * rest.c — a client of the Confluent Schema Registry REST API
 * (Confluent, Karapace, Apicurio's ccompat API, Redpanda): the API's calls
 * behind the registry ops, and what is cached of their answers. Schema
 * texts by id and ids by subject and text never change once given, so
 * each is asked for once. The HTTP transport, with its retries, is in
 * http.c.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rest_registry {
    stele_registry base;
    rest_http http;
    stele_map *by_id;      /* int32_t id -> text (owned) */
    stele_map *registered; /* subject "\0" text -> id */
} rest_registry;

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
    char *path = registry_http_subject_path(&r->http, "/subjects/", subject,
                                            "/versions");
    json_t *payload = schema_payload(text), *ans = NULL;
    long status = 0;
    int rc = path && payload
                 ? registry_http_request(&r->http, "POST", path, payload,
                                         &status, &ans, NULL, what, err)
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
    char *t = stele_map_get(r->by_id, &id, sizeof id);
    int rc = 0;
    if (!t) {
        char path[64], what[80];
        snprintf(path, sizeof path, "/schemas/ids/%d", id);
        snprintf(what, sizeof what, "schema registry: schema id %d", id);
        long status;
        int32_t code;
        json_t *ans;
        rc = registry_http_request(&r->http, "GET", path, NULL, &status, &ans,
                                   &code, what, err);
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
    if (rc == 0)
        *text = t;
    return rc;
}

static int rest_fetch_fresh(stele_registry *reg, int32_t id, char **text,
                            stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char path[64], what[80];
    snprintf(path, sizeof path, "/schemas/ids/%d", id);
    snprintf(what, sizeof what, "schema registry: schema id %d", id);
    long status;
    int32_t code;
    json_t *ans = NULL;
    int rc = registry_http_request(&r->http, "GET", path, NULL, &status, &ans,
                                   &code, what, err);
    const char *s = json_string_value(json_object_get(ans, "schema"));
    if (rc == 0 && !s)
        rc =
            stele_err_set(err, STELE_EIO, "%s: the answer has no schema", what);
    if (rc == 0 && !(*text = strdup(s)))
        rc = no_memory(err);
    json_decref(ans);
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
    return registry_http_request(&r->http, method, path, payload, &status, ans,
                                 NULL, what, err);
}

static int rest_find(stele_registry *reg, const char *subject, const char *text,
                     stele_registry_schema *out, stele_err *err)
{
    rest_registry *r = (rest_registry *)reg;
    char what[300];
    snprintf(what, sizeof what, "schema registry: looking up a schema under %s",
             subject);
    char *path =
        registry_http_subject_path(&r->http, "/subjects/", subject, "");
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
    char *path =
        registry_http_subject_path(&r->http, "/subjects/", subject, rest);
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
    char *path = registry_http_subject_path(&r->http, "/subjects/", subject,
                                            "/versions");
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
    char *path = registry_http_subject_path(&r->http, "/config/", subject, "");
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
    char *path = registry_http_subject_path(&r->http, "/config/", subject, "");
    json_t *payload =
        json_pack("{s:s}", "compatibility", stele_compat_mode_name(mode));
    json_t *ans = NULL;
    long status = 0;
    int rc = path && payload
                 ? registry_http_request(&r->http, "PUT", path, payload,
                                         &status, &ans, NULL, what, err)
                 : no_memory(err);
    /* Apicurio answers 409 "A rule named 'COMPATIBILITY' already exists"
     * to a PUT that raced another one creating the subject's rule (hosts
     * starting at once); the rule exists now, so a second PUT updates it.
     * Confluent's PUT is idempotent and never answers 409. */
    if (rc == STELE_EINVAL && status == 409) {
        if (err)
            *err = (stele_err){0};
        rc = registry_http_request(&r->http, "PUT", path, payload, &status,
                                   &ans, NULL, what, err);
    }
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
    char *path =
        registry_http_subject_path(&r->http, "/compatibility/subjects/",
                                   subject, "/versions/latest?verbose=true");
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
        size_t before = rep->n, i;
        json_t *m;
        json_array_foreach(json_object_get(ans, "messages"), i, m)
        {
            const char *line = json_string_value(m);
            if (line && stele_compat_report_add(rep, "%s", line)) {
                rc = no_memory(err);
                break;
            }
        }
        if (rc == 0 && !*compatible && rep->n == before &&
            stele_compat_report_add(rep, "the registry says the schema is "
                                         "incompatible (no reason given)"))
            rc = no_memory(err);
    }
    json_decref(ans);
    return rc;
}

static void rest_close(stele_registry *reg)
{
    rest_registry *r = (rest_registry *)reg;
    registry_http_close(&r->http);
    stele_map_free(r->by_id, free_text);
    stele_map_free(r->registered, NULL);
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
                                      .test_compat = rest_test_compat,
                                      .fetch_fresh = rest_fetch_fresh};

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
    rest_registry *r = calloc(1, sizeof *r);
    if (!r)
        return no_memory(err);
    r->base.ops = &rest_ops;
    r->base.strategy = opts->strategy;
    int rc = registry_http_open(&r->http, opts, err);
    r->by_id = stele_map_new();
    r->registered = stele_map_new();
    if (rc || !r->by_id || !r->registered) {
        rest_close(&r->base);
        return no_memory(err);
    }
    *out = &r->base;
    return 0;
}

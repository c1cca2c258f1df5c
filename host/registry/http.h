/*
 * http.h — the HTTP transport of the REST registry client
 * (http.c), under its Confluent API calls (rest.c).
 * Private to host/registry/.
 */
#ifndef STELE_REGISTRY_HTTP_H
#define STELE_REGISTRY_HTTP_H

#include <curl/curl.h>

#include "internal.h"

/* A registry server: where it is, how to authenticate and verify it, how
 * long and how often to try. The handle serves one request at a time. */
typedef struct rest_http {
    CURL *curl;
    char *url; /* without a trailing slash */
    char *username, *password, *ca_file, *cert_file, *key_file;
    bool insecure;
    long timeout_ms;
    int retries, backoff_ms;
} rest_http;

/* Fills r from opts (whose url the caller has checked), with the defaults
 * for what opts leaves unset. STELE_ENOMEM on failure, r then zeroed;
 * registry_http_close frees what it holds. */
int registry_http_open(rest_http *r, const stele_registry_rest_opts *opts,
                       stele_err *err);
void registry_http_close(rest_http *r);

/*
 * One request. *status is the HTTP status of the last attempt and *out
 * the parsed answer of a 2xx. Returns 0 for a 2xx, STELE_ENOTFOUND for a
 * 404, STELE_EINVAL for another 4xx (err has the registry's error_code and
 * message), STELE_EIO when the retries are exhausted. `what` names the
 * request for messages.
 */
int registry_http_request(rest_http *r, const char *method, const char *path,
                          const json_t *payload, long *status, json_t **out,
                          int32_t *error_code, const char *what,
                          stele_err *err);

/* "<prefix><escaped subject><rest>", malloc'd; NULL when out of memory. */
char *registry_http_subject_path(rest_http *r, const char *prefix,
                                 const char *subject, const char *rest);

#endif

/*
 * registry.h — the schema registry: schema texts by id, subjects and their
 * versions, compatibility levels.
 *
 * Two kinds behind one interface (internal.h): the embedded registry,
 * stored on the log itself (embedded.c), and a client of the Confluent
 * Schema Registry REST API (rest.c, HTTP in http.c) for Confluent,
 * Karapace, Apicurio or Redpanda. The codec finds schemas through it;
 * which one a config names is opened by host/open/.
 */
#ifndef STELE_REGISTRY_H
#define STELE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stele/stele.h>

#include "log/log.h"

/* ------------------------------------------------------------------ */
/* Registries                                                           */

/* Largest schema text or answer the registry takes (the codec's largest
 * value, STELE_CODEC_MAX_VALUE). */
#define STELE_REGISTRY_MAX_SCHEMA (16u * 1024u * 1024u)

typedef struct stele_registry stele_registry;

/*
 * The embedded registry keeps schemas in the log itself, in the topic
 * "_stele_schemas" (one partition; created if absent): registering appends
 * {"subject","schema"} and the schema's id is that record's offset + 1, so
 * ids are unique, never reused, and stable across restarts. Registering a
 * schema already registered under the subject (same text once normalized:
 * parsed and re-printed with sorted keys) returns the existing id.
 * The registry borrows log, which must outlive it.
 */
int stele_registry_open_embedded(stele_log *log, stele_registry **out,
                                 stele_err *err);

void stele_registry_close(stele_registry *reg);

/* Registers schema text (kept exactly as written) under subject; returns
 * its id. */
int stele_registry_register(stele_registry *reg, const char *subject,
                            const char *schema_text, int32_t *id,
                            stele_err *err);

/* The schema text with this id (owned by the registry). STELE_ENOTFOUND
 * for an unknown id. */
int stele_registry_lookup(stele_registry *reg, int32_t id, const char **text,
                          stele_err *err);

/* ------------------------------------------------------------------ */
/* Registries: REST client, subjects, versions, compatibility          */

/* How a record type's subject is named (docs/schema-registry.md). */
typedef enum stele_subject_strategy {
    STELE_SUBJECT_RECORD = 0,  /* subject = record full name (default) */
    STELE_SUBJECT_TOPIC_RECORD /* subject = <topic>-<record full name> */
} stele_subject_strategy;

/* Options of a Confluent Schema Registry REST client. Strings are copied;
 * NULL or 0 takes the default. */
typedef struct stele_registry_rest_opts {
    const char *url;      /* "http://127.0.0.1:8081", or a base path such as
                             ".../apis/ccompat/v7"; required */
    const char *username; /* basic auth when set */
    const char *password;
    const char *ca_file;   /* TLS: CA bundle instead of the system's */
    const char *cert_file; /* TLS client certificate (PEM) */
    const char *key_file;  /* its key (PEM) */
    bool insecure;         /* skip TLS verification (verify by default) */
    int timeout_ms;        /* per request (default 10000) */
    int retries;           /* extra attempts on a connection error or HTTP 5xx
                              (default 4; -1: none) */
    int backoff_ms; /* first wait between attempts, doubled each time up to
                       5000 (default 100) */
    stele_subject_strategy strategy;
} stele_registry_rest_opts;

/*
 * A client of a Confluent-compatible registry. Opening does not contact
 * the server. Fetched schemas are cached by id (ids are immutable), and
 * registrations by subject and text. Connection errors and 5xx answers are
 * retried with exponential backoff, a bounded number of times; errors then
 * name the request, the subject/version/id, the HTTP status and the
 * registry's error_code and message. Use from one thread at a time.
 */
int stele_registry_open_rest(const stele_registry_rest_opts *opts,
                             stele_registry **out, stele_err *err);

/* How many HTTP requests (attempts, retries included) the REST registry
 * clients of this process have sent so far; for tests and benchmarks
 * that check what reaches the registry. */
uint64_t stele_registry_rest_requests(void);

/* The strategy the registry was opened with (embedded: record). */
stele_subject_strategy stele_registry_strategy(const stele_registry *reg);

/* Writes the subject of record (a full name) for topic into buf: the
 * record name, or "<topic>-<record>" under the topic-record strategy
 * (topic NULL falls back to the record name). STELE_EINVAL if too long. */
int stele_registry_subject(const stele_registry *reg, const char *topic,
                           const char *record, char *buf, size_t size);

/* One registered version of a subject. Free with
 * stele_registry_schema_clear. */
typedef struct stele_registry_schema {
    char *subject;
    int version;
    int32_t id;
    char *text;
} stele_registry_schema;

void stele_registry_schema_clear(stele_registry_schema *s);

/* Every registered version of subject, oldest first (none for an unknown
 * subject: *n 0). Free with stele_registry_held_free. */
int stele_registry_held(stele_registry *reg, const char *subject,
                        stele_registry_schema **out, size_t *n, stele_err *err);
void stele_registry_held_free(stele_registry_schema *v, size_t n);

/* Whether the registry still gives id to text (asked anew, not from a
 * cache): STELE_EFATAL when it gives it to another schema or to none (a
 * registry that lost its data), the transport's error when it cannot be
 * asked, 0 otherwise (always, for the embedded registry). */
int stele_registry_verify(stele_registry *reg, int32_t id, const char *text,
                          stele_err *err);

/* The version of subject holding schema text (POST /subjects/{s}).
 * STELE_ENOTFOUND when the subject or the text is not registered. */
int stele_registry_find(stele_registry *reg, const char *subject,
                        const char *schema_text, stele_registry_schema *out,
                        stele_err *err);

/* Version `version` of subject; version -1 is the latest.
 * STELE_ENOTFOUND names the subject and version. */
int stele_registry_version(stele_registry *reg, const char *subject,
                           int version, stele_registry_schema *out,
                           stele_err *err);

/* Every subject, sorted (*out is a malloc'd array of malloc'd strings;
 * free with stele_registry_strings_free). */
int stele_registry_subjects(stele_registry *reg, char ***out, size_t *n,
                            stele_err *err);
void stele_registry_strings_free(char **s, size_t n);

/* The version numbers of subject, oldest first (*out malloc'd).
 * STELE_ENOTFOUND for an unknown subject. */
int stele_registry_versions(stele_registry *reg, const char *subject, int **out,
                            size_t *n, stele_err *err);

/* Compatibility modes (Avro schema resolution, see compat.c). */
typedef enum stele_compat_mode {
    STELE_COMPAT_NONE,
    STELE_COMPAT_BACKWARD,
    STELE_COMPAT_BACKWARD_TRANSITIVE,
    STELE_COMPAT_FORWARD,
    STELE_COMPAT_FORWARD_TRANSITIVE,
    STELE_COMPAT_FULL,
    STELE_COMPAT_FULL_TRANSITIVE
} stele_compat_mode;

/* "BACKWARD_TRANSITIVE" <-> STELE_COMPAT_BACKWARD_TRANSITIVE. parse
 * returns STELE_EINVAL for an unknown name. */
int stele_compat_mode_parse(const char *name, stele_compat_mode *out);
const char *stele_compat_mode_name(stele_compat_mode mode);

/* The subject's own compatibility setting (GET /config/{s}).
 * STELE_ENOTFOUND when the subject has none (the registry's default
 * applies). */
int stele_registry_get_compat(stele_registry *reg, const char *subject,
                              stele_compat_mode *out, stele_err *err);
/* Sets it (PUT /config/{s}); the embedded registry stores it in its
 * topic. */
int stele_registry_set_compat(stele_registry *reg, const char *subject,
                              stele_compat_mode mode, stele_err *err);

/* Incompatibilities found by a check: one line each, "path: why". */
typedef struct stele_compat_report {
    char **msgs;
    size_t n, cap;
} stele_compat_report;

void stele_compat_report_clear(stele_compat_report *r);
/* Appends one line; STELE_ENOMEM when it cannot. */
int stele_compat_report_add(stele_compat_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Whether the registry checks compatibility itself (the REST API's POST
 * /compatibility/...); the embedded registry leaves it to the host
 * (stele_compat_test in the codec, which asks this first). */
bool stele_registry_tests_compat(const stele_registry *reg);

/*
 * Asks the registry whether schema_text may become the next version of
 * subject (POST /compatibility/subjects/{s}/versions/latest?verbose=true).
 * *compatible is set and the reasons appended to rep. A subject with no
 * versions is compatible. STELE_EINVAL for a registry that does not
 * check (stele_registry_tests_compat).
 */
int stele_registry_test_compat(stele_registry *reg, const char *subject,
                               const char *schema_text, bool *compatible,
                               stele_compat_report *rep, stele_err *err);

#endif

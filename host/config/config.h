/*
 * config.h — the host's YAML configuration, validated at load.
 *
 * Unknown keys and bad values are errors naming file:line. Relative paths
 * are resolved against the directory of the config file. See
 * docs/configuration.md for every key.
 */
#ifndef STELE_CONFIG_H
#define STELE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stele/stele.h>

typedef struct stele_kv {
    char *key;
    char *value;
} stele_kv;

typedef struct stele_config {
    char *path; /* the file it was read from */
    char *app;  /* app name, topic prefix: "bank" */

    /* log: */
    char *log_backend;  /* "sqlite" (default) | "kafka" | "postgres" */
    char *log_conninfo; /* postgres: libpq connection string ("" or absent:
                           the PG* environment variables) */
    char *log_path;     /* sqlite: the log file (default <data_dir>/log.db) */
    int32_t partitions; /* partitions of the topics the host creates (4) */
    int32_t replication_factor; /* kafka: replicas per partition; 0: the
                                   broker's default */
    char *topic_prefix; /* first part of every topic name (default: app) */
    /* commands older than this are deleted once processed (embedded logs)
     * or by the broker (Kafka: the topic's retention.ms); 0: kept forever.
     * Default 7 days. */
    int64_t command_retention_ms;
    /* the idempotency window: a command's result is kept at least this
     * long, and a command resubmitted with its id within it is answered
     * from it; older results are deleted (embedded logs) or left to the
     * broker (Kafka: the results topics' retention.ms, cleanup.policy
     * compact,delete). 0: kept forever. Default 7 days. */
    int64_t result_retention_ms;
    /* postgres: a consumer-group member that has not polled for this long
     * is taken out of its group (Kafka's max.poll.interval.ms); 0: never.
     * Default 300000. */
    int64_t max_poll_interval_ms;
    stele_kv *log_props; /* kafka: librdkafka properties, passed through */
    size_t n_log_props;

    /* store: */
    char *store_backend;      /* "sqlite" (default) | "postgres" */
    char *store_path;         /* sqlite: the read-model file
                                 (default <data_dir>/readmodels.db) */
    char *store_conninfo;     /* postgres: libpq connection string */
    int32_t store_fillfactor; /* postgres: of read-model tables (90) */

    char *data_dir;    /* default "data", beside the config file */
    char *schemas_dir; /* default "schemas" */
    char **plugins;    /* .so paths, in load order */
    size_t n_plugins;

    /* engine: */
    int32_t command_batch;      /* commands per transaction (default 1000) */
    int32_t commit_interval_ms; /* max time a batch waits (default 5) */
    int32_t projection_batch;   /* events per projector transaction (1000) */
    int64_t max_value_bytes;    /* largest command/event value (1 MiB) */
    int32_t reply_timeout_ms;   /* stele send's wait for a result (10000) */
    /* A command found on another partition than its aggregate's (a
     * producer that does not hash keys with murmur2): forwarded to its
     * partition in the transaction that consumes it (false, the default),
     * or rejected with MISROUTED (true). */
    bool misrouted_reject;
    /* Containment of plugin calls (engine/guard.h): a command during which
     * the host died this many times is rejected with PLUGIN_CRASHED and
     * dead-lettered (3; 0: never); a decide, evolve or project running
     * longer than plugin_timeout_ms ends the host like a crash (10000; 0:
     * no limit); after SIGTERM a call in hand gets shutdown_grace_ms
     * before the host exits all the same (5000). */
    int32_t plugin_crash_limit;
    int32_t plugin_timeout_ms;
    int32_t shutdown_grace_ms;
    /* engine.isolation: process (true) runs aggregates' decide and evolve
     * in a worker process (engine/worker.h), so that a crash costs a
     * restart of the worker, not of the host; none (false, the default)
     * runs them in the host. */
    bool isolate_plugins;

    /* registry: (docs/schema-registry.md) */
    char *registry_backend;  /* "embedded" (default) | "rest" */
    char *registry_url;      /* rest: base URL, required */
    char *registry_username; /* rest: basic auth */
    char *registry_password;
    char *registry_ca_file;          /* rest: TLS CA bundle */
    char *registry_cert_file;        /* rest: TLS client certificate */
    char *registry_key_file;         /* rest: its key */
    int32_t registry_timeout_ms;     /* per request (10000) */
    int32_t registry_retries;        /* on connection errors and 5xx (4) */
    char *registry_subject_strategy; /* "record" (default) | "topic_record" */
    /* a process that writes registers the versions it writes that the
     * registry does not hold yet, after the schema gate (true); false: it
     * refuses to start on one (stele schema register registers them) */
    bool registry_auto_register;
    /* rest: how often stele run asks whether the ids it writes with still
     * name its schemas (5000; 0: never) */
    int32_t registry_verify_ms;
    char *registry_compatibility; /* mode of subjects that have none
                                     (default "BACKWARD_TRANSITIVE") */

    /* http: the address the HTTP API is to listen on. Read and checked;
     * nothing serves it yet (docs/configuration.md). */
    char *http_listen; /* "127.0.0.1:8080"; NULL: off */

    char *log_level;  /* "error" | "warn" | "info" (default) | "debug" */
    char *log_format; /* "text" (default) | "json": one object per line */
} stele_config;

/* Reads and validates the config file. On error err->msg is
 * "FILE:LINE: reason". */
int stele_config_load(const char *path, stele_config **out, stele_err *err);

void stele_config_free(stele_config *cfg);

#endif

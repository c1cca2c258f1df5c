/*
 * plugin.h — the stele plugin ABI.
 *
 * A plugin is a shared object that exports one function, stele_plugin_entry,
 * returning a pointer to a const stele_plugin_descriptor. The host checks the
 * descriptor (magic, ABI major, struct size, kind), then calls init() with a
 * table of host functions (stele_host_api), so a plugin never links the host.
 *
 * ABI rules: the major version changes when a struct layout or a callback
 * signature changes; the minor version when fields are appended. The host
 * accepts plugins with its major version and a minor version not newer than
 * its own. Every struct begins or ends stable: new fields are only appended.
 *
 * Values: events, commands, states and query parameters are Avro records.
 * Plugins read and write them through the value functions of the host API;
 * a stele_value is a handle the host owns, valid for the callback it was
 * passed to (or, for values a plugin gets from emit(), until decide returns).
 */
#ifndef STELE_PLUGIN_H
#define STELE_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stele.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STELE_PLUGIN_MAGIC 0x5354454cu /* "STEL" */
#define STELE_ABI_MAJOR 1
#define STELE_ABI_MINOR 1

#define STELE_PLUGIN_ENTRY_SYMBOL "stele_plugin_entry"

#if defined(__GNUC__)
#define STELE_EXPORT __attribute__((visibility("default")))
#else
#define STELE_EXPORT
#endif

typedef enum stele_plugin_kind {
    STELE_PLUGIN_AGGREGATE = 1,
    STELE_PLUGIN_PROJECTOR = 2,
    STELE_PLUGIN_QUERY = 3,
    STELE_PLUGIN_UPCASTER = 4
} stele_plugin_kind;

/* A handle on an Avro value owned by the host. Opaque to plugins. */
typedef struct stele_value {
    const void *iface;
    void *self;
} stele_value;

/* A record type and the version of its schema: "bank.Deposited", 1 maps to
 * schemas/<domain>/bank.Deposited.v1.avsc. */
typedef struct stele_record_ref {
    const char *name;
    int version;
} stele_record_ref;

/* Metadata every event carries. Strings are borrowed for the callback. */
typedef struct stele_event_meta {
    const char *event_id;        /* ULID: unique and time-sortable */
    const char *aggregate_type;  /* "bank.Account" */
    const char *aggregate_id;
    int64_t version;             /* the aggregate's version after this event */
    const char *causation_id;    /* the command id that produced it */
    const char *correlation_id;
    int64_t timestamp_ms;        /* when the command was decided, Unix ms */
    const char *topic;           /* where it is stored on the log */
    int32_t partition;
    int64_t offset;              /* -1 before it is written */
} stele_event_meta;

typedef struct stele_event {
    const char *type;            /* record full name, "bank.Deposited" */
    int schema_version;          /* the reader version the plugin declared */
    const stele_value *value;
    const stele_event_meta *meta;
} stele_event;

typedef struct stele_command {
    const char *type;            /* "bank.Deposit" */
    const char *command_id;
    const char *aggregate_type;
    const char *aggregate_id;
    const char *correlation_id;
    const char *user;            /* who sent it; "" when unknown */
    int64_t timestamp_ms;
    const stele_value *value;
} stele_command;

/* Opaque handles the host passes to callbacks. */
typedef struct stele_decision stele_decision;   /* decide's output */
typedef struct stele_store_tx stele_store_tx;   /* a read-model transaction */
typedef struct stele_query_ctx stele_query_ctx; /* a query's result */
typedef struct stele_upcast_out stele_upcast_out;

/* A parameter bound into SQL (never spliced into the text). */
typedef enum stele_param_type {
    STELE_PARAM_NULL = 0,
    STELE_PARAM_INT = 1,
    STELE_PARAM_REAL = 2,
    STELE_PARAM_TEXT = 3,
    STELE_PARAM_BLOB = 4
} stele_param_type;

typedef struct stele_param {
    stele_param_type type;
    union {
        int64_t i;
        double d;
        struct {
            const void *ptr;
            size_t len;
        } s; /* TEXT (UTF-8) or BLOB */
    } v;
} stele_param;

#define STELE_P_NULL() ((stele_param){.type = STELE_PARAM_NULL})
#define STELE_P_INT(x) ((stele_param){.type = STELE_PARAM_INT, .v.i = (x)})
#define STELE_P_REAL(x) ((stele_param){.type = STELE_PARAM_REAL, .v.d = (x)})
#define STELE_P_TEXT(p, n) \
    ((stele_param){.type = STELE_PARAM_TEXT, .v.s = {(p), (n)}})

typedef enum stele_log_level {
    STELE_LOG_ERROR = 0,
    STELE_LOG_WARN = 1,
    STELE_LOG_INFO = 2,
    STELE_LOG_DEBUG = 3
} stele_log_level;

/*
 * The functions the host offers a plugin, handed to init(). Value accessors
 * take a record and a field name; ints and longs both read as int64_t.
 * All return 0 or a negative STELE_E* status (STELE_ENOTFOUND for a field
 * the record lacks, STELE_EINVAL for a field of another type).
 */
typedef struct stele_host_api {
    uint32_t size; /* sizeof(stele_host_api) as the host built it */
    uint16_t abi_major;
    uint16_t abi_minor;

    void (*log)(stele_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* --- reading values --- */
    int (*get_long)(const stele_value *rec, const char *field, int64_t *out);
    int (*get_double)(const stele_value *rec, const char *field, double *out);
    int (*get_bool)(const stele_value *rec, const char *field, bool *out);
    /* The string is borrowed from the value; not NUL-terminated past len. */
    int (*get_string)(const stele_value *rec, const char *field,
                      const char **out, size_t *len);
    int (*get_enum)(const stele_value *rec, const char *field,
                    const char **symbol);
    int (*get_record)(const stele_value *rec, const char *field,
                      stele_value *out);
    /* A union field: the chosen branch's type name ("null", "string",
     * "bank.OpenAccount") and its value. */
    int (*get_branch)(const stele_value *rec, const char *field,
                      const char **branch, stele_value *out);
    /* true when a union field holds null (or is the null type). */
    int (*is_null)(const stele_value *rec, const char *field, bool *out);
    int (*array_size)(const stele_value *rec, const char *field, size_t *n);
    int (*array_get)(const stele_value *rec, const char *field, size_t i,
                     stele_value *out);

    /* --- writing values --- */
    int (*set_long)(stele_value *rec, const char *field, int64_t v);
    int (*set_double)(stele_value *rec, const char *field, double v);
    int (*set_bool)(stele_value *rec, const char *field, bool v);
    int (*set_string)(stele_value *rec, const char *field, const char *s,
                      size_t len);
    int (*set_enum)(stele_value *rec, const char *field, const char *symbol);
    /* Selects a union branch by type name and returns its value to fill. */
    int (*set_branch)(stele_value *rec, const char *field, const char *branch,
                      stele_value *out);
    int (*set_null)(stele_value *rec, const char *field);
    int (*array_append)(stele_value *rec, const char *field, stele_value *out);
    /* Copies src into dst; both must be of the same schema. */
    int (*copy)(stele_value *dst, const stele_value *src);

    /* --- aggregates: decide's output --- */
    /* Appends an event of the given type (one the aggregate declares) and
     * returns its value, reset to its schema's defaults, to fill. */
    int (*emit)(stele_decision *d, const char *event_type, stele_value *out);
    /* Rejects the command: no event is written. code is a short
     * UPPER_SNAKE word ("INSUFFICIENT_FUNDS"), message says why. */
    int (*reject)(stele_decision *d, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* --- projectors: the read-model transaction --- */
    /* Runs one parameterized statement inside the host's transaction. */
    int (*exec)(stele_store_tx *tx, const char *sql, const stele_param *params,
                size_t n_params, stele_err *err);
    /* Runs a SELECT inside the transaction; row_cb gets each row's columns
     * as params (TEXT/BLOB borrowed for the call). Return non-zero from
     * row_cb to stop early. */
    int (*select)(stele_store_tx *tx, const char *sql,
                  const stele_param *params, size_t n_params,
                  int (*row_cb)(void *opaque, const stele_param *cols,
                                const char *const *names, size_t n_cols),
                  void *opaque, stele_err *err);

    /* --- queries --- */
    /* Runs a SELECT on the read-model store and appends every row to the
     * query's result, columns named as the SELECT names them. */
    int (*query_rows)(stele_query_ctx *q, const char *sql,
                      const stele_param *params, size_t n_params,
                      stele_err *err);

    /* --- upcasters --- */
    /* Appends an output event of the upcaster's to-version and returns its
     * value, reset to defaults, to fill. */
    int (*upcast_emit)(stele_upcast_out *out, const char *event_type,
                       stele_value *value);
} stele_host_api;

/* ------------------------------------------------------------------ */
/* Aggregates                                                           */

typedef struct stele_aggregate_def {
    const char *type; /* "bank.Account" */
    const stele_record_ref *commands;
    size_t n_commands;
    const stele_record_ref *events; /* the events it emits and evolves */
    size_t n_events;
    stele_record_ref state; /* the state record's schema */
    /* Bump when evolve changes meaning: stored states are then rebuilt
     * from the events. */
    int state_version;

    /* Decides a command against the current state (version 0 and a
     * default-valued state for a new aggregate). Calls emit() for each
     * event or reject() once. Returns 0, or a negative status on a plugin
     * fault (the command is then rejected with PLUGIN_ERROR). Must not keep
     * any pointer it was passed. */
    int (*decide)(void *ctx, const stele_command *cmd, const stele_value *state,
                  stele_decision *d);
    /* Applies one event to the state in place. Must be deterministic:
     * states are rebuilt by replaying events through it. */
    int (*evolve)(void *ctx, stele_value *state, const stele_event *ev);
} stele_aggregate_def;

/* ------------------------------------------------------------------ */
/* Projectors                                                           */

typedef enum stele_column_type {
    STELE_COL_INT = 1,
    STELE_COL_REAL = 2,
    STELE_COL_TEXT = 3,
    STELE_COL_BLOB = 4
} stele_column_type;

/* FILTER and SORT only say what the generic list query may use; INDEX
 * (ABI 1.1) makes the store keep an index on the column. An index is paid
 * on every write that changes the column: on PostgreSQL an update of an
 * indexed column also cannot be a HOT update (in-page, no index writes),
 * so index what queries look up, not what most events change. The primary
 * key is always indexed. (Plugins built against ABI 1.0 keep the index on
 * every FILTER or SORT column they had then.) */
#define STELE_COL_KEY 0x1u    /* part of the primary key */
#define STELE_COL_FILTER 0x2u /* list queries may filter on it */
#define STELE_COL_SORT 0x4u   /* list queries may sort on it */
#define STELE_COL_NULLABLE 0x8u
#define STELE_COL_INDEX 0x10u /* the store keeps an index on it */

typedef struct stele_column_def {
    const char *name;
    stele_column_type type;
    unsigned flags;
} stele_column_def;

/* A read-model table. The host creates it (and drops it on a rebuild);
 * the projector writes it with exec(). */
typedef struct stele_table_def {
    const char *name;
    const stele_column_def *columns;
    size_t n_columns;
} stele_table_def;

typedef struct stele_projector_def {
    const char *name;
    /* Bump when the read model changes: it is rebuilt from the log start. */
    int version;
    /* The event types it subscribes to, from any aggregates, and the
     * version of each it reads. */
    const stele_record_ref *events;
    size_t n_events;
    const stele_table_def *tables;
    size_t n_tables;
    /* Projects a batch of events, in log order per aggregate, inside one
     * store transaction that the host commits together with the
     * projector's checkpoint. A non-zero return rolls the batch back. */
    int (*project)(void *ctx, const stele_event *events, size_t n,
                   stele_store_tx *tx, stele_err *err);
} stele_projector_def;

/* ------------------------------------------------------------------ */
/* Queries                                                              */

typedef struct stele_query_def {
    const char *name;
    stele_record_ref params; /* the parameter record */
    /* true: the result is one row (or NOT_FOUND), not a list */
    bool single;
    int (*run)(void *ctx, const stele_value *params, stele_query_ctx *q,
               stele_err *err);
} stele_query_def;

/* ------------------------------------------------------------------ */
/* Upcasters                                                            */

typedef struct stele_upcaster_def {
    const char *event_type; /* the type it reads, at from_version */
    int from_version;
    int to_version; /* from_version + 1 */
    /* Turns one old event into one or more events of to_version by calling
     * upcast_emit() (a renamed type may be emitted under its new name). */
    int (*upcast)(void *ctx, const stele_value *old, stele_upcast_out *out,
                  stele_err *err);
} stele_upcaster_def;

/* ------------------------------------------------------------------ */
/* The descriptor                                                       */

typedef struct stele_plugin_descriptor {
    uint32_t magic;     /* STELE_PLUGIN_MAGIC */
    uint16_t abi_major; /* STELE_ABI_MAJOR */
    uint16_t abi_minor; /* STELE_ABI_MINOR */
    uint32_t size;      /* sizeof(stele_plugin_descriptor) */
    const char *name;
    const char *version; /* the plugin's own version, free form */
    stele_plugin_kind kind;
    /* Optional. Called once before any other callback; *ctx is passed back
     * to every callback. Fails with a message in err. */
    int (*init)(const stele_host_api *host, void **ctx, stele_err *err);
    /* Optional. Called once at unload. */
    void (*fini)(void *ctx);
    union {
        const stele_aggregate_def *aggregate;
        const stele_projector_def *projector;
        const stele_query_def *query;
        const stele_upcaster_def *upcaster;
    } def;
} stele_plugin_descriptor;

typedef const stele_plugin_descriptor *(*stele_plugin_entry_fn)(void);

/* Fills the fixed fields of a descriptor. */
#define STELE_DESCRIPTOR_HEADER                                       \
    .magic = STELE_PLUGIN_MAGIC, .abi_major = STELE_ABI_MAJOR,        \
    .abi_minor = STELE_ABI_MINOR,                                     \
    .size = (uint32_t)sizeof(stele_plugin_descriptor)

#ifdef __cplusplus
}
#endif
#endif

/*
 * log_pg_int.h — private to the PostgreSQL log backend: the handle, the
 * prepared statements and the helpers shared by log_pg.c (connections,
 * errors, schema, topics), log_pg_txn.c (transactions), log_pg_read.c
 * (reads) and log_pg_consumer.c (consumer groups).
 */
#ifndef STELE_LOG_PG_INT_H
#define STELE_LOG_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/map.h"
#include "log_backend.h"

/* Every table lives in this schema, apart from read-model tables. */
#define LPG_SCHEMA "stele_log"
/* NOTIFY channels: "stele_log_t<topic id>" when a transaction commits
 * records to the topic, "stele_log_g<group id>" when a member joins or
 * leaves the group, LPG_TOPICS_CHANNEL when a topic is created. */
#define LPG_TOPICS_CHANNEL "stele_log_topics"

/* A topic as stored; cached by name for the life of the handle (topics
 * are never deleted and their partition count never changes). */
typedef struct lpg_topic {
    int32_t id;
    int32_t partitions;
    bool compacted;
    int32_t *uids; /* per partition: its ownership lock's second key */
    char name[];
} lpg_topic;

enum lpg_stmt {
    S_TOPIC_GET,
    S_TOPIC_UIDS,
    S_PART_END,
    S_PART_ENDS,
    S_BUMP,
    S_FENCE,
    S_REC_INSERT,
    S_CMP_UPSERT,
    S_GRP_SET,
    S_GRP_GET,
    S_NOTIFY,
    S_REC_READ,
    S_CMP_READ,
    S_CMP_GET,
    S_GROUP_ID,
    S_MEMBER_NEW,
    S_TRY_LOCK64,
    S_MEMBERS_LIVE,
    S_LOCKS_HELD,
    S_TRY_LOCK,
    S_UNLOCK,
    S_CLAIM,
    S_COUNT
};

/* Parameters of one statement, binary; ints are kept in buf. */
#define LPG_MAX_PARAMS 8
typedef struct lpg_params {
    int n;
    const char *v[LPG_MAX_PARAMS];
    int len[LPG_MAX_PARAMS];
    int fmt[LPG_MAX_PARAMS];
    unsigned char buf[LPG_MAX_PARAMS][8];
} lpg_params;

void lpg_p_i32(lpg_params *p, int32_t x);
void lpg_p_i64(lpg_params *p, int64_t x);
/* NULL data binds SQL NULL; non-NULL with len 0 an empty bytea. */
void lpg_p_bytes(lpg_params *p, const void *data, size_t len);
void lpg_p_text(lpg_params *p, const char *s);

typedef struct lpg_txn lpg_txn;

typedef struct lpg_log {
    struct stele_log base;
    PGconn *conn;      /* reads, topics and transactions */
    char *conninfo;    /* as given, for connecting again */
    char where[160];   /* "127.0.0.1:5433" for messages */
    char *secret;      /* the password, scrubbed from every message */
    stele_map *topics; /* name -> lpg_topic* */
    lpg_txn *txn;      /* the one transaction a handle may have */
} lpg_log;

/* --- log_pg.c --- */

/* A new connection to the log's database, set up (session settings,
 * prepared statements); app names it in pg_stat_activity. */
int lpg_connect(lpg_log *l, const char *app, PGconn **out, stele_err *err);
/* Replaces a lost connection's session (PQreset) and sets it up again. */
int lpg_reconnect(lpg_log *l, PGconn *c, stele_err *err);
/* Whether c's session is gone (or r failed because it went). */
bool lpg_lost(PGconn *c, const PGresult *r);
/*
 * Fills err for a failed statement (r may be NULL: the connection's error)
 * as "PostgreSQL log at host:port: <what>: <server message> (SQLSTATE x)",
 * classifies it (connection, deadlock, serialization, shortage →
 * STELE_ERETRY; bad data → STELE_EINVAL; else STELE_EIO) and returns the
 * code. The password never appears.
 */
int lpg_fail(lpg_log *l, PGconn *c, const PGresult *r, stele_err *err,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sends a prepared statement (binary parameters and results). */
int lpg_send(PGconn *c, enum lpg_stmt s, const lpg_params *p);
/* Runs a prepared statement on c and waits. On the log's own connection,
 * a session found dead before the statement ran is replaced and the
 * statement run once more (safe: c is outside any transaction then).
 * *out (PQclear it) has PGRES_TUPLES_OK or PGRES_COMMAND_OK. */
int lpg_run(lpg_log *l, PGconn *c, enum lpg_stmt s, const lpg_params *p,
            PGresult **out, stele_err *err, const char *what);
/* The next result of a pipeline (skipping the NULL that ends each
 * statement's results); NULL when the connection is gone. Call it only
 * for results known to be due. */
PGresult *lpg_next_result(PGconn *c);
/* Runs a simple command (no parameters, no rows wanted). */
int lpg_simple(lpg_log *l, PGconn *c, const char *sql, stele_err *err);
/* Values of binary result columns. */
int64_t lpg_i64(const PGresult *r, int row, int col);
int32_t lpg_i32(const PGresult *r, int row, int col);
bool lpg_bool(const PGresult *r, int row, int col);

/* The topic named name (cached); STELE_ENOTFOUND naming it when absent. */
int lpg_topic_get(lpg_log *l, const char *name, const lpg_topic **out,
                  stele_err *err);
int lpg_check_partition(const lpg_topic *t, int32_t partition, stele_err *err);

/* --- log_pg_txn.c --- */
int lpg_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err);
int lpg_txn_produce(stele_log_txn *txn, const char *topic, int32_t partition,
                    const stele_log_record *rec, int64_t *offset_out,
                    stele_err *err);
int lpg_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                        const char *topic, int32_t partition,
                        int64_t next_offset, stele_err *err);
int lpg_txn_commit(stele_log_txn *txn, stele_err *err);
void lpg_txn_abort(stele_log_txn *txn);
void lpg_txn_free(lpg_txn *t);

/*
 * Record headers are stored as one bytea, as the SQLite log stores them:
 * u32 count, then per header u32 name length, the name and a NUL, u32
 * value length, the value (integers little endian).
 */
/* Encodes rec's headers into *buf (grown as needed); *len their size. */

/* --- log_pg_read.c --- */
int lpg_read(stele_log *log, const char *topic, int32_t partition, int64_t from,
             size_t max, stele_log_batch **out, stele_err *err);
int lpg_end_offset(stele_log *log, const char *topic, int32_t partition,
                   int64_t *end, stele_err *err);
int lpg_get_latest(stele_log *log, const char *topic, int32_t partition,
                   const void *key, size_t key_len, stele_log_batch **out,
                   stele_err *err);
int lpg_committed(stele_log *log, const char *group, const char *topic,
                  int32_t partition, int64_t *next, stele_err *err);
/* Appends the rows of a read (off, ts, key, value, headers) to b. */
int lpg_rows_into(lpg_log *l, const PGresult *r, const lpg_topic *t,
                  int32_t partition, stele_log_batch *b, stele_err *err);
/* Sends a read of up to max records of t[partition] from `from` on. */
int lpg_send_read(PGconn *c, const lpg_topic *t, int32_t partition,
                  int64_t from, size_t max);
/* The group's committed next offset, read on c; 0 when none. */
int lpg_committed_on(lpg_log *l, PGconn *c, const char *group,
                     const lpg_topic *t, int32_t partition, int64_t *next,
                     stele_err *err);

/* --- log_pg_consumer.c --- */

/* What a transaction needs to fence a consumer's offset commit: the
 * ownership it had when the offset was sent. */
typedef struct lpg_fence {
    int32_t group_id, uid, lock_pid;
    int64_t member;
} lpg_fence;

int lpg_consumer_new(stele_log *log, const char *group,
                     const char *const *topics, size_t n_topics,
                     const stele_log_rebalance_cb *cb, stele_log_consumer **out,
                     stele_err *err);
int lpg_consumer_poll(stele_log_consumer *c, int timeout_ms, size_t max,
                      stele_log_batch **out, stele_err *err);
int lpg_consumer_seek(stele_log_consumer *c, const char *topic,
                      int32_t partition, int64_t offset, stele_err *err);
int lpg_consumer_rewind(stele_log_consumer *c, stele_err *err);
size_t lpg_consumer_assignment(stele_log_consumer *c,
                               const stele_topic_partition **tps);
void lpg_consumer_close(stele_log_consumer *c);
/* The consumer's current ownership of t[partition]; STELE_ECONFLICT
 * naming both when it does not hold it (as far as it knows). */
int lpg_consumer_fence(stele_log_consumer *c, const lpg_topic *t,
                       int32_t partition, lpg_fence *out, stele_err *err);
/* The log handle a consumer belongs to. */
lpg_log *lpg_consumer_log(const stele_log_consumer *c);

#endif

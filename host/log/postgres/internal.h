/*
 * internal.h — private to the PostgreSQL log backend: the handle, the
 * prepared statements, the transaction and consumer structs, and the
 * helpers shared by open.c (opening, schema), topic.c (topics), conn.c
 * (statements, errors, connections), util.c (growing arrays), txn.c and
 * commit.c (transactions), read.c (reads), and consumer.c,
 * rebalance.c and poll.c (consumer groups).
 */
#ifndef STELE_LOG_PG_INT_H
#define STELE_LOG_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/map.h"
#include "log/internal.h"

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
    S_MEMBERS_EVICT,
    S_LOCKS_HELD,
    S_TRY_LOCK,
    S_UNLOCK,
    S_CLAIM,
    S_REC_EXPIRE,
    S_CMP_EXPIRE,
    S_REC_READ_KEY,
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
    PGconn *conn;                /* reads, topics and transactions */
    char *conninfo;              /* as given, for connecting again */
    char where[160];             /* "127.0.0.1:5433" for messages */
    char *secret;                /* the password, scrubbed from every message */
    stele_map *topics;           /* name -> lpg_topic* */
    lpg_txn *txn;                /* the one transaction a handle may have */
    int64_t max_poll_ms;         /* stele_log_pg_options.max_poll_interval_ms */
    stele_set64 *unchecked_seen; /* partitions said to be read unchecked */
} lpg_log;

/* --- conn.c --- */

/* A new connection to the log's database, set up (session settings,
 * prepared statements); app names it in pg_stat_activity. */
int lpg_connect(lpg_log *l, const char *app, PGconn **out, stele_err *err);
/* The same with no statement prepared yet (opening creates the schema
 * they refer to first); also sets l->where. */
int lpg_connect_unprepared(lpg_log *l, const char *app, PGconn **out,
                           stele_err *err);
/* Prepares every statement on c, in one round trip. */
int lpg_prepare_all(lpg_log *l, PGconn *c, stele_err *err);
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

/* --- topic.c --- */

int lpg_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                     stele_err *err);
int lpg_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                         stele_err *err);
/* Frees a cached topic (the topics map's free function). */
void lpg_topic_free(void *p);
/* The topic named name (cached); STELE_ENOTFOUND naming it when absent. */
int lpg_topic_get(lpg_log *l, const char *name, const lpg_topic **out,
                  stele_err *err);
int lpg_check_partition(const lpg_topic *t, int32_t partition, stele_err *err);

/* --- txn.c --- */

/* What a transaction needs to fence a consumer's offset commit: the
 * ownership it had when the offset was sent (lpg_consumer_fence). */
typedef struct lpg_fence {
    int32_t group_id, uid, lock_pid;
    int64_t member;
} lpg_fence;

/* A record produced, its bytes in the transaction's buffer. */
typedef struct lpg_txn_rec {
    const lpg_topic *t;
    int32_t partition;
    uint32_t slot;
    int64_t seq; /* its place among the transaction's records of the
                  * partition: offset = the slot's base + seq */
    int64_t ts;
    size_t key_at, key_len, value_at, value_len, hdr_at, hdr_len;
    bool has_key, has_value, has_hdr;
    uint32_t crc; /* of the bytes kept, as stored (stele_log_record_crc) */
} lpg_txn_rec;

/* A partition written to: how many records, and (at commit) the offset
 * of the first. */
typedef struct lpg_txn_slot {
    int32_t topic_id, partition;
    int64_t count, base;
} lpg_txn_slot;

/* A group offset sent. */
typedef struct lpg_txn_off {
    const lpg_topic *t;
    int32_t partition;
    int64_t next;
    size_t group_at; /* the group's name, NUL-terminated, in bytes */
    lpg_fence fence;
} lpg_txn_off;

/* A statement writing records order[from..to) of one partition. */
typedef struct lpg_txn_stmt {
    size_t from, to;
} lpg_txn_stmt;

/* A binary array parameter being built. */
typedef struct lpg_arr {
    unsigned char *b;
    size_t n, cap;
} lpg_arr;

struct lpg_txn {
    struct stele_log_txn base;
    bool active;
    lpg_txn_rec *recs;
    size_t n_recs, cap_recs;
    lpg_txn_slot *slots;
    size_t n_slots, cap_slots;
    uint32_t *index; /* open addressing: slot number + 1, 0 empty */
    size_t index_cap;
    lpg_txn_off *offs;
    size_t n_offs, cap_offs;
    unsigned char *bytes; /* keys, values, headers, group names */
    size_t n_bytes, cap_bytes;
    unsigned char *hdr; /* scratch for encoding headers */
    size_t hdr_cap;
    /* Filled at commit (commit.c): */
    size_t *order; /* records by partition, duplicate keys dropped */
    size_t n_order, cap_order;
    lpg_txn_stmt *stmts;
    size_t n_stmts, cap_stmts;
    lpg_arr arrays[6]; /* offsets, timestamps, keys, values, headers, crcs */
};

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

/* --- util.c --- */

/* Grows *p (*cap elements of size bytes) to hold need; -1 when out of
 * memory or too large. */
int lpg_grow(void **p, size_t *cap, size_t need, size_t size);

/* --- commit.c --- */

/* Writes t, its slots sorted by (topic, partition), as one PostgreSQL
 * transaction; t is left as it was filled, for the caller to reset. */
int lpg_txn_write(lpg_log *l, lpg_txn *t, stele_err *err);

/* --- read.c --- */
int lpg_read(stele_log *log, const char *topic, int32_t partition, int64_t from,
             size_t max, stele_log_batch **out, stele_err *err);
/* The records of one key of a normal topic, by the index records_by_key
 * (compacted topics: by a scan). */
int lpg_read_key(stele_log *log, const char *topic, int32_t partition,
                 const void *key, size_t key_len, int64_t from, size_t max,
                 stele_log_batch **out, stele_err *err);
int lpg_delete_before(stele_log *log, const char *topic, int32_t partition,
                      int64_t before_ms, int64_t below_offset, int64_t *deleted,
                      stele_err *err);
int lpg_end_offset(stele_log *log, const char *topic, int32_t partition,
                   int64_t *end, stele_err *err);
int lpg_get_latest(stele_log *log, const char *topic, int32_t partition,
                   const void *key, size_t key_len, stele_log_batch **out,
                   stele_err *err);
int lpg_committed(stele_log *log, const char *group, const char *topic,
                  int32_t partition, int64_t *next, stele_err *err);
/* Appends the rows of a read (off, ts, key, value, headers, crc) to b,
 * their checksums checked. */
int lpg_rows_into(lpg_log *l, const PGresult *r, const lpg_topic *t,
                  int32_t partition, stele_log_batch *b, stele_err *err);
/* Sends a read of up to max records of t[partition] from `from` on. */
int lpg_send_read(PGconn *c, const lpg_topic *t, int32_t partition,
                  int64_t from, size_t max);
/* The group's committed next offset, read on c; 0 when none. */
int lpg_committed_on(lpg_log *l, PGconn *c, const char *group,
                     const lpg_topic *t, int32_t partition, int64_t *next,
                     stele_err *err);

/* --- consumer.c --- */

typedef struct lpg_consumer {
    struct stele_log_consumer base;
    lpg_log *log;
    stele_log_rebalance_cb cb;
    stele_log_subscription sub;
    const lpg_topic **resolved; /* parallel to sub.topics; NULL: not yet */
    PGconn *conn;
    bool joined; /* conn holds the member lock and listens */
    int32_t group_id, pid;
    int64_t member;
    stele_log_assignment asg; /* a part's end: its watermark at the last
                               * fetch */
    bool dirty;               /* records may have arrived: fetch */
    bool rebalance_now;       /* the group changed */
    int64_t next_rebalance_ns;
    int64_t next_evict_ns; /* next look for members that stopped polling */
    size_t rr;             /* where the next fetch's round-robin starts */
} lpg_consumer;

int lpg_consumer_new(stele_log *log, const char *group,
                     const char *const *topics, size_t n_topics,
                     const stele_log_rebalance_cb *cb, stele_log_consumer **out,
                     stele_err *err);
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
/* The session is gone and its locks with it: everything owned is lost
 * (revoked with lost == true). */
void lpg_consumer_lose(lpg_consumer *c);
/* After a failed call on the consumer's connection: loses everything when
 * the session went; returns rc. */
int lpg_consumer_failed(lpg_consumer *c, int rc);
/* lpg_run on the consumer's connection, the error naming the group. */
int lpg_consumer_run(lpg_consumer *c, enum lpg_stmt s, const lpg_params *p,
                     PGresult **r, stele_err *err, const char *what);
/* LISTENs to t's channel. */
int lpg_consumer_listen(lpg_consumer *c, const lpg_topic *t, stele_err *err);
/* NOTIFYs the group's channel: the others re-check their share. */
int lpg_consumer_notify(lpg_consumer *c, stele_err *err);
/* Joins the group again (on a new session, when the old one went) unless
 * c is a member now. */
int lpg_consumer_ensure_joined(lpg_consumer *c, stele_err *err);

/* --- rebalance.c --- */

/* Looks for subscribed topics created since, then gives back or takes
 * partitions until c holds its share. */
int lpg_rebalance(lpg_consumer *c, stele_err *err);

/* --- poll.c --- */
int lpg_consumer_poll(stele_log_consumer *c, int timeout_ms, size_t max,
                      stele_log_batch **out, stele_err *err);

#endif

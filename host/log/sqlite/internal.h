/*
 * internal.h — private to the SQLite log backend: the handle and
 * helpers shared by open.c (opening), topic.c (topics), stmt.c (the
 * statements and running them), txn.c, read.c and consumer.c (consumer
 * groups).
 */
#ifndef STELE_LOG_SQLITE_INT_H
#define STELE_LOG_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>

#include "common/map.h"
#include "log/internal.h"

/* A topic as stored; cached by name for the life of the handle (topics
 * are never deleted and their partition count never changes). */
typedef struct lsq_topic {
    int64_t id;
    int32_t partitions;
    bool compacted;
    char name[];
} lsq_topic;

enum lsq_stmt {
    ST_BEGIN,           /* a read snapshot */
    ST_BEGIN_IMMEDIATE, /* a write transaction */
    ST_COMMIT,
    ST_ROLLBACK,
    ST_TOPIC_GET,
    ST_TOPIC_INSERT,
    ST_PART_INSERT,
    ST_PART_GET,
    ST_PART_SET,
    ST_PART_ALL,
    ST_REC_INSERT,
    ST_CMP_UPSERT,
    ST_REC_READ,
    ST_CMP_READ,
    ST_CMP_GET,
    ST_GRP_GET,
    ST_GRP_SET,
    ST_DATA_VERSION,
    ST_REC_EXPIRE,
    ST_CMP_EXPIRE,
    ST_COUNT
};

/* A partition touched by the open transaction and its next offset. */
typedef struct lsq_slot {
    int64_t topic_id; /* 0: empty slot (topic ids start at 1) */
    int32_t partition;
    int64_t next;
} lsq_slot;

typedef struct lsq_txn {
    struct stele_log_txn base;
    bool active;
    int failed;      /* the STELE_E* of an earlier SQL failure, or 0 */
    lsq_slot *slots; /* open addressing, cap a power of two */
    size_t cap, n;
} lsq_txn;

typedef struct lsq_log {
    struct stele_log base;
    sqlite3 *db;
    char *path;     /* as given to open, for messages */
    char *realpath; /* canonical, for lock files and handle comparison */
    sqlite3_stmt *st[ST_COUNT];
    stele_map *topics; /* name -> lsq_topic* */
    lsq_txn txn;       /* the one transaction a handle may have */
    unsigned char *hdr_buf;
    size_t hdr_cap;
    stele_set64 *unchecked_seen; /* partitions said to be read unchecked */
} lsq_log;

/* The SQL of each statement (stmt.c), prepared by open.c. */
extern const char *const lsq_stmt_sql[ST_COUNT];

/* The STELE_E* code of the SQLite status rc. */
int lsq_status_of(int rc);

/* Fills err from the SQLite status rc ("<path>: <what>: <sqlite message>")
 * and returns the matching STELE_E* code. */
int lsq_fail(lsq_log *l, int rc, stele_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Topics (topic.c). */
int lsq_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                     stele_err *err);
int lsq_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                         stele_err *err);

/* The topic named name (cached); STELE_ENOTFOUND naming it when absent. */
int lsq_topic_get(lsq_log *l, const char *name, const lsq_topic **out,
                  stele_err *err);

/* Checks partition against the topic (STELE_ENOTFOUND naming both). */
int lsq_check_partition(const lsq_topic *t, int32_t partition, stele_err *err);

/* Appends up to max records of t[partition] from offset `from` to b;
 * *got receives how many. */
int lsq_read_into(lsq_log *l, const lsq_topic *t, int32_t partition,
                  int64_t from, size_t max, stele_log_batch *b, size_t *got,
                  stele_err *err);

/* The group's committed next offset for t[partition]; 0 when none. */
int lsq_committed_get(lsq_log *l, const char *group, const lsq_topic *t,
                      int32_t partition, int64_t *next, stele_err *err);

/* Runs a statement without results (BEGIN, COMMIT, ...). */
int lsq_exec(lsq_log *l, enum lsq_stmt id, stele_err *err);

/* Steps a statement that returns no rows and resets it; the SQLite status
 * (SQLITE_OK when done). */
int lsq_step_done(sqlite3_stmt *s);

/*
 * Record headers are stored as one blob: u32 count, then per header u32
 * name length, the name and a NUL, u32 value length, the value (integers
 * little endian). The NUL lets a read point names straight into one copy
 * of the blob.
 */

/* Transactions (txn.c). */
int lsq_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err);
int lsq_txn_produce(stele_log_txn *txn, const char *topic, int32_t partition,
                    const stele_log_record *rec, int64_t *offset_out,
                    stele_err *err);
int lsq_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                        const char *topic, int32_t partition,
                        int64_t next_offset, stele_err *err);
int lsq_txn_commit(stele_log_txn *txn, stele_err *err);
void lsq_txn_abort(stele_log_txn *txn);

/* Reads (read.c). */
int lsq_read(stele_log *log, const char *topic, int32_t partition, int64_t from,
             size_t max, stele_log_batch **out, stele_err *err);
int lsq_end_offset(stele_log *log, const char *topic, int32_t partition,
                   int64_t *end, stele_err *err);
int lsq_get_latest(stele_log *log, const char *topic, int32_t partition,
                   const void *key, size_t key_len, stele_log_batch **out,
                   stele_err *err);
int lsq_committed(stele_log *log, const char *group, const char *topic,
                  int32_t partition, int64_t *next, stele_err *err);
int lsq_delete_before(stele_log *log, const char *topic, int32_t partition,
                      int64_t before_ms, int64_t below_offset, int64_t *deleted,
                      stele_err *err);

/* Consumer groups (consumer.c). */
int lsq_consumer_new(stele_log *log, const char *group,
                     const char *const *topics, size_t n_topics,
                     const stele_log_rebalance_cb *cb, stele_log_consumer **out,
                     stele_err *err);
int lsq_consumer_poll(stele_log_consumer *c, int timeout_ms, size_t max,
                      stele_log_batch **out, stele_err *err);
int lsq_consumer_seek(stele_log_consumer *c, const char *topic,
                      int32_t partition, int64_t offset, stele_err *err);
int lsq_consumer_rewind(stele_log_consumer *c, stele_err *err);
size_t lsq_consumer_assignment(stele_log_consumer *c,
                               const stele_topic_partition **tps);
void lsq_consumer_close(stele_log_consumer *c);
/* Whether c currently owns t[partition] (holds its group and has it
 * assigned); fills err with STELE_ECONFLICT when not. */
int lsq_consumer_check_owner(stele_log_consumer *c, const lsq_topic *t,
                             int32_t partition, stele_err *err);
/* The canonical path of the log file c reads. */
const char *lsq_consumer_path(const stele_log_consumer *c);

#endif

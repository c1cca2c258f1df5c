/*
 * internal.h — private to the Kafka log backend: the handle and the
 * helpers shared by open.c (opening), util.c (time, errors,
 * configuration), part.c (per-partition state), producer.c (the
 * transactional producer), topic.c (topics), txn.c (transactions),
 * read.c (reads without a group, group offsets),
 * view.c (the materialized views behind get_latest) and
 * consumer.c (consumer groups).
 *
 * One handle owns three kinds of librdkafka clients:
 *  - the transactional producer, which also carries the admin requests;
 *  - the reader, an assign-only read_committed consumer used by read,
 *    end_offset and the views (made on first use);
 *  - one KafkaConsumer per stele_log_consumer (consumer.c).
 */
#ifndef STELE_LOG_KAFKA_INT_H
#define STELE_LOG_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "common/map.h"
#include "log/internal.h"

/* Bounds on every wait for the broker (ms). Only the transactional calls
 * that librdkafka wants unbounded (commit, abort, send_offsets) get -1. */
#define LK_CONNECT_TIMEOUT_MS 10000
#define LK_REQUEST_TIMEOUT_MS 30000
#define LK_READ_TIMEOUT_MS 30000
#define LK_VISIBLE_TIMEOUT_MS 15000
#define LK_RETRIES 5

/* A topic as the broker described it; cached by name for the life of the
 * handle (stele never deletes topics or changes their partition count). */
typedef struct lk_topic {
    int32_t partitions;
    int compacted; /* 1, 0, or -1 when not asked yet */
    char name[];
} lk_topic;

typedef struct lk_view lk_view;

/* What the handle knows about one partition it wrote or keeps a view of. */
typedef struct lk_part {
    const lk_topic *topic;
    int32_t partition;
    /* The last stable offset a reader must reach to see everything this
     * handle committed here (markers are written after commit returns). */
    int64_t need_end;
    lk_view *view; /* NULL: no view (view.c) */
    /* Bookkeeping of the open transaction. */
    uint32_t txn_seq;
    int64_t txn_last; /* highest delivered offset in it, -1 */
} lk_part;

/* A record of the open transaction kept for a view until commit. */
typedef struct lk_pending {
    lk_part *part;
    int64_t offset, timestamp; /* from the delivery report; -1 before */
    void *entry;               /* an lk_view entry, built at produce */
} lk_pending;

/* One message of the open transaction, indexed by its delivery opaque. */
typedef struct lk_msg {
    lk_part *part;
    size_t pending; /* index + 1 into pending, 0: none */
} lk_msg;

/* Offsets of one consumer's group sent with the transaction. */
typedef struct lk_group_offsets {
    struct lk_consumer *consumer;
    rd_kafka_topic_partition_list_t *list;
} lk_group_offsets;

typedef struct lk_txn {
    struct stele_log_txn base;
    bool active;
    uint32_t seq; /* tells this transaction's delivery reports apart */
    lk_msg *msgs;
    size_t n_msgs, cap_msgs, delivered;
    lk_pending *pending;
    size_t n_pending, cap_pending;
    lk_part **parts; /* partitions written */
    size_t n_parts, cap_parts;
    lk_group_offsets *offsets;
    size_t n_offsets, cap_offsets;
    rd_kafka_resp_err_t dr_err; /* first failed delivery */
    char dr_msg[256];
} lk_txn;

typedef struct lk_log {
    struct stele_log base;
    rd_kafka_t *producer;
    rd_kafka_queue_t *admin_q;
    rd_kafka_t *reader; /* NULL until the first read */
    rd_kafka_t *peeker; /* read_uncommitted, for high watermarks (settle) */
    char *txn_id;
    char *bootstrap;       /* for messages */
    char **keys, **values; /* the properties, for the other clients */
    size_t n_props;
    stele_map *topics; /* name -> lk_topic* */
    stele_map *parts;  /* topic NUL partition -> lk_part* */
    lk_txn txn;
    /* The producer hit a fatal error: no more transactions on it. Unless
     * it was fenced by another producer of a transactional.id the user
     * set (or is not authorized), it is replaced by a new one
     * (lk_producer_renew). The default transactional.id is unique per
     * process: a fencing of it can only be the coordinator aborting a
     * transaction that outlived transaction.timeout.ms (a broker down for
     * longer). */
    bool fatal;
    bool fenced;
    bool txn_id_configured; /* transactional.id set by the user */
    char fatal_msg[256];
    char last_error[256]; /* from error_cb, for connection messages */
} lk_log;

typedef struct lk_consumer lk_consumer;

/* --- util.c ------------------------------------------------------ */

/* The STELE_E* status for a librdkafka error code (class only). */
int lk_status_of(rd_kafka_resp_err_t e);

/* Builds a librdkafka configuration from the handle's properties with
 * defaults set before them and forced settings after ("k", "v" pairs,
 * NULL-terminated). skip_txn leaves out transactional.id. */
int lk_conf_build(lk_log *l, const char *const *defaults,
                  const char *const *forced, bool skip_txn,
                  rd_kafka_conf_t **out, stele_err *err);

void lk_sleep_ms(int ms);
int64_t lk_now_ms(void);

/* --- part.c ------------------------------------------------------ */

/* The partition state for t[partition], made on first use. */
int lk_part_get(lk_log *l, const lk_topic *t, int32_t partition, lk_part **out,
                stele_err *err);
lk_part *lk_part_find(lk_log *l, const char *topic, int32_t partition);

/* --- producer.c -------------------------------------------------- */

/* The transactional producer (which also carries the admin requests),
 * ready for transactions. */
int lk_producer_open(lk_log *l, stele_err *err);
void lk_producer_close(lk_log *l);
/* Replaces a producer that hit a fatal error (not a fencing) with a new
 * one of the same transactional.id: its init_transactions completes or
 * aborts the transaction the old one left open, so afterwards the outcome
 * of that transaction is settled. STELE_ERETRY while the cluster does not
 * answer (the producer is then absent until a later call succeeds). */
int lk_producer_renew(lk_log *l, stele_err *err);
/* The producer's delivery report callback: notes each message of the
 * open transaction delivered (its offset) or failed. */
void lk_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* --- topic.c ------------------------------------------------ */

/* The topic named name (cached, else from metadata); STELE_ENOTFOUND
 * naming it when absent. */
int lk_topic_get(lk_log *l, const char *name, const lk_topic **out,
                 stele_err *err);
int lk_check_partition(const lk_topic *t, int32_t partition, stele_err *err);
/* Whether t is compacted (asks the broker once). */
int lk_topic_compacted(lk_log *l, const lk_topic *t, bool *compacted,
                       stele_err *err);
int lk_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                    stele_err *err);
int lk_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                        stele_err *err);
void lk_topic_free(void *t);

/* --- txn.c -------------------------------------------------- */

int lk_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err);
int lk_txn_produce(stele_log_txn *txn, const char *topic, int32_t partition,
                   const stele_log_record *rec, int64_t *offset_out,
                   stele_err *err);
int lk_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                       const char *topic, int32_t partition,
                       int64_t next_offset, stele_err *err);
int lk_txn_commit(stele_log_txn *txn, stele_err *err);
void lk_txn_abort(stele_log_txn *txn);
void lk_txn_free(lk_txn *t);

/* --- read.c ------------------------------------------------- */

/* Called per record, in offset order; non-zero stops with that status. */
typedef int (*lk_record_fn)(void *opaque, const rd_kafka_message_t *m,
                            stele_err *err);

/* The end a read_committed reader can reach in t[partition]: the last
 * stable offset, waiting (bounded) until this handle's own commits are
 * visible. */
int lk_visible_end(lk_log *l, const lk_topic *t, int32_t partition,
                   int64_t *end, stele_err *err);

/* Delivers the committed records of t[partition] from `from` to the
 * visible end (at most max) to fn; *next receives the offset to continue
 * from (the end when everything was read). */
int lk_fetch(lk_log *l, const lk_topic *t, int32_t partition, int64_t from,
             size_t max, lk_record_fn fn, void *opaque, int64_t *next,
             stele_err *err);

/* Appends a librdkafka message to a batch as a stele_log_record. */
int lk_batch_add_message(stele_log_batch *b, const rd_kafka_message_t *m,
                         stele_err *err);

int lk_read(stele_log *log, const char *topic, int32_t partition, int64_t from,
            size_t max, stele_log_batch **out, stele_err *err);
int lk_end_offset(stele_log *log, const char *topic, int32_t partition,
                  int64_t *end, stele_err *err);
int lk_committed(stele_log *log, const char *group, const char *topic,
                 int32_t partition, int64_t *next, stele_err *err);
int lk_settle(stele_log *log, const char *topic, int32_t partition,
              int timeout_ms, stele_err *err);

/* --- view.c ------------------------------------------------- */

/* A view entry for a record about to be produced (for lk_pending). */
void *lk_view_entry_new(const stele_log_record *rec);
void lk_view_entry_free(void *entry);
/* Applies a committed record of this handle to part's view (takes the
 * entry). */
void lk_view_apply(lk_part *part, void *entry, int64_t offset, int64_t ts);
/* The view's next sync must look at the broker again. */
void lk_view_mark_stale(lk_part *part);
void lk_view_free(lk_view *v);
int lk_compacted_sync(stele_log *log, const char *topic, int32_t partition,
                      stele_err *err);
int lk_delete_before(stele_log *log, const char *topic, int32_t partition,
                     int64_t before_ms, int64_t below_offset, int64_t *deleted,
                     stele_err *err);
int lk_get_latest(stele_log *log, const char *topic, int32_t partition,
                  const void *key, size_t key_len, stele_log_batch **out,
                  stele_err *err);

/* --- consumer.c --------------------------------------------- */

int lk_consumer_new(stele_log *log, const char *group,
                    const char *const *topics, size_t n_topics,
                    const stele_log_rebalance_cb *cb, stele_log_consumer **out,
                    stele_err *err);
int lk_consumer_poll(stele_log_consumer *c, int timeout_ms, size_t max,
                     stele_log_batch **out, stele_err *err);
int lk_consumer_seek(stele_log_consumer *c, const char *topic,
                     int32_t partition, int64_t offset, stele_err *err);
int lk_consumer_rewind(stele_log_consumer *c, stele_err *err);
size_t lk_consumer_assignment(stele_log_consumer *c,
                              const stele_topic_partition **tps);
void lk_consumer_close(stele_log_consumer *c);
/* The consumer's librdkafka handle (for its group metadata). */
rd_kafka_t *lk_consumer_rk(lk_consumer *c);

#endif

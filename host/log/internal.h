/*
 * internal.h — private to host/log (and its backends): what a log backend
 * provides.
 *
 * A backend fills a stele_log_ops table and embeds the base structs below
 * as the FIRST member of its own handle, transaction and consumer structs,
 * so log.c can dispatch on log->ops and the backend can cast back:
 *
 *     typedef struct sqlite_log { struct stele_log base; ... } sqlite_log;
 *
 * log.c validates arguments that every backend checks the same way (NULL
 * pointers, topic and group names, negative offsets) before dispatching,
 * so backends may assume them. Batches are built with the helpers at the
 * end of this file so stele_log_batch_free works whichever backend made
 * the batch.
 */
#ifndef STELE_LOG_INTERNAL_H
#define STELE_LOG_INTERNAL_H

#include "common/set64.h"
#include "log.h"

typedef struct stele_log_ops stele_log_ops;

struct stele_log {
    const stele_log_ops *ops;
};

struct stele_log_txn {
    stele_log *log;
};

struct stele_log_consumer {
    stele_log *log;
    char *group; /* owned by the backend's consumer; read by log.c */
};

struct stele_log_ops {
    const char *name; /* "sqlite", "kafka", ... */

    /* Frees the handle. Transactions and consumers are gone by then. */
    void (*close)(stele_log *log);

    int (*topic_ensure)(stele_log *log, const stele_topic_spec *spec,
                        stele_err *err);
    int (*topic_partitions)(stele_log *log, const char *topic, int32_t *n,
                            stele_err *err);

    int (*txn_begin)(stele_log *log, stele_log_txn **out, stele_err *err);
    int (*txn_produce)(stele_log_txn *txn, const char *topic, int32_t partition,
                       const stele_log_record *rec, int64_t *offset_out,
                       stele_err *err);
    /* c belongs to the same backend (log.c checks the ops match). */
    int (*txn_send_offset)(stele_log_txn *txn, stele_log_consumer *c,
                           const char *topic, int32_t partition,
                           int64_t next_offset, stele_err *err);
    /* Both free txn whatever the outcome. */
    int (*txn_commit)(stele_log_txn *txn, stele_err *err);
    void (*txn_abort)(stele_log_txn *txn);

    int (*read)(stele_log *log, const char *topic, int32_t partition,
                int64_t from, size_t max, stele_log_batch **out,
                stele_err *err);
    /* optional: the records of one key from offset `from` on, in offset
     * order, up to max, from an index by key (log.c scans without one) */
    int (*read_key)(stele_log *log, const char *topic, int32_t partition,
                    const void *key, size_t key_len, int64_t from, size_t max,
                    stele_log_batch **out, stele_err *err);
    int (*end_offset)(stele_log *log, const char *topic, int32_t partition,
                      int64_t *end, stele_err *err);
    int (*get_latest)(stele_log *log, const char *topic, int32_t partition,
                      const void *key, size_t key_len, stele_log_batch **out,
                      stele_err *err);
    /* optional: NULL when get_latest reads the store directly */
    int (*compacted_sync)(stele_log *log, const char *topic, int32_t partition,
                          stele_err *err);
    /* NULL: transactions are atomic, nothing to wait for */
    int (*settle)(stele_log *log, const char *topic, int32_t partition,
                  int timeout_ms, stele_err *err);
    int (*committed)(stele_log *log, const char *group, const char *topic,
                     int32_t partition, int64_t *next, stele_err *err);
    /* optional: NULL when the backend keeps every record */
    int (*delete_before)(stele_log *log, const char *topic, int32_t partition,
                         int64_t before_ms, int64_t below_offset,
                         int64_t *deleted, stele_err *err);

    /* topics and the callbacks are the caller's: copy what is kept. */
    int (*consumer_new)(stele_log *log, const char *group,
                        const char *const *topics, size_t n_topics,
                        const stele_log_rebalance_cb *cb,
                        stele_log_consumer **out, stele_err *err);
    int (*consumer_poll)(stele_log_consumer *c, int timeout_ms, size_t max,
                         stele_log_batch **out, stele_err *err);
    int (*consumer_seek)(stele_log_consumer *c, const char *topic,
                         int32_t partition, int64_t offset, stele_err *err);
    int (*consumer_rewind)(stele_log_consumer *c, stele_err *err);
    size_t (*consumer_assignment)(stele_log_consumer *c,
                                  const stele_topic_partition **tps);
    void (*consumer_close)(stele_log_consumer *c);
    /* the server deletes the records of normal topics by their retention
     * (Kafka): delete_before has only views to forget */
    bool server_retention;
    /* get_latest answers from memory (Kafka's views of the compacted
     * partitions, synced by compacted_sync): a lookup costs no I/O */
    bool lookup_in_memory;
    /* stele_log_caps: the log is files of this machine, opened by every
     * process that uses it (no server, no other machine) */
    bool local;
    /* stele_log_caps: senders learn results from a replies topic, as the
     * log cannot look a result up by key for them */
    bool replies_topic;
};

/* ------------------------------------------------------------------ */
/* Batches: a growable record array plus an arena holding every byte   */
/* the records point to (topic names, keys, values, headers). Freed at */
/* once by stele_log_batch_free.                                       */

/* A new empty batch, or NULL when out of memory. */
stele_log_batch *stele_log_batch_create(void);

/* stele_log_read_key by reading the partition and keeping the key's
 * records: for backends without an index by key. */
int stele_log_read_key_scan(stele_log *log, const char *topic,
                            int32_t partition, const void *key, size_t key_len,
                            int64_t from, size_t max, stele_log_batch **out,
                            stele_err *err);

/* Appends a zeroed record and returns it; NULL when out of memory. The
 * pointer is valid until the next add (the array may move). */
stele_log_record *stele_log_batch_add(stele_log_batch *b);

/* n bytes of batch-owned memory, aligned for any type; NULL when out of
 * memory. Never moves. n == 0 returns a valid, unique pointer. */
void *stele_log_batch_alloc(stele_log_batch *b, size_t n);

/* A batch-owned copy of n bytes of src (src may be NULL when n == 0). */
void *stele_log_batch_copy(stele_log_batch *b, const void *src, size_t n);

/* A batch-owned copy of topic; consecutive calls with the same pointer
 * return the same copy, so a batch of one topic holds its name once. */
const char *stele_log_batch_topic(stele_log_batch *b, const char *topic);

/* Drops the batch's last record (after a failure to fill it). Its arena
 * bytes stay until the batch is freed. */
void stele_log_batch_drop_last(stele_log_batch *b);

/* STELE_ENOTFOUND naming topic when partition is not one of its
 * partitions (topic.c). */
int stele_log_check_partition(const char *topic, int32_t partitions,
                              int32_t partition, stele_err *err);
/* STELE_ECONFLICT naming both when an existing topic differs from spec. */
int stele_log_topic_matches(const char *topic, int32_t partitions,
                            bool compacted, const stele_topic_spec *spec,
                            stele_err *err);

/* Headers as one blob, for backends that store them in a column
 * (headers.c). Encoding grows *buf (capacity *cap) as needed; a
 * header too large is STELE_EINVAL naming topic. Decoding copies the blob
 * into the batch and points rec's headers into it; false when the blob is
 * malformed, or (with *oom set) when out of memory. */
int stele_log_headers_encode(const char *topic, const stele_log_record *rec,
                             unsigned char **buf, size_t *cap, size_t *len,
                             stele_err *err);
bool stele_log_headers_decode(stele_log_batch *b, const void *blob, size_t n,
                              stele_log_record *rec, bool *oom);

/* Record checksums, for the backends that store records in SQL tables
 * (checksum.c; docs/design.md, "Record checksums"). */

/* The CRC-32C stored with a record: over key, header blob (as stored) and
 * value, each a u32 little-endian length and its bytes; a NULL pointer is
 * a NULL field (length 0xFFFFFFFF, no bytes), any other pointer with
 * length 0 an empty one. Each length must be under 2 GiB. */
uint32_t stele_log_record_crc(const void *key, size_t key_len,
                              const void *headers, size_t headers_len,
                              const void *value, size_t value_len);

/* A record's columns as a SQL backend read them: pointers into its row,
 * NULL for SQL NULL (and not NULL for an empty, non-NULL one). */
typedef struct stele_log_stored {
    const void *key, *headers, *value;
    size_t key_len, headers_len, value_len;
    bool has_crc; /* false: stored before checksums (crc IS NULL) */
    int64_t crc;
} stele_log_stored;

/* Fills rec (just added to b, its topic, partition, offset and timestamp
 * set) from s: key and value copied into b; the checksum checked, and on
 * a mismatch rec->damaged says so and the headers are left undecoded;
 * otherwise the headers decoded (a corrupt blob: damaged too). No
 * checksum stored: rec->unchecked. 0, or STELE_ENOMEM (drop the record). */
int stele_log_stored_read(stele_log_batch *b, stele_log_record *rec,
                          const stele_log_stored *s);

/* Says on stderr, at info level, that records of rec's partition (of the
 * topic whose id is topic_id) are read unchecked, once per partition:
 * *seen (created at the first call; the caller frees it with
 * stele_set64_free) holds those said already. where names the log. */
void stele_log_note_unchecked(stele_set64 **seen, const char *where,
                              int64_t topic_id, const stele_log_record *rec);

/* ------------------------------------------------------------------ */
/* Consumer bookkeeping for backends that run groups themselves (SQLite, */
/* PostgreSQL; assignment.c).                                       */

/* The distinct topics a consumer subscribes to, in the order first given;
 * the names are copies. */
typedef struct stele_log_subscription {
    char **topics;
    size_t n;
} stele_log_subscription;

/* Copies the distinct names of topics[0..n); 0 or STELE_ENOMEM (then s
 * holds nothing). */
int stele_log_subscription_init(stele_log_subscription *s,
                                const char *const *topics, size_t n);
void stele_log_subscription_free(stele_log_subscription *s);

/* A partition assigned to a consumer and where it reads next. */
typedef struct stele_log_part {
    const void *topic; /* the backend's topic, from its cache */
    int32_t partition;
    int64_t position; /* next offset poll returns */
    int64_t end;      /* the partition's watermark at the last fetch */
} stele_log_part;

/* The partitions a consumer owns. tps is what consumer_assignment returns;
 * its topic names are borrowed from the backend's topic cache. Lowering n
 * drops the last entries. */
typedef struct stele_log_assignment {
    stele_log_part *parts;
    stele_topic_partition *tps; /* parallel to parts */
    size_t n, cap;
} stele_log_assignment;

/* Makes room for more partitions; 0 or STELE_ENOMEM. */
int stele_log_assignment_reserve(stele_log_assignment *a, size_t more);
/* Appends topic[partition] (topic's name is name) at position, in room
 * reserved before; returns its entry, valid until the next reserve. */
stele_log_part *stele_log_assignment_add(stele_log_assignment *a,
                                         const void *topic, const char *name,
                                         int32_t partition, int64_t position);
/* The entry of topic[partition], or NULL when it is not assigned. */
stele_log_part *stele_log_assignment_find(const stele_log_assignment *a,
                                          const char *topic, int32_t partition);
/* Moves topic[partition]'s position to offset; STELE_EINVAL naming group
 * when it is not assigned. */
int stele_log_assignment_seek(stele_log_assignment *a, const char *group,
                              const char *topic, int32_t partition,
                              int64_t offset, stele_err *err);
/* Calls committed for every entry in turn, to set its position to the
 * group's committed offset; stops at the first failure and returns it. */
int stele_log_assignment_rewind(stele_log_assignment *a,
                                int (*committed)(void *arg, stele_log_part *p,
                                                 stele_err *err),
                                void *arg, stele_err *err);
/* How many partitions are assigned; *tps the array (NULL when none). */
size_t stele_log_assignment_get(const stele_log_assignment *a,
                                const stele_topic_partition **tps);
/* Frees the arrays (not the topics: they are the cache's). */
void stele_log_assignment_free(stele_log_assignment *a);

#endif

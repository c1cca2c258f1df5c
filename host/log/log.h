/*
 * log.h — the event-log interface. It speaks Kafka's model so that Kafka
 * fits behind it unchanged and the SQL logs (SQLite, PostgreSQL) emulate it:
 *
 *  - named topics with a fixed number of partitions; compacted topics keep
 *    the latest record per key;
 *  - records with key, headers, value, timestamp and a per-partition offset
 *    (offsets start at 0 and only grow; the embedded log gives one offset
 *    per record, but Kafka's transaction markers take offsets too, so a
 *    reader must not assume they are dense. A compacted topic's read
 *    returns the latest record of each key, in offset order, with gaps);
 *  - consumer groups own partitions: a consumer joins a group, is assigned
 *    partitions (and may later lose them), and reads them from the group's
 *    committed offsets unless it seeks elsewhere;
 *  - transactions write records to many partitions together with consumer
 *    offsets, all or nothing.
 *
 * This part owns the interface (log.c dispatches to a backend's ops, and
 * internal.h says what a backend provides) and one folder per backend:
 * sqlite/ (the embedded log, always built), kafka/ and postgres/ (built
 * with -DSTELE_KAFKA=ON and -DSTELE_POSTGRES=ON, the default). A
 * backend's open function below exists only in a binary built with it;
 * host/open/ opens the one a config names.
 */
#ifndef STELE_LOG_H
#define STELE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stele/stele.h>

typedef struct stele_log stele_log;
typedef struct stele_log_txn stele_log_txn;
typedef struct stele_log_consumer stele_log_consumer;

typedef struct stele_log_header {
    const char *name;  /* NUL-terminated */
    const void *value; /* may be NULL when len == 0 */
    size_t len;
} stele_log_header;

/* A record. When produced, topic/partition/offset are ignored (pass them
 * to produce); when read, every pointer is owned by the batch it came in. */
typedef struct stele_log_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    const void *key;
    size_t key_len;
    const void *value; /* NULL with value_len 0: a tombstone */
    size_t value_len;
    const stele_log_header *headers;
    size_t n_headers;
    /* Why the record could not be read whole, NULL when it could: the
     * SQL logs found its stored checksum wrong ("checksum mismatch
     * (stored 0x..., computed 0x...)") or its header blob corrupt. The
     * record is returned all the same, with its topic, partition and
     * offset, without headers, and its key and value as stored (not to
     * be trusted, nor decoded), for the reader to put it out of the way
     * (a command dead-lettered, a state rebuilt, a projector stopped
     * alone) instead of one record failing every read of its partition. */
    const char *damaged;
    /* The SQL logs: the record was stored before records carried a
     * checksum, so nothing could be checked (it is read as stored).
     * Always false on Kafka, whose record batches carry their own CRC. */
    bool unchecked;
} stele_log_record;

/* Records returned by a read; free with stele_log_batch_free. */
typedef struct stele_log_batch {
    stele_log_record *records;
    size_t n;
} stele_log_batch;

typedef struct stele_topic_spec {
    const char *name;
    int32_t partitions;
    bool compacted;
    /* Replicas of each partition (Kafka); 0: the backend's default. */
    int16_t replication_factor;
    /* Backend-specific topic configs as "key=value" pairs (Kafka topic
     * configs); the SQL logs ignore them. */
    const char *const *configs;
    size_t n_configs;
} stele_topic_spec;

typedef struct stele_topic_partition {
    const char *topic;
    int32_t partition;
} stele_topic_partition;

/* ------------------------------------------------------------------ */
/* Opening                                                              */

/*
 * Opens (creating if absent) the embedded SQLite log at path, in WAL mode.
 * Several processes may open the same file; writes are serialized by SQLite
 * and group membership by file locks beside it (path + ".<group>.lock").
 */
int stele_log_open_sqlite(const char *path, stele_log **out, stele_err *err);

/*
 * Connects to Apache Kafka through librdkafka. props are librdkafka
 * configuration properties passed through verbatim (bootstrap.servers,
 * security.protocol, sasl.*, ssl.*, ...); n pairs of keys[i] = values[i].
 * The handle owns one transactional producer whose transactional.id is
 * props' "transactional.id" or, when absent, "<instance_id>"; instance_id
 * must be unique among running hosts.
 */
int stele_log_open_kafka(const char *const *keys, const char *const *values,
                         size_t n, const char *instance_id, stele_log **out,
                         stele_err *err);

/*
 * Opens the log kept in PostgreSQL tables (schema "stele_log", created if
 * absent) on the database conninfo names: a libpq connection string, key=
 * value pairs or a URI; what it leaves out comes from the PG* environment
 * variables ("" takes everything from there). Several processes may open
 * one database: each consumer group's partitions are spread over them by
 * advisory locks. A server that cannot be reached is STELE_ERETRY; the
 * password never appears in a message. docs/postgres-event-store.md.
 */
int stele_log_open_postgres(const char *conninfo, stele_log **out,
                            stele_err *err);

/* The default of stele_log_pg_options.max_poll_interval_ms (Kafka's). */
#define STELE_LOG_PG_MAX_POLL_INTERVAL_MS 300000

typedef struct stele_log_pg_options {
    /* A consumer-group member whose consumer has not polled for this long
     * is taken out of its group by the others: its session is ended
     * (pg_terminate_backend), which releases its partitions at once and
     * fences its commits, as Kafka's max.poll.interval.ms does. A process
     * that hangs holding partitions would otherwise hold them as long as
     * its session lives. 0: never. */
    int64_t max_poll_interval_ms;
} stele_log_pg_options;

/* stele_log_open_postgres with options (NULL: the defaults). */
int stele_log_open_postgres_with(const char *conninfo,
                                 const stele_log_pg_options *opts,
                                 stele_log **out, stele_err *err);

void stele_log_close(stele_log *log);

/* "sqlite", "kafka", ... */
const char *stele_log_backend_name(const stele_log *log);

/* ------------------------------------------------------------------ */
/* Topics                                                               */

/* Creates the topic if absent. An existing topic with another partition
 * count or compaction is an error (STELE_ECONFLICT) naming both. */
int stele_log_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                           stele_err *err);

/* The partition count of a topic; STELE_ENOTFOUND if absent. */
int stele_log_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                               stele_err *err);

/* ------------------------------------------------------------------ */
/* Writing                                                              */

/* Starts a transaction. One transaction at a time per stele_log. */
int stele_log_txn_begin(stele_log *log, stele_log_txn **out, stele_err *err);

/*
 * Adds a record to the transaction (its memory is borrowed for the call
 * only). partition < 0 chooses the partition
 * from the key (stele_partition_for_key, Kafka's default partitioner).
 * *offset_out (if not NULL) receives the record's offset; backends that
 * only know it at commit (Kafka) set -1.
 */
int stele_log_txn_produce(stele_log_txn *txn, const char *topic,
                          int32_t partition, const stele_log_record *rec,
                          int64_t *offset_out, stele_err *err);

/* Adds the consumer's group offset for a partition (the next offset to
 * read) to the transaction, as Kafka's send_offsets_to_transaction. */
int stele_log_txn_send_offset(stele_log_txn *txn, stele_log_consumer *c,
                              const char *topic, int32_t partition,
                              int64_t next_offset, stele_err *err);

/*
 * Commits the transaction and frees it; on failure the transaction is
 * freed too, and err->code says the class: STELE_ECONFLICT (ownership
 * lost: nothing was written; rewind to the committed offsets),
 * STELE_ERETRY (try the work again), STELE_EFATAL (stop writing). After
 * STELE_ERETRY (or another failure) the commit may have happened all the
 * same when only its answer was lost — a connection cut during COMMIT, a
 * Kafka producer failing in commit_transaction — so the caller must not
 * assume either: the committed offsets and the data tell.
 */
int stele_log_txn_commit(stele_log_txn *txn, stele_err *err);

/* Discards the transaction and frees it. */
void stele_log_txn_abort(stele_log_txn *txn);

/* Convenience: one record in its own transaction. */
int stele_log_produce(stele_log *log, const char *topic, int32_t partition,
                      const stele_log_record *rec, int64_t *offset_out,
                      stele_err *err);

/* ------------------------------------------------------------------ */
/* Reading (no group)                                                   */

/* Reads up to max records of one key (an aggregate's events) in one
 * partition from offset `from` on, in offset order; an empty batch: none
 * left. The PostgreSQL log reads them by an index; the others read the
 * partition and keep the key's (as Kafka must). */
int stele_log_read_key(stele_log *log, const char *topic, int32_t partition,
                       const void *key, size_t key_len, int64_t from,
                       size_t max, stele_log_batch **out, stele_err *err);

/* Reads up to max records of one partition from offset `from` on. An
 * empty batch (n == 0) means nothing at or after `from`. */
int stele_log_read(stele_log *log, const char *topic, int32_t partition,
                   int64_t from, size_t max, stele_log_batch **out,
                   stele_err *err);

/* The offset the next record of the partition will get (the high
 * watermark of committed records). */
int stele_log_end_offset(stele_log *log, const char *topic, int32_t partition,
                         int64_t *end, stele_err *err);

/* The latest record for key in a compacted topic's partition
 * (STELE_ENOTFOUND when absent or deleted by a tombstone). */
int stele_log_get_latest(stele_log *log, const char *topic, int32_t partition,
                         const void *key, size_t key_len, stele_log_batch **out,
                         stele_err *err);

/*
 * Brings this handle's view of a compacted partition up to date with every
 * record committed to it so far. Kafka has no lookup by key, so the Kafka
 * backend keeps a materialized view (latest record per key) of the
 * compacted partitions get_latest is asked about: call this when taking
 * ownership of a partition, before relying on get_latest for it; records
 * this handle commits afterwards are applied to the view at commit. The
 * SQL logs read their tables directly: nothing to do.
 */
int stele_log_compacted_sync(stele_log *log, const char *topic,
                             int32_t partition, stele_err *err);

/*
 * Waits (bounded) until no transaction that wrote to topic[partition] is
 * open or still completing, so that a read from now on sees all that will
 * ever be committed there before the call. A new owner of a partition
 * calls it before restoring from it. On Kafka a read_committed read stops
 * at the first open transaction: records committed after it (by an owner
 * in between, while a dead host's transaction waits for the broker to
 * abort it at transaction.timeout.ms) are not visible yet, nor is a
 * committed transaction whose markers on this partition are still being
 * written; a restore then misses them. STELE_ERETRY while a transaction
 * is still open after timeout_ms (0: look once). Nothing to wait for
 * where transactions are atomic (SQLite, PostgreSQL).
 */
int stele_log_settle(stele_log *log, const char *topic, int32_t partition,
                     int timeout_ms, stele_err *err);

/*
 * Retention on the backends that keep records themselves (SQLite,
 * PostgreSQL): deletes the oldest records of a partition — those below
 * below_offset that come before its first record stamped at or after
 * before_ms. On a compacted topic, whose records are the latest of each
 * key, that deletes keys whose latest record is that old (Kafka's
 * cleanup.policy=compact,delete): get_latest no longer finds them.
 * Offsets never change: the end offset stays, a read from an offset below
 * the first record left starts at it. *deleted (may be NULL) gets the
 * count: at most STELE_LOG_DELETE_MAX per call, so each call is a short
 * transaction; call again while it deletes that many.
 *
 * Kafka keeps records by the topic's retention.ms on the broker: a normal
 * topic has nothing to do here (*deleted = 0). On a compacted one the
 * handle forgets the keys of its views (stele_log_compacted_sync) whose
 * latest record is stamped before before_ms, below below_offset, as the
 * broker will: the count is of those.
 */
#define STELE_LOG_DELETE_MAX 10000
int stele_log_delete_before(stele_log *log, const char *topic,
                            int32_t partition, int64_t before_ms,
                            int64_t below_offset, int64_t *deleted,
                            stele_err *err);
/* true when stele_log_delete_before deletes the records of normal topics
 * on this backend (false on Kafka, whose broker does). */
bool stele_log_deletes_records(const stele_log *log);
/* true when stele_log_get_latest answers from memory once
 * stele_log_compacted_sync has run (Kafka): a lookup costs no I/O. */
bool stele_log_lookups_in_memory(const stele_log *log);

/* What a backend is, for the engine to ask instead of its name. */
typedef struct stele_log_caps {
    /* Files of this machine, opened by every process that uses them (the
     * embedded SQLite log): no host runs elsewhere, so a process that
     * sends commands decides them itself. */
    bool local;
    /* Senders learn a command's result from a replies topic: clients of
     * the log cannot look the result up by key (Kafka). */
    bool replies_topic;
    bool lookups_in_memory; /* stele_log_lookups_in_memory */
    bool deletes_records;   /* stele_log_deletes_records */
} stele_log_caps;
stele_log_caps stele_log_capabilities(const stele_log *log);

/* The group's committed next offset for a partition; 0 when none. */
int stele_log_committed(stele_log *log, const char *group, const char *topic,
                        int32_t partition, int64_t *next, stele_err *err);

void stele_log_batch_free(stele_log_batch *b);

/* ------------------------------------------------------------------ */
/* Consumer groups                                                      */

typedef struct stele_log_rebalance_cb {
    /* Partitions now owned by this consumer. Called from poll. */
    void (*assigned)(void *opaque, stele_log_consumer *c,
                     const stele_topic_partition *tps, size_t n);
    /* Partitions taken away. lost == true: they already belong to someone
     * else, so nothing may be committed for them. Called from poll. */
    void (*revoked)(void *opaque, stele_log_consumer *c,
                    const stele_topic_partition *tps, size_t n, bool lost);
    void *opaque;
} stele_log_rebalance_cb;

/*
 * Joins group and subscribes to topics (copied). Partitions are assigned
 * during poll. On the embedded log, one process at a time owns a group's
 * partitions: a second consumer of the same group gets none until the
 * first closes (or its process dies).
 */
int stele_log_consumer_new(stele_log *log, const char *group,
                           const char *const *topics, size_t n_topics,
                           const stele_log_rebalance_cb *cb,
                           stele_log_consumer **out, stele_err *err);

/*
 * Returns up to max records from the assigned partitions, each partition's
 * records in offset order, starting at the group's committed offsets (or
 * where seek put it). Waits up to timeout_ms for at least one record; an
 * empty batch after the timeout is not an error. Rebalance callbacks run
 * inside this call.
 */
int stele_log_consumer_poll(stele_log_consumer *c, int timeout_ms, size_t max,
                            stele_log_batch **out, stele_err *err);

/* Sets the next offset poll returns for an assigned partition. */
int stele_log_consumer_seek(stele_log_consumer *c, const char *topic,
                            int32_t partition, int64_t offset, stele_err *err);

/* Rewinds every assigned partition to the group's committed offset (after
 * an aborted transaction). */
int stele_log_consumer_rewind(stele_log_consumer *c, stele_err *err);

/* The partitions currently assigned (borrowed until the next poll). */
size_t stele_log_consumer_assignment(stele_log_consumer *c,
                                     const stele_topic_partition **tps);

const char *stele_log_consumer_group(const stele_log_consumer *c);

/* Leaves the group (revoking its partitions) and frees the consumer. */
void stele_log_consumer_close(stele_log_consumer *c);

#endif

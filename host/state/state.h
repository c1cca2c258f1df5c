/*
 * state.h — aggregate states: an in-memory cache of each aggregate's latest
 * state (wire-format Avro bytes and version) per aggregate type, restored
 * from the compacted state changelog (<app>.<Aggregate>.state) when the
 * host takes ownership of a partition.
 *
 * States are kept encoded: 100,000 cached states cost a few megabytes, and
 * decoding one for a command costs well under a microsecond.
 */
#ifndef STELE_STATE_H
#define STELE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <stele/stele.h>

#include "log/log.h"

typedef struct stele_state_entry {
    int64_t version; /* the aggregate's version: events applied so far */
    int32_t partition;
    uint32_t len;
    /* The aggregate's events cannot be read into a state (a stored event
     * is corrupt or no longer decodes): data holds why, NUL-terminated,
     * and its commands are rejected until a replay rebuilds it. */
    bool broken;
    char data[]; /* wire-format state value, or why it is broken */
} stele_state_entry;

/* A new entry holding a copy of data (NUL-terminated after len bytes, so
 * a broken one's reason is a string); NULL when out of memory or len does
 * not fit. Free with free(). */
stele_state_entry *stele_state_entry_new(int64_t version, int32_t partition,
                                         bool broken, const void *data,
                                         size_t len);

typedef struct stele_state_cache stele_state_cache;

stele_state_cache *stele_state_cache_new(void);
void stele_state_cache_free(stele_state_cache *c);

const stele_state_entry *stele_state_get(const stele_state_cache *c,
                                         const char *id, size_t id_len);

/* Copies data. */
int stele_state_put(stele_state_cache *c, const char *id, size_t id_len,
                    int32_t partition, int64_t version, const void *data,
                    size_t len);

/* Marks an aggregate broken at version (the events read before the bad
 * one); reason is copied. */
int stele_state_put_broken(stele_state_cache *c, const char *id, size_t id_len,
                           int32_t partition, int64_t version,
                           const char *reason);

/* Drops every state of a partition (on revocation). */
void stele_state_drop_partition(stele_state_cache *c, int32_t partition);

size_t stele_state_count(const stele_state_cache *c);

/* Header names on state changelog records. */
#define STELE_H_VERSION "version"
#define STELE_H_STATE_VERSION "state_version"
/* On a state record that marks its aggregate broken (its value: why). */
#define STELE_H_BROKEN "broken"

/*
 * Loads the latest state of every aggregate in one partition of a state
 * changelog topic into the cache. Records whose state_version header
 * differs from state_version, or whose version headers cannot be read,
 * are counted in *stale and not loaded: the caller rebuilds that
 * partition from its events. So are those whose value readable() (when
 * not NULL) says cannot be read. A record with a broken header marks
 * its aggregate broken (stele_state_put_broken).
 */
typedef bool (*stele_state_readable_fn)(void *opaque, const void *value,
                                        size_t len);
int stele_state_restore(stele_state_cache *c, stele_log *log, const char *topic,
                        int32_t partition, int state_version,
                        stele_state_readable_fn readable, void *opaque,
                        size_t *loaded, size_t *stale, stele_err *err);

#endif

/*
 * topic.c — the SQLite log's topics: creating them (topic_ensure), and
 * looking them up by name (cached for the life of the handle).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static int topic_load(lsq_log *l, const char *name, lsq_topic **out,
                      stele_err *err)
{
    sqlite3_stmt *s = l->st[ST_TOPIC_GET];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    *out = NULL;
    if (rc == SQLITE_ROW) {
        size_t len = strlen(name);
        lsq_topic *t = malloc(sizeof *t + len + 1);
        if (!t) {
            sqlite3_reset(s);
            return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
        }
        t->id = sqlite3_column_int64(s, 0);
        t->partitions = sqlite3_column_int(s, 1);
        t->compacted = sqlite3_column_int(s, 2) != 0;
        memcpy(t->name, name, len + 1);
        *out = t;
        rc = SQLITE_DONE;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return lsq_fail(l, rc, err, "looking up topic '%s'", name);
    return 0;
}

int lsq_topic_get(lsq_log *l, const char *name, const lsq_topic **out,
                  stele_err *err)
{
    lsq_topic *t = stele_map_gets(l->topics, name);
    if (!t) {
        int rc = topic_load(l, name, &t, err);
        if (rc)
            return rc;
        if (!t)
            return stele_err_set(err, STELE_ENOTFOUND,
                                 "%s: topic '%s' does not exist", l->path,
                                 name);
        if (stele_map_put(l->topics, t->name, strlen(t->name), t, NULL)) {
            free(t);
            return stele_err_set(err, STELE_ENOMEM, "topic '%s'", name);
        }
    }
    *out = t;
    return 0;
}

int lsq_check_partition(const lsq_topic *t, int32_t partition, stele_err *err)
{
    return stele_log_check_partition(t->name, t->partitions, partition, err);
}

static int topic_compare(const lsq_topic *t, const stele_topic_spec *spec,
                         stele_err *err)
{
    return stele_log_topic_matches(t->name, t->partitions, t->compacted, spec,
                                   err);
}

static int topic_create(lsq_log *l, const stele_topic_spec *spec,
                        stele_err *err)
{
    sqlite3_stmt *s = l->st[ST_TOPIC_INSERT];
    sqlite3_bind_text(s, 1, spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, spec->partitions);
    sqlite3_bind_int(s, 3, spec->compacted);
    int rc = lsq_step_done(s);
    if (rc)
        return lsq_fail(l, rc, err, "creating topic '%s'", spec->name);
    int64_t id = sqlite3_last_insert_rowid(l->db);
    s = l->st[ST_PART_INSERT];
    for (int32_t p = 0; p < spec->partitions; p++) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, p);
        if ((rc = lsq_step_done(s)))
            return lsq_fail(l, rc, err, "creating topic '%s' partition %d",
                            spec->name, p);
    }
    return 0;
}

int lsq_topic_ensure(stele_log *log, const stele_topic_spec *spec,
                     stele_err *err)
{
    lsq_log *l = (lsq_log *)log;
    lsq_topic *t = stele_map_gets(l->topics, spec->name);
    if (t)
        return topic_compare(t, spec, err);
    if (l->txn.active)
        return stele_err_set(err, STELE_EINVAL,
                             "%s: topic '%s': cannot create a topic inside "
                             "a transaction",
                             l->path, spec->name);
    int rc = lsq_exec(l, ST_BEGIN_IMMEDIATE, err);
    if (rc) {
        stele_err_prefix(err, "topic '%s'", spec->name);
        return rc;
    }
    rc = topic_load(l, spec->name, &t, err);
    if (!rc && t)
        rc = topic_compare(t, spec, err);
    else if (!rc)
        rc = topic_create(l, spec, err);
    free(t);
    if (!rc)
        rc = lsq_exec(l, ST_COMMIT, err);
    if (rc) {
        lsq_step_done(l->st[ST_ROLLBACK]);
        return rc;
    }
    const lsq_topic *cached;
    return lsq_topic_get(l, spec->name, &cached, err);
}

int lsq_topic_partitions(stele_log *log, const char *topic, int32_t *n,
                         stele_err *err)
{
    const lsq_topic *t;
    int rc = lsq_topic_get((lsq_log *)log, topic, &t, err);
    if (!rc)
        *n = t->partitions;
    return rc;
}

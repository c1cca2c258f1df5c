/*
 * view.c — get_latest on Kafka. The broker cannot look a key up,
 * so the handle keeps, per compacted partition it was asked about, a view:
 * key -> the latest record (tombstones kept as such, so an older record
 * read later never resurrects a deleted key). compacted_sync reads what
 * was committed since the last sync; this handle's own commits are applied
 * when they commit. A record only replaces an entry with a lower offset,
 * so reading a range twice changes nothing. delete_before forgets the
 * entries the broker's retention deletes (cleanup.policy=compact,delete).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

struct lk_view {
    stele_map *entries; /* key -> entry */
    int64_t next;       /* synced up to here */
    bool stale;         /* a commit of ours was not applied: sync first */
};

/* key, value and headers in one allocation; headers packed as
 * per header: u32 name length, name, NUL, u32 value length, value. */
typedef struct entry {
    int64_t offset, timestamp;
    size_t key_len, value_len, hdr_len, n_headers;
    bool tombstone;
    unsigned char data[];
} entry;

typedef struct hdr_src {
    const char *name;
    const void *value;
    size_t len;
} hdr_src;

static entry *entry_make(const void *key, size_t key_len, const void *value,
                         size_t value_len, const hdr_src *hs, size_t n)
{
    size_t hdr_len = 0;
    for (size_t i = 0; i < n; i++)
        hdr_len += 8 + strlen(hs[i].name) + 1 + hs[i].len;
    entry *e = malloc(sizeof *e + key_len + value_len + hdr_len);
    if (!e)
        return NULL;
    e->offset = e->timestamp = -1;
    e->key_len = key_len;
    e->value_len = value_len;
    e->hdr_len = hdr_len;
    e->n_headers = n;
    e->tombstone = value == NULL;
    unsigned char *p = e->data;
    if (key_len)
        memcpy(p, key, key_len);
    p += key_len;
    if (value_len)
        memcpy(p, value, value_len);
    p += value_len;
    for (size_t i = 0; i < n; i++) {
        uint32_t nl = (uint32_t)strlen(hs[i].name), vl = (uint32_t)hs[i].len;
        memcpy(p, &nl, 4);
        memcpy(p + 4, hs[i].name, nl + 1);
        p += 4 + nl + 1;
        memcpy(p, &vl, 4);
        if (vl)
            memcpy(p + 4, hs[i].value, vl);
        p += 4 + vl;
    }
    return e;
}

void *lk_view_entry_new(const stele_log_record *rec)
{
    hdr_src small[8] = {{0}}, *hs = small;
    if (rec->n_headers > 8 && !(hs = malloc(rec->n_headers * sizeof *hs)))
        return NULL;
    for (size_t i = 0; i < rec->n_headers; i++)
        hs[i] = (hdr_src){rec->headers[i].name, rec->headers[i].value,
                          rec->headers[i].len};
    entry *e = entry_make(rec->key, rec->key_len, rec->value, rec->value_len,
                          hs, rec->n_headers);
    if (hs != small)
        free(hs);
    return e;
}

static entry *entry_from_message(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t n = 0;
    if (!rd_kafka_message_headers(m, &hdrs) && hdrs)
        n = rd_kafka_header_cnt(hdrs);
    hdr_src small[8] = {{0}}, *hs = small;
    if (n > 8 && !(hs = malloc(n * sizeof *hs)))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_header_get_all(hdrs, i, &hs[i].name, &hs[i].value,
                                    &hs[i].len))
            n = i;
    entry *e = entry_make(m->key, m->key_len, m->payload, m->len, hs, n);
    if (hs != small)
        free(hs);
    if (e) {
        e->offset = m->offset;
        e->timestamp = rd_kafka_message_timestamp(m, NULL);
    }
    return e;
}

void lk_view_entry_free(void *e)
{
    free(e);
}

static void view_put(lk_view *v, entry *e)
{
    entry *old = stele_map_get(v->entries, e->data, e->key_len);
    if (old && old->offset >= e->offset) {
        free(e);
        return;
    }
    if (stele_map_put(v->entries, e->data, e->key_len, e, NULL)) {
        free(e);
        v->stale = true; /* out of memory: the next use reads again */
        return;
    }
    free(old);
}

void lk_view_apply(lk_part *part, void *e, int64_t offset, int64_t ts)
{
    entry *en = e;
    if (!part->view) {
        free(en);
        return;
    }
    en->offset = offset;
    en->timestamp = ts;
    view_put(part->view, en);
}

void lk_view_mark_stale(lk_part *part)
{
    if (part->view)
        part->view->stale = true;
}

void lk_view_free(lk_view *v)
{
    if (!v)
        return;
    stele_map_free(v->entries, free);
    free(v);
}

static int apply_message(void *opaque, const rd_kafka_message_t *m,
                         stele_err *err)
{
    if (!m->key) /* a compacted topic refuses keyless records */
        return 0;
    entry *e = entry_from_message(m);
    if (!e)
        return stele_err_set(err, STELE_ENOMEM, "view of %s[%d]",
                             rd_kafka_topic_name(m->rkt), m->partition);
    view_put(opaque, e);
    return 0;
}

/* The compacted topic's partition, checked, with its view synced when it
 * has none yet (or always, when force). */
static int view_ready(lk_log *l, const char *topic, int32_t *partition,
                      const void *key, size_t key_len, bool force,
                      lk_part **out, stele_err *err)
{
    const lk_topic *t;
    bool compacted;
    int rc = lk_topic_get(l, topic, &t, err);
    if (rc)
        return rc;
    if (*partition < 0)
        *partition = stele_partition_for_key(key, key_len, t->partitions);
    if ((rc = lk_check_partition(t, *partition, err)) ||
        (rc = lk_topic_compacted(l, t, &compacted, err)))
        return rc;
    if (!compacted)
        return stele_err_set(err, STELE_EINVAL,
                             "get_latest: topic '%s' is not compacted", topic);
    lk_part *p;
    if ((rc = lk_part_get(l, t, *partition, &p, err)))
        return rc;
    if (!p->view) {
        if (!(p->view = calloc(1, sizeof *p->view)) ||
            !(p->view->entries = stele_map_new())) {
            free(p->view);
            p->view = NULL;
            return stele_err_set(err, STELE_ENOMEM, "view of %s[%d]", topic,
                                 *partition);
        }
        p->view->stale = true;
    }
    lk_view *v = p->view;
    if (force || v->stale) {
        int64_t next;
        rc = lk_fetch(l, t, *partition, v->next, SIZE_MAX, apply_message, v,
                      &next, err);
        if (rc) {
            stele_err_prefix(err, "syncing the view of %s[%d]", topic,
                             *partition);
            return rc;
        }
        v->next = next;
        v->stale = false;
    }
    *out = p;
    return 0;
}

int lk_compacted_sync(stele_log *log, const char *topic, int32_t partition,
                      stele_err *err)
{
    lk_part *p = NULL;
    return view_ready((lk_log *)log, topic, &partition, NULL, 0, true, &p, err);
}

int lk_get_latest(stele_log *log, const char *topic, int32_t partition,
                  const void *key, size_t key_len, stele_log_batch **out,
                  stele_err *err)
{
    lk_part *p = NULL;
    int rc = view_ready((lk_log *)log, topic, &partition, key, key_len, false,
                        &p, err);
    if (rc)
        return rc;
    const entry *e = stele_map_get(p->view->entries, key, key_len);
    if (!e || e->tombstone)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "%s[%d]: no record for the key", topic, partition);
    stele_log_batch *b = stele_log_batch_create();
    stele_log_record *r = b ? stele_log_batch_add(b) : NULL;
    stele_log_header *hs =
        r ? stele_log_batch_alloc(b, e->n_headers * sizeof *hs) : NULL;
    unsigned char *data =
        hs ? stele_log_batch_copy(b, e->data,
                                  e->key_len + e->value_len + e->hdr_len)
           : NULL;
    if (!data || !(r->topic = stele_log_batch_topic(b, p->topic->name))) {
        stele_log_batch_free(b);
        return stele_err_set(err, STELE_ENOMEM, "get_latest %s[%d]", topic,
                             partition);
    }
    r->partition = partition;
    r->offset = e->offset;
    r->timestamp_ms = e->timestamp;
    r->key = data;
    r->key_len = e->key_len;
    r->value = data + e->key_len;
    r->value_len = e->value_len;
    unsigned char *h = data + e->key_len + e->value_len;
    for (size_t i = 0; i < e->n_headers; i++) {
        uint32_t nl, vl;
        memcpy(&nl, h, 4);
        hs[i].name = (const char *)h + 4;
        h += 4 + nl + 1;
        memcpy(&vl, h, 4);
        hs[i].value = vl ? h + 4 : NULL;
        hs[i].len = vl;
        h += 4 + vl;
    }
    r->headers = e->n_headers ? hs : NULL;
    r->n_headers = e->n_headers;
    *out = b;
    return 0;
}

typedef struct expired {
    int64_t before_ms, below_offset;
    entry **found;
    size_t n;
} expired;

static int find_expired(void *opaque, const void *key, size_t len, void *value)
{
    (void)key;
    (void)len;
    expired *x = opaque;
    entry *e = value;
    if (e->timestamp < x->before_ms && e->offset < x->below_offset)
        x->found[x->n++] = e;
    return x->n == STELE_LOG_DELETE_MAX;
}

int lk_delete_before(stele_log *log, const char *topic, int32_t partition,
                     int64_t before_ms, int64_t below_offset, int64_t *deleted,
                     stele_err *err)
{
    lk_log *l = (lk_log *)log;
    const lk_topic *t;
    bool compacted;
    lk_part *p;
    *deleted = 0;
    int rc = lk_topic_get(l, topic, &t, err);
    if (rc || (rc = lk_check_partition(t, partition, err)) ||
        (rc = lk_topic_compacted(l, t, &compacted, err)))
        return rc;
    /* a normal topic's records: the broker's, by its retention.ms */
    if (!compacted)
        return 0;
    if ((rc = lk_part_get(l, t, partition, &p, err)) || !p->view)
        return rc;
    size_t n = stele_map_count(p->view->entries);
    expired x = {before_ms, below_offset, NULL, 0};
    x.found = malloc((n < STELE_LOG_DELETE_MAX ? n : STELE_LOG_DELETE_MAX) *
                         sizeof *x.found +
                     1);
    if (!x.found)
        return stele_err_set(err, STELE_ENOMEM, "view of %s[%d]", topic,
                             partition);
    stele_map_each(p->view->entries, find_expired, &x);
    for (size_t i = 0; i < x.n; i++) {
        stele_map_del(p->view->entries, x.found[i]->data, x.found[i]->key_len);
        free(x.found[i]);
    }
    free(x.found);
    *deleted = (int64_t)x.n;
    return 0;
}

/*
 * checksum.c — the checksum the SQL logs (SQLite, PostgreSQL) store
 * with every record, and a stored row turned into a record with it
 * checked. docs/design.md ("Record checksums") defines it: CRC-32C over
 * key, header blob and value, each as a u32 little-endian length then its
 * bytes, a NULL field as the length 0xFFFFFFFF alone. The lengths keep
 * the fields apart (bytes moved from the key to the value change the
 * CRC), and NULL apart from empty (a tombstone is not an empty value).
 * Both logs refuse fields of 2 GiB or more, so a length never reaches
 * 0xFFFFFFFF.
 */
#include <stdio.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/logline.h"
#include "common/set64.h"
#include "internal.h"

#define NULL_FIELD 0xFFFFFFFFu

static uint32_t crc_field(uint32_t crc, const void *p, size_t len)
{
    uint32_t n = p ? (uint32_t)len : NULL_FIELD;
    unsigned char le[4] = {(unsigned char)n, (unsigned char)(n >> 8),
                           (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
    crc = stele_crc32c(crc, le, sizeof le);
    return p && len ? stele_crc32c(crc, p, len) : crc;
}

uint32_t stele_log_record_crc(const void *key, size_t key_len,
                              const void *headers, size_t headers_len,
                              const void *value, size_t value_len)
{
    uint32_t crc = crc_field(0, key, key_len);
    crc = crc_field(crc, headers, headers_len);
    return crc_field(crc, value, value_len);
}

int stele_log_stored_read(stele_log_batch *b, stele_log_record *rec,
                          const stele_log_stored *s)
{
    if (s->key && !(rec->key = stele_log_batch_copy(b, s->key, s->key_len)))
        return STELE_ENOMEM;
    rec->key_len = s->key ? s->key_len : 0;
    if (s->value &&
        !(rec->value = stele_log_batch_copy(b, s->value, s->value_len)))
        return STELE_ENOMEM;
    rec->value_len = s->value ? s->value_len : 0;
    if (!s->has_crc) {
        rec->unchecked = true;
    } else {
        uint32_t crc =
            stele_log_record_crc(s->key, s->key_len, s->headers, s->headers_len,
                                 s->value, s->value_len);
        if (s->crc != (int64_t)crc) {
            /* Nothing of it is decoded: a flipped bit in a header blob
             * may still parse, into a wrong command id or version. */
            char *why = stele_log_batch_alloc(b, 64);
            if (!why)
                return STELE_ENOMEM;
            snprintf(why, 64,
                     "checksum mismatch (stored 0x%08llx, computed "
                     "0x%08x)",
                     (unsigned long long)s->crc, (unsigned)crc);
            rec->damaged = why;
            return 0;
        }
    }
    if (s->headers) {
        bool oom = false;
        if (!stele_log_headers_decode(b, s->headers, s->headers_len, rec,
                                      &oom)) {
            if (oom)
                return STELE_ENOMEM;
            rec->headers = NULL;
            rec->n_headers = 0;
            rec->damaged = "its headers are corrupt";
        }
    }
    return 0;
}

void stele_log_note_unchecked(stele_set64 **seen, const char *where,
                              int64_t topic_id, const stele_log_record *rec)
{
    uint64_t k = (uint64_t)topic_id << 32 | (uint32_t)rec->partition;
    /* out of memory: better quiet than said at every read */
    if (!*seen && !(*seen = stele_set64_new()))
        return;
    if (stele_set64_has(*seen, k) || stele_set64_add(*seen, k))
        return;
    stele_log_fields f = {.component = "log"};
    stele_logline(2, &f,
                  "%s: %s[%d]: records stored before checksums are read "
                  "unchecked (the first seen at offset %lld)",
                  where, rec->topic, (int)rec->partition,
                  (long long)rec->offset);
}

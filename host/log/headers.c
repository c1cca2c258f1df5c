/* The header blob the SQL backends store records' headers in: a 4-byte
 * count, then per header a 4-byte name length, the name and a NUL, a
 * 4-byte value length and the value; lengths little-endian. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

int stele_log_headers_encode(const char *topic, const stele_log_record *rec,
                             unsigned char **buf, size_t *cap, size_t *len,
                             stele_err *err)
{
    size_t n = 4;
    for (size_t i = 0; i < rec->n_headers; i++) {
        size_t nl = strlen(rec->headers[i].name), vl = rec->headers[i].len;
        if (nl > UINT32_MAX || vl > UINT32_MAX || vl > SIZE_MAX / 2 ||
            n > SIZE_MAX / 2 - nl - vl - 9)
            return stele_err_set(err, STELE_EINVAL,
                                 "%s: header '%.40s' is too large", topic,
                                 rec->headers[i].name);
        n += 9 + nl + vl;
    }
    if (n > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < n)
            c *= 2;
        unsigned char *b = realloc(*buf, c);
        if (!b)
            return stele_err_set(err, STELE_ENOMEM, "%s: %zu bytes of headers",
                                 topic, n);
        *buf = b;
        *cap = c;
    }
    unsigned char *p = *buf;
    put_u32(p, (uint32_t)rec->n_headers);
    p += 4;
    for (size_t i = 0; i < rec->n_headers; i++) {
        const stele_log_header *h = &rec->headers[i];
        size_t nl = strlen(h->name);
        put_u32(p, (uint32_t)nl);
        memcpy(p + 4, h->name, nl + 1);
        p += 4 + nl + 1;
        put_u32(p, (uint32_t)h->len);
        if (h->len)
            memcpy(p + 4, h->value, h->len);
        p += 4 + h->len;
    }
    *len = n;
    return 0;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Decodes a header blob into batch memory; false when malformed. */
bool stele_log_headers_decode(stele_log_batch *b, const void *blob, size_t n,
                              stele_log_record *rec, bool *oom)
{
    if (n < 4)
        return false;
    unsigned char *p = stele_log_batch_copy(b, blob, n);
    if (!p)
        return *oom = true, false;
    uint32_t count = get_u32(p);
    if (count > (n - 4) / 9) /* each header takes at least 9 bytes */
        return false;
    stele_log_header *hs = stele_log_batch_alloc(b, (size_t)count * sizeof *hs);
    if (!hs)
        return *oom = true, false;
    size_t at = 4;
    for (uint32_t i = 0; i < count; i++) {
        if (n - at < 4)
            return false;
        size_t nl = get_u32(p + at);
        at += 4;
        /* A NUL inside the name would read as a shorter name: encode
         * never writes one, so the blob is corrupt. */
        if (n - at < nl + 1 || p[at + nl] != '\0' || memchr(p + at, 0, nl))
            return false;
        hs[i].name = (const char *)p + at;
        at += nl + 1;
        if (n - at < 4)
            return false;
        size_t vl = get_u32(p + at);
        at += 4;
        if (n - at < vl)
            return false;
        hs[i].value = p + at;
        hs[i].len = vl;
        at += vl;
    }
    if (at != n)
        return false;
    rec->headers = hs;
    rec->n_headers = count;
    return true;
}

/*
 * fuzz_headers.c — the header blob of the SQL logs (host/log/headers.c).
 * Invariants: whatever decodes re-encodes to the very same bytes (the blob
 * has one spelling per list of headers), and that encoding decodes to the
 * same headers again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "log/internal.h"

static void same_headers(const stele_log_record *a, const stele_log_record *b)
{
    if (a->n_headers != b->n_headers)
        abort();
    for (size_t i = 0; i < a->n_headers; i++) {
        const stele_log_header *x = &a->headers[i], *y = &b->headers[i];
        if (strcmp(x->name, y->name) || x->len != y->len ||
            (x->len && memcmp(x->value, y->value, x->len)))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stele_log_batch *b = stele_log_batch_create();
    if (!b)
        return 0;
    stele_log_record rec = {0}, again = {0};
    bool oom = false;
    if (stele_log_headers_decode(b, data, size, &rec, &oom)) {
        unsigned char *buf = NULL;
        size_t cap = 0, len = 0;
        stele_err err = {0};
        if (stele_log_headers_encode("fuzz", &rec, &buf, &cap, &len, &err)) {
            fprintf(stderr, "encode refused what decoded: %s\n", err.msg);
            abort();
        }
        if (len != size || memcmp(buf, data, size)) {
            fprintf(stderr, "re-encoding differs: %zu bytes, was %zu\n", len,
                    size);
            abort();
        }
        if (!stele_log_headers_decode(b, buf, len, &again, &oom))
            abort();
        same_headers(&rec, &again);
        free(buf);
    }
    stele_log_batch_free(b);
    return 0;
}

/* sqlbuf.h — SQL text built in a fixed buffer (table.c,
 * list.c). */
#ifndef STELE_STORE_SQLBUF_H
#define STELE_STORE_SQLBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct stele_sqlbuf {
    char s[4096];
    size_t n;
    bool overflow; /* something did not fit: the text is unusable */
} stele_sqlbuf;

/* Appends printf-style, setting overflow instead of writing past the end. */
__attribute__((format(printf, 2, 3))) void
stele_sqlbuf_add(stele_sqlbuf *b, const char *fmt, ...);

#endif

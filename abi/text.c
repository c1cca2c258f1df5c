/*
 * text.c — growing buffers, files and the fingerprint's hash, for abi_dump.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void abi_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("abi_dump: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void abi_buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = realloc(b->s, cap);
        if (!b->s)
            abi_die("out of memory");
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void abi_buf_puts(buf *b, const char *s)
{
    abi_buf_add(b, s, strlen(s));
}

void abi_buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        abi_die("line too long");
    abi_buf_add(b, tmp, (size_t)n);
}

void abi_buf_indent(buf *b, int depth)
{
    for (int i = 0; i < depth; i++)
        abi_buf_puts(b, "  ");
}

char *abi_str_cat(const char *a, const char *b)
{
    buf out = {0};
    abi_buf_puts(&out, a ? a : "");
    abi_buf_puts(&out, b ? b : "");
    return out.s ? out.s : calloc(1, 1);
}

char *abi_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abi_die("%s: cannot open", path);
    buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        abi_buf_add(&b, chunk, n);
    fclose(f);
    return b.s ? b.s : calloc(1, 1);
}

void abi_write_if_changed(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        char *old = abi_read_file(path);
        bool same = strcmp(old, text) == 0;
        free(old);
        if (same)
            return;
    }
    f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        abi_die("%s: cannot write", path);
}

uint64_t abi_fnv1a64(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

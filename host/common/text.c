#include "text.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void stele_text_tidy(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    bool space = false;
    for (; in && *in && k + 1 < cap; in++) {
        if (*in == '\n' || *in == '\t' || *in == '\r' || *in == ' ') {
            space = k > 0;
            continue;
        }
        if (space && k + 2 < cap)
            out[k++] = ' ';
        space = false;
        out[k++] = *in;
    }
    out[k] = '\0';
}

void stele_text_scrub(char *msg, const char *secret)
{
    if (!msg || !secret || strlen(secret) < 4)
        return;
    size_t sl = strlen(secret);
    char *at;
    while ((at = strstr(msg, secret)) != NULL) {
        memcpy(at, "***", 3);
        memmove(at + 3, at + sl, strlen(at + sl) + 1);
    }
}

void stele_text_redact_quoted(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    bool inside = false;
    for (; *in && k + 6 < cap; in++) {
        if (*in == '"') {
            if (!inside)
                memcpy(out + k, "\"...\"", 5), k += 5;
            inside = !inside;
        } else if (!inside) {
            out[k++] = *in;
        }
    }
    out[k] = '\0';
    stele_text_tidy(out, out, cap);
}

size_t stele_text_utf8_seq(const unsigned char *s, size_t len)
{
    if (len == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0)
        n = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        n = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int stele_text_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    while (len > 0) {
        size_t n = stele_text_utf8_seq(p, len);
        if (n == 0)
            return 0;
        p += n;
        len -= n;
    }
    return 1;
}

void stele_text_utf8_fix(char *s)
{
    size_t left = strlen(s);
    while (left > 0) {
        size_t n = stele_text_utf8_seq((const unsigned char *)s, left);
        if (n == 0) {
            *s = '?';
            n = 1;
        }
        s += n;
        left -= n;
    }
}

char *stele_text_utf8_repair(const char *s)
{
    size_t left = strlen(s), bad = 0;
    for (const char *p = s; *p;) {
        size_t n = stele_text_utf8_seq((const unsigned char *)p,
                                       left - (size_t)(p - s));
        bad += n == 0;
        p += n ? n : 1;
    }
    char *out = malloc(left + 2 * bad + 1), *o = out;
    if (!out)
        return NULL;
    while (left > 0) {
        size_t n = stele_text_utf8_seq((const unsigned char *)s, left);
        if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
            n = 1;
        } else {
            memcpy(o, s, n);
            o += n;
        }
        s += n;
        left -= n;
    }
    *o = '\0';
    return out;
}

#include "text.h"

#include <stdbool.h>
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

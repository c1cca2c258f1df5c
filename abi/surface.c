/*
 * surface.c — what the preprocessor kept of the public headers: the lines
 * that come from them, their constants, and their declarations' dump.
 */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct surface {
    toks code;
    buf constants;
    int abi_major, abi_minor;
} surface;

/* A `#define NAME VALUE` the headers made: constants whose value is a
 * literal or an expression of literals are part of the ABI (status codes,
 * flags, the magic); macros that expand to code are not, and the ABI
 * version itself is the dump's title, not its content. */
static void surface_macro(surface *sf, const char *def, int line,
                          const char *file)
{
    toks ts = {0};
    abi_tokenize(&ts, def, line, file);
    /* ts: # define NAME [(] ... */
    if (ts.n < 3 || strcmp(ts.t[1].text, "define") != 0 ||
        strncmp(ts.t[2].text, "STELE_", 6) != 0)
        goto done;
    const char *name = ts.t[2].text;
    const char *after = strstr(def, name) + strlen(name);
    if (*after == '(') /* function-like */
        goto done;
    if (ts.n == 4 && ts.t[3].kind == T_NUMBER &&
        strcmp(name, "STELE_ABI_MAJOR") == 0) {
        sf->abi_major = atoi(ts.t[3].text);
        goto done;
    }
    if (ts.n == 4 && ts.t[3].kind == T_NUMBER &&
        strcmp(name, "STELE_ABI_MINOR") == 0) {
        sf->abi_minor = atoi(ts.t[3].text);
        goto done;
    }
    if (ts.n == 3)
        goto done; /* include guards */
    for (size_t i = 3; i < ts.n; i++)
        if (ts.t[i].kind == T_IDENT || (ts.t[i].kind == T_STRING && ts.n != 4))
            goto done;
    char *value = abi_join(ts.t + 3, ts.n - 3);
    abi_buf_printf(&sf->constants, "define %s %s\n", name, value);
    free(value);
done:
    abi_toks_free(&ts);
}

/* Reads `cc -E -dD` output and keeps the lines that come from files in
 * header_dir (linemarkers say which file each line is from). */
static void surface_read(surface *sf, const char *path, const char *header_dir)
{
    char *text = abi_read_file(path);
    size_t dir_len = strlen(header_dir);
    bool ours = false;
    int line = 0;
    const char *file = "(unknown)";
    for (char *s = text; *s;) {
        char *end = strchr(s, '\n');
        if (end)
            *end = '\0';
        if (s[0] == '#' && s[1] == ' ' && isdigit((unsigned char)s[2])) {
            /* # LINE "FILE" FLAGS */
            line = atoi(s + 2) - 1;
            char *q = strchr(s, '"'), *q2 = q ? strrchr(q + 1, '"') : NULL;
            if (q && q2) {
                size_t n = (size_t)(q2 - q - 1);
                ours = n > dir_len + 1 &&
                       strncmp(q + 1, header_dir, dir_len) == 0 &&
                       q[1 + dir_len] == '/' &&
                       !memchr(q + 2 + dir_len, '/', n - dir_len - 1);
                char name[4096];
                if (n >= sizeof name)
                    abi_die("%s: file name too long", path);
                memcpy(name, q + 1, n);
                name[n] = '\0';
                file = abi_file_intern(name);
            }
        } else {
            line++;
            if (ours && s[0] == '#') {
                if (strncmp(s, "#define ", 8) == 0)
                    surface_macro(sf, s, line, file);
            } else if (ours) {
                abi_tokenize(&sf->code, s, line, file);
            }
        }
        if (!end)
            break;
        s = end + 1;
    }
    free(text);
    abi_toks_push(&sf->code, T_END, "", 0, line, "(end)");
}

/* Attributes and extensions say nothing of layout or meaning: drop them
 * before parsing. */
static void drop_attributes(toks *ts)
{
    size_t w = 0;
    for (size_t r = 0; r < ts->n;) {
        const char *s = ts->t[r].text;
        size_t skip = 0;
        if (!strcmp(s, "__attribute__") || !strcmp(s, "__attribute") ||
            !strcmp(s, "__asm__") || !strcmp(s, "__asm")) {
            int depth = 0;
            skip = 1;
            do {
                const tok *t = &ts->t[r + skip];
                if (t->kind == T_END)
                    abi_die("%s:%d: unbalanced attribute", t->file, t->line);
                depth += !strcmp(t->text, "(") - !strcmp(t->text, ")");
                skip++;
            } while (depth > 0);
        } else if (!strcmp(s, "__extension__") || !strcmp(s, "__restrict") ||
                   !strcmp(s, "__restrict__") || !strcmp(s, "__inline") ||
                   !strcmp(s, "__inline__")) {
            skip = 1;
        }
        if (!skip) {
            ts->t[w++] = ts->t[r++];
            continue;
        }
        for (size_t k = 0; k < skip; k++)
            free(ts->t[r + k].text);
        r += skip;
    }
    ts->n = w;
}

char *abi_surface_dump(const char *path, const char *header_dir, int *major,
                       int *minor)
{
    surface sf = {.abi_major = -1, .abi_minor = -1};
    surface_read(&sf, path, header_dir);
    if (sf.abi_major < 0 || sf.abi_minor < 0)
        abi_die("%s: no STELE_ABI_MAJOR/STELE_ABI_MINOR in %s", path,
                header_dir);
    drop_attributes(&sf.code);
    buf body = {0};
    abi_buf_puts(&body, sf.constants.s ? sf.constants.s : "");
    abi_declarations(sf.code.t, &body);
    free(sf.constants.s);
    abi_toks_free(&sf.code);
    *major = sf.abi_major;
    *minor = sf.abi_minor;
    return body.s;
}

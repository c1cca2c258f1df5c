/*
 * tokens.c — splitting preprocessed header text into C tokens.
 */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The header names tokens point to, freed at exit. */
static char **files;
static size_t n_files;

const char *abi_file_intern(const char *name)
{
    for (size_t i = 0; i < n_files; i++)
        if (strcmp(files[i], name) == 0)
            return files[i];
    char **grown = realloc(files, (n_files + 1) * sizeof *files);
    if (!grown || !(grown[n_files] = strdup(name)))
        abi_die("out of memory");
    files = grown;
    return files[n_files++];
}

void abi_files_free(void)
{
    for (size_t i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    files = NULL;
    n_files = 0;
}

void abi_toks_free(toks *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        free(ts->t[i].text);
    free(ts->t);
    *ts = (toks){0};
}

void abi_toks_push(toks *ts, enum tok_kind kind, const char *s, size_t n,
                   int line, const char *file)
{
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 1024;
        ts->t = realloc(ts->t, ts->cap * sizeof *ts->t);
        if (!ts->t)
            abi_die("out of memory");
    }
    char *text = malloc(n + 1);
    if (!text)
        abi_die("out of memory");
    memcpy(text, s, n);
    text[n] = '\0';
    ts->t[ts->n++] = (tok){kind, text, line, file};
}

static bool is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

void abi_tokenize(toks *ts, const char *s, int line, const char *file)
{
    static const char *const puncts[] = {"...", "->", "<<", ">>", "&&", "||",
                                         "==",  "!=", "<=", ">=", "##"};
    while (*s) {
        if (isspace((unsigned char)*s)) {
            s++;
            continue;
        }
        const char *start = s;
        if (isalpha((unsigned char)*s) || *s == '_') {
            while (is_ident_char(*s))
                s++;
            abi_toks_push(ts, T_IDENT, start, (size_t)(s - start), line, file);
        } else if (isdigit((unsigned char)*s) ||
                   (*s == '.' && isdigit((unsigned char)s[1]))) {
            while (is_ident_char(*s) || *s == '.' ||
                   ((*s == '+' || *s == '-') && (s[-1] == 'e' || s[-1] == 'E' ||
                                                 s[-1] == 'p' || s[-1] == 'P')))
                s++;
            abi_toks_push(ts, T_NUMBER, start, (size_t)(s - start), line, file);
        } else if (*s == '"' || *s == '\'') {
            char q = *s++;
            while (*s && *s != q)
                s += (*s == '\\' && s[1]) ? 2 : 1;
            if (*s != q)
                abi_die("%s:%d: unterminated literal", file, line);
            s++;
            abi_toks_push(ts, T_STRING, start, (size_t)(s - start), line, file);
        } else {
            size_t n = 1;
            for (size_t i = 0; i < sizeof puncts / sizeof *puncts; i++)
                if (strncmp(s, puncts[i], strlen(puncts[i])) == 0) {
                    n = strlen(puncts[i]);
                    break;
                }
            s += n;
            abi_toks_push(ts, T_PUNCT, start, n, line, file);
        }
    }
}

char *abi_join(const tok *t, size_t n)
{
    buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && t[i - 1].kind != T_PUNCT && t[i].kind != T_PUNCT)
            abi_buf_puts(&b, " ");
        abi_buf_puts(&b, t[i].text);
    }
    return b.s ? b.s : calloc(1, 1);
}

/*
 * internal.h — the parts of abi_dump: text buffers and files (text.c),
 * tokens (tokens.c), the headers' surface as the preprocessor left it
 * (surface.c) and the parser of its declarations (declarations.c).
 */
#ifndef STELE_ABI_INTERNAL_H
#define STELE_ABI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- text.c ---- */

/* A growing NUL-terminated string; s is NULL until something is added. */
typedef struct buf {
    char *s;
    size_t len, cap;
} buf;

/* Prints "abi_dump: <message>" and exits 1: a build tool stops at the
 * first thing it cannot do, and the build with it. */
void abi_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

void abi_buf_add(buf *b, const char *s, size_t n);
void abi_buf_puts(buf *b, const char *s);
void abi_buf_printf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Two spaces per level. */
void abi_buf_indent(buf *b, int depth);

/* A new string "a" "b" (either may be NULL); frees neither. */
char *abi_str_cat(const char *a, const char *b);
/* The whole file, NUL-terminated; the caller frees it. */
char *abi_read_file(const char *path);
/* Writes text to path unless it already holds exactly that, so the build
 * does not recompile what includes an unchanged header. */
void abi_write_if_changed(const char *path, const char *text);
/* 64-bit FNV-1a of s: the fingerprint of a dump's declarations. */
uint64_t abi_fnv1a64(const char *s);

/* ---- tokens.c ---- */

enum tok_kind { T_IDENT, T_NUMBER, T_STRING, T_PUNCT, T_END };

typedef struct tok {
    enum tok_kind kind;
    char *text; /* owned */
    int line;   /* in the header it came from */
    const char *file;
} tok;

typedef struct toks {
    tok *t;
    size_t n, cap;
} toks;

/* The one copy of a header's name that tokens point to. */
const char *abi_file_intern(const char *name);
/* Frees the interned names, at exit. */
void abi_files_free(void);
void abi_toks_push(toks *ts, enum tok_kind kind, const char *s, size_t n,
                   int line, const char *file);
void abi_toks_free(toks *ts);
/* Appends the tokens of one line of preprocessed text. */
void abi_tokenize(toks *ts, const char *s, int line, const char *file);
/* Tokens joined as an expression's canonical text: a space only between
 * two words, so `( - 1 )` and `(-1)` read the same. Caller frees. */
char *abi_join(const tok *t, size_t n);

/* ---- declarations.c ---- */

/* Appends the canonical dump of the declarations in t (ending with a
 * T_END token) to out; stops the program, naming the line, at anything
 * it does not know. */
void abi_declarations(tok *t, buf *out);

/* ---- surface.c ---- */

/* The dump of the constants and declarations of the headers in
 * header_dir, read from `cc -E -dD` output at path (caller frees), and the
 * ABI version they declare. */
char *abi_surface_dump(const char *path, const char *header_dir, int *major,
                       int *minor);

#endif

/*
 * abi_dump.c — the plugin surface of stele's public headers as a canonical
 * text, and its fingerprint.
 *
 *   abi_dump dump SURFACE.i HEADER_DIR OUT.txt OUT.h
 *       reads the output of `cc -E -dD` of a file including every public
 *       header, keeps what comes from HEADER_DIR, and writes the dump of its
 *       declarations and constants (OUT.txt) and stele/abi_fingerprint.h
 *       (OUT.h), which defines STELE_ABI_FINGERPRINT.
 *   abi_dump known OUT.h CURRENT.txt [RELEASED.txt...]
 *       writes the table of the fingerprints the host accepts, one per ABI
 *       minor of its major since fingerprints exist: the current one from
 *       this build's dump, older ones from the released dumps kept in abi/,
 *       each checked against its own declarations; and fails when the
 *       current minor does more than append to an older one.
 *
 * The dump is made of declarations, not of sizes: every struct, union and
 * enum with its members (name and type, in order), every typedef and
 * function-pointer type, and the constants (STELE_* macros with a literal
 * value). Types are canonicalised (qualifiers in one order, `unsigned` as
 * `unsigned int`, declarators spelled out as "pointer to function(...)
 * returning int"), parameter names, attributes, comments and whitespace are
 * left out: none of them changes what a plugin and the host agree on. The
 * fingerprint is the 64-bit FNV-1a hash of the dump's declarations.
 *
 * The parser knows the C our headers are written in (declarations, no
 * code); anything else stops it with the line it could not read, so a new
 * construct in a header fails the build instead of being left out of the
 * fingerprint.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first minor of ABI 1 whose descriptors carry a fingerprint: 1.0 and
 * 1.1 predate it; every minor of a later major has one. */
#define FIRST_FINGERPRINTED_MINOR_1 2
#define MAX_MINORS 256

/* ------------------------------------------------------------------ */
/* Text buffers                                                         */

typedef struct buf {
    char *s;
    size_t len, cap;
} buf;

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("abi_dump: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = realloc(b->s, cap);
        if (!b->s)
            die("out of memory");
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_puts(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_printf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        die("line too long");
    buf_add(b, tmp, (size_t)n);
}

static void buf_indent(buf *b, int depth)
{
    for (int i = 0; i < depth; i++)
        buf_puts(b, "  ");
}

/* A new string "a" "b" (either may be NULL); frees neither. */
static char *str_cat(const char *a, const char *b)
{
    buf out = {0};
    buf_puts(&out, a ? a : "");
    buf_puts(&out, b ? b : "");
    return out.s ? out.s : calloc(1, 1);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: cannot open", path);
    buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    return b.s ? b.s : calloc(1, 1);
}

/* Writes text to path unless it already holds exactly that, so the build
 * does not recompile what includes an unchanged header. */
static void write_if_changed(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        char *old = read_file(path);
        bool same = strcmp(old, text) == 0;
        free(old);
        if (same)
            return;
    }
    f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("%s: cannot write", path);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* Tokens                                                               */

enum tok_kind { T_IDENT, T_NUMBER, T_STRING, T_PUNCT, T_END };

typedef struct tok {
    enum tok_kind kind;
    char *text;
    int line; /* in the header it came from */
    const char *file;
} tok;

typedef struct toks {
    tok *t;
    size_t n, cap;
} toks;

/* The header names tokens point to, freed at exit. */
static char **files;
static size_t n_files;

static const char *file_intern(const char *name)
{
    for (size_t i = 0; i < n_files; i++)
        if (strcmp(files[i], name) == 0)
            return files[i];
    char **grown = realloc(files, (n_files + 1) * sizeof *files);
    if (!grown || !(grown[n_files] = strdup(name)))
        die("out of memory");
    files = grown;
    return files[n_files++];
}

static void toks_free(toks *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        free(ts->t[i].text);
    free(ts->t);
    *ts = (toks){0};
}

static void toks_push(toks *ts, enum tok_kind kind, const char *s, size_t n,
                      int line, const char *file)
{
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 1024;
        ts->t = realloc(ts->t, ts->cap * sizeof *ts->t);
        if (!ts->t)
            die("out of memory");
    }
    char *text = malloc(n + 1);
    if (!text)
        die("out of memory");
    memcpy(text, s, n);
    text[n] = '\0';
    ts->t[ts->n++] = (tok){kind, text, line, file};
}

static bool is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Tokenises one line of preprocessed text. */
static void tokenize(toks *ts, const char *s, int line, const char *file)
{
    static const char *const puncts[] = {"...", "->", "<<", ">>", "&&", "||",
                                         "==", "!=", "<=", ">=", "##"};
    while (*s) {
        if (isspace((unsigned char)*s)) {
            s++;
            continue;
        }
        const char *start = s;
        if (isalpha((unsigned char)*s) || *s == '_') {
            while (is_ident_char(*s))
                s++;
            toks_push(ts, T_IDENT, start, (size_t)(s - start), line, file);
        } else if (isdigit((unsigned char)*s) ||
                   (*s == '.' && isdigit((unsigned char)s[1]))) {
            while (is_ident_char(*s) || *s == '.' ||
                   ((*s == '+' || *s == '-') &&
                    (s[-1] == 'e' || s[-1] == 'E' || s[-1] == 'p' ||
                     s[-1] == 'P')))
                s++;
            toks_push(ts, T_NUMBER, start, (size_t)(s - start), line, file);
        } else if (*s == '"' || *s == '\'') {
            char q = *s++;
            while (*s && *s != q)
                s += (*s == '\\' && s[1]) ? 2 : 1;
            if (*s != q)
                die("%s:%d: unterminated literal", file, line);
            s++;
            toks_push(ts, T_STRING, start, (size_t)(s - start), line, file);
        } else {
            size_t n = 1;
            for (size_t i = 0; i < sizeof puncts / sizeof *puncts; i++)
                if (strncmp(s, puncts[i], strlen(puncts[i])) == 0) {
                    n = strlen(puncts[i]);
                    break;
                }
            s += n;
            toks_push(ts, T_PUNCT, start, n, line, file);
        }
    }
}

/* Tokens joined as an expression's canonical text: a space only between
 * two words, so `( - 1 )` and `(-1)` read the same. */
static char *join(const tok *t, size_t n)
{
    buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && t[i - 1].kind != T_PUNCT && t[i].kind != T_PUNCT)
            buf_puts(&b, " ");
        buf_puts(&b, t[i].text);
    }
    return b.s ? b.s : calloc(1, 1);
}

/* ------------------------------------------------------------------ */
/* The surface: what the preprocessor kept of the public headers       */

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
    tokenize(&ts, def, line, file);
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
        if (ts.t[i].kind == T_IDENT ||
            (ts.t[i].kind == T_STRING && ts.n != 4))
            goto done;
    char *value = join(ts.t + 3, ts.n - 3);
    buf_printf(&sf->constants, "define %s %s\n", name, value);
    free(value);
done:
    toks_free(&ts);
}

/* Reads `cc -E -dD` output and keeps the lines that come from files in
 * header_dir (linemarkers say which file each line is from). */
static void surface_read(surface *sf, const char *path, const char *header_dir)
{
    char *text = read_file(path);
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
                    die("%s: file name too long", path);
                memcpy(name, q + 1, n);
                name[n] = '\0';
                file = file_intern(name);
            }
        } else {
            line++;
            if (ours && s[0] == '#') {
                if (strncmp(s, "#define ", 8) == 0)
                    surface_macro(sf, s, line, file);
            } else if (ours) {
                tokenize(&sf->code, s, line, file);
            }
        }
        if (!end)
            break;
        s = end + 1;
    }
    free(text);
    toks_push(&sf->code, T_END, "", 0, line, "(end)");
}

/* ------------------------------------------------------------------ */
/* Declarations                                                         */

typedef struct parser {
    tok *t;
    size_t i;
    buf out; /* the declarations' dump */
} parser;

static const tok *peek(const parser *p, size_t ahead)
{
    size_t i = p->i;
    for (size_t k = 0; k < ahead && p->t[i].kind != T_END; k++)
        i++;
    return &p->t[i];
}

static bool is(const parser *p, const char *text)
{
    return p->t[p->i].kind != T_END && strcmp(p->t[p->i].text, text) == 0;
}

static bool accept(parser *p, const char *text)
{
    if (!is(p, text))
        return false;
    p->i++;
    return true;
}

static void fail(const parser *p, const char *what)
    __attribute__((noreturn));

static void fail(const parser *p, const char *what)
{
    const tok *t = &p->t[p->i];
    die("%s:%d: %s at '%s' (the ABI dump reads declarations only: "
        "extend abi/abi_dump.c for this construct)",
        t->file, t->line, what, t->text);
}

static void expect(parser *p, const char *text)
{
    if (!accept(p, text)) {
        char what[64];
        snprintf(what, sizeof what, "expected '%s'", text);
        fail(p, what);
    }
}

/* Skips from an opening bracket to just past its match. */
static void skip_balanced(parser *p)
{
    int depth = 0;
    do {
        if (p->t[p->i].kind == T_END)
            fail(p, "unbalanced brackets");
        const char *s = p->t[p->i].text;
        if (p->t[p->i].kind == T_PUNCT && strchr("([{", s[0]))
            depth++;
        else if (p->t[p->i].kind == T_PUNCT && strchr(")]}", s[0]))
            depth--;
        p->i++;
    } while (depth > 0);
}

static const char *const keywords[] = {
    "typedef", "extern",  "static",   "inline",   "const",  "volatile",
    "signed",  "unsigned", "short",   "long",     "int",    "char",
    "void",    "_Bool",   "float",    "double",   "struct", "union",
    "enum",    "restrict", "_Complex", "_Atomic", "register"};

static bool is_keyword(const char *s)
{
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (strcmp(s, keywords[i]) == 0)
            return true;
    return false;
}

typedef struct specs {
    char *type; /* canonical base type, qualifiers first */
    bool is_typedef, is_extern, is_static;
} specs;

static specs specifiers(parser *p, int depth, bool top);
static char *declarator(parser *p, const char *base, char **name);

/* struct/union bodies: one line per member, "name: type". */
static void record_body(parser *p, buf *out, int depth)
{
    expect(p, "{");
    while (!accept(p, "}")) {
        specs s = specifiers(p, depth, false);
        if (accept(p, ";")) { /* an anonymous struct or union member */
            buf_indent(out, depth);
            buf_printf(out, "(anonymous): %s\n", s.type);
            free(s.type);
            continue;
        }
        do {
            char *name = NULL;
            char *type = declarator(p, s.type, &name);
            if (!name)
                fail(p, "member without a name");
            buf_indent(out, depth);
            buf_printf(out, "%s: %s", name, type);
            if (accept(p, ":")) { /* a bit-field */
                size_t start = p->i;
                while (!is(p, ",") && !is(p, ";"))
                    p->i++;
                char *width = join(p->t + start, p->i - start);
                buf_printf(out, " : %s", width);
                free(width);
            }
            buf_puts(out, "\n");
            free(name);
            free(type);
        } while (accept(p, ","));
        expect(p, ";");
        free(s.type);
    }
}

static void enum_body(parser *p, buf *out, int depth)
{
    expect(p, "{");
    while (!accept(p, "}")) {
        if (peek(p, 0)->kind != T_IDENT)
            fail(p, "expected an enumerator");
        buf_indent(out, depth);
        buf_puts(out, peek(p, 0)->text);
        p->i++;
        if (accept(p, "=")) {
            size_t start = p->i;
            int nest = 0;
            while (nest > 0 || (!is(p, ",") && !is(p, "}"))) {
                if (peek(p, 0)->kind == T_END)
                    fail(p, "unterminated enum");
                nest += is(p, "(") - is(p, ")");
                p->i++;
            }
            char *value = join(p->t + start, p->i - start);
            buf_printf(out, " = %s", value);
            free(value);
        }
        buf_puts(out, "\n");
        if (!accept(p, ",") && !is(p, "}"))
            fail(p, "expected ',' or '}'");
    }
}

/* struct/union/enum [tag] [{ body }]. A tagged definition at file scope is
 * dumped as an item of its own and named by its tag where it is used;
 * anonymous and nested ones are dumped inline. */
static char *record_spec(parser *p, int depth, bool top)
{
    const char *kw = peek(p, 0)->text;
    p->i++;
    const char *tag = NULL;
    if (peek(p, 0)->kind == T_IDENT && !is_keyword(peek(p, 0)->text))
        tag = peek(p, 0)->text, p->i++;
    buf b = {0};
    if (!is(p, "{")) {
        if (!tag)
            fail(p, "expected a tag or a body");
        buf_printf(&b, "%s %s", kw, tag);
        return b.s;
    }
    bool apart = top && tag;
    buf body = {0};
    int inner = apart ? 1 : depth + 1;
    if (strcmp(kw, "enum") == 0)
        enum_body(p, &body, inner);
    else
        record_body(p, &body, inner);
    if (apart) {
        buf_printf(&p->out, "%s %s {\n%s}\n", kw, tag, body.s ? body.s : "");
        buf_printf(&b, "%s %s", kw, tag);
    } else {
        buf_printf(&b, "%s%s%s {\n%s", kw, tag ? " " : "", tag ? tag : "",
                   body.s ? body.s : "");
        buf_indent(&b, depth);
        buf_puts(&b, "}");
    }
    free(body.s);
    return b.s;
}

static specs specifiers(parser *p, int depth, bool top)
{
    specs s = {0};
    bool is_const = false, is_volatile = false, is_signed = false,
         is_unsigned = false;
    int shorts = 0, longs = 0;
    const char *base = NULL; /* int char void _Bool float double */
    char *named = NULL;      /* a typedef name or a record */
    for (;;) {
        const tok *t = peek(p, 0);
        const char *w = t->text;
        if (t->kind != T_IDENT)
            break;
        if (strcmp(w, "typedef") == 0)
            s.is_typedef = true;
        else if (strcmp(w, "extern") == 0)
            s.is_extern = true;
        else if (strcmp(w, "static") == 0)
            s.is_static = true;
        else if (!strcmp(w, "inline") || !strcmp(w, "register") ||
                 !strcmp(w, "restrict"))
            ;
        else if (strcmp(w, "const") == 0)
            is_const = true;
        else if (strcmp(w, "volatile") == 0)
            is_volatile = true;
        else if (strcmp(w, "signed") == 0)
            is_signed = true;
        else if (strcmp(w, "unsigned") == 0)
            is_unsigned = true;
        else if (strcmp(w, "short") == 0)
            shorts++;
        else if (strcmp(w, "long") == 0)
            longs++;
        else if (!strcmp(w, "int") || !strcmp(w, "char") ||
                 !strcmp(w, "void") || !strcmp(w, "_Bool") ||
                 !strcmp(w, "float") || !strcmp(w, "double")) {
            if (base && strcmp(base, "int") != 0 && strcmp(w, "int") != 0)
                fail(p, "two base types");
            if (!base || strcmp(base, "int") == 0)
                base = w;
        } else if (!strcmp(w, "struct") || !strcmp(w, "union") ||
                   !strcmp(w, "enum")) {
            if (named)
                fail(p, "two types");
            named = record_spec(p, depth, top);
            continue;
        } else if (!is_keyword(w) && !named && !base && !shorts && !longs &&
                   !is_signed && !is_unsigned) {
            named = strdup(w);
        } else {
            break;
        }
        p->i++;
    }
    buf b = {0};
    if (is_const)
        buf_puts(&b, "const ");
    if (is_volatile)
        buf_puts(&b, "volatile ");
    if (named) {
        buf_puts(&b, named);
        free(named);
    } else if (base && strcmp(base, "char") == 0) {
        buf_puts(&b, is_unsigned ? "unsigned char"
                     : is_signed ? "signed char"
                                 : "char");
    } else if (base && strcmp(base, "int") != 0) {
        if (longs && strcmp(base, "double") == 0)
            buf_puts(&b, "long ");
        buf_puts(&b, base);
    } else if (base || shorts || longs || is_signed || is_unsigned) {
        if (is_unsigned)
            buf_puts(&b, "unsigned ");
        buf_puts(&b, shorts ? "short int"
                     : longs >= 2 ? "long long int"
                     : longs      ? "long int"
                                  : "int");
    } else {
        fail(p, "expected a type");
    }
    s.type = b.s;
    return s;
}

/* "function(T1, T2, ...) returning " for a parameter list. */
static char *params(parser *p)
{
    expect(p, "(");
    buf b = {0};
    buf_puts(&b, "function(");
    if (is(p, "void") && strcmp(peek(p, 1)->text, ")") == 0) {
        p->i++;
        buf_puts(&b, "void");
    }
    bool first = true;
    while (!accept(p, ")")) {
        if (!first) {
            expect(p, ",");
            buf_puts(&b, ", ");
        }
        first = false;
        if (accept(p, "...")) {
            buf_puts(&b, "...");
            continue;
        }
        specs s = specifiers(p, 0, false);
        char *name = NULL; /* a parameter's name is no part of its type */
        char *type = declarator(p, s.type, &name);
        buf_puts(&b, type);
        free(name);
        free(type);
        free(s.type);
    }
    buf_puts(&b, ") returning ");
    return b.s;
}

/* Reads a declarator (named or abstract) around base and returns its full
 * type, spelled from the outside in: "pointer to function(...) returning
 * int". *name gets the declared name, or stays NULL. */
static char *declarator(parser *p, const char *base, char **name)
{
    char *type = strdup(base);
    while (accept(p, "*")) {
        buf quals = {0};
        for (;;) {
            if (accept(p, "const"))
                buf_puts(&quals, "const ");
            else if (accept(p, "volatile"))
                buf_puts(&quals, "volatile ");
            else if (!accept(p, "restrict"))
                break;
        }
        char *t = str_cat(quals.s, "pointer to ");
        char *next = str_cat(t, type);
        free(t);
        free(quals.s);
        free(type);
        type = next;
    }
    size_t nested = 0;
    if (is(p, "(") && (!strcmp(peek(p, 1)->text, "*") ||
                       !strcmp(peek(p, 1)->text, "(") ||
                       !strcmp(peek(p, 1)->text, "["))) {
        nested = p->i + 1;
        skip_balanced(p);
    } else if (peek(p, 0)->kind == T_IDENT && !is_keyword(peek(p, 0)->text)) {
        *name = strdup(peek(p, 0)->text);
        p->i++;
    }
    /* Suffixes bind tighter than the pointers before them: the first
     * suffix is the outermost derivation. */
    char *suffixes[16];
    size_t n = 0;
    while (is(p, "[") || is(p, "(")) {
        if (n == sizeof suffixes / sizeof *suffixes)
            fail(p, "too many declarator suffixes");
        if (accept(p, "[")) {
            size_t start = p->i;
            while (!is(p, "]")) {
                if (peek(p, 0)->kind == T_END)
                    fail(p, "unterminated array");
                p->i++;
            }
            char *len = join(p->t + start, p->i - start);
            p->i++;
            buf b = {0};
            buf_printf(&b, "array%s%s of ", *len ? " " : "", len);
            free(len);
            suffixes[n++] = b.s;
        } else {
            suffixes[n++] = params(p);
        }
    }
    while (n > 0) {
        char *next = str_cat(suffixes[--n], type);
        free(suffixes[n]);
        free(type);
        type = next;
    }
    if (nested) {
        size_t after = p->i;
        p->i = nested;
        char *inner = declarator(p, type, name);
        expect(p, ")");
        p->i = after;
        free(type);
        type = inner;
    }
    return type;
}

static void declarations(parser *p)
{
    while (peek(p, 0)->kind != T_END) {
        if (accept(p, ";"))
            continue;
        size_t before = p->out.len;
        specs s = specifiers(p, 0, true);
        if (accept(p, ";")) {
            /* a tag's definition (dumped by record_spec) or declaration */
            if (p->out.len == before)
                buf_printf(&p->out, "declare %s\n", s.type);
            free(s.type);
            continue;
        }
        bool body = false;
        do {
            char *name = NULL;
            char *type = declarator(p, s.type, &name);
            if (!name)
                fail(p, "declaration without a name");
            const char *what = s.is_typedef ? "typedef"
                               : s.is_static ? "static"
                                             : "extern";
            buf_printf(&p->out, "%s %s: %s\n", what, name, type);
            free(name);
            free(type);
            if (is(p, "{")) { /* a static inline function's body */
                skip_balanced(p);
                body = true;
                break;
            }
        } while (accept(p, ","));
        if (!body)
            expect(p, ";");
        free(s.type);
    }
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
                    die("%s:%d: unbalanced attribute", t->file, t->line);
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

/* ------------------------------------------------------------------ */
/* Dump files                                                           */

static const char dump_intro[] =
    "# The plugin surface of stele's public headers (include/stele/*.h):\n"
    "# every constant and declaration, canonicalised by abi/abi_dump.c.\n"
    "# The fingerprint is the FNV-1a 64 hash of the lines after it.\n"
    "# Generated by the build: never edit; see docs/plugins.md.\n";

static void cmd_dump(const char *surface_path, const char *header_dir,
                     const char *dump_path, const char *header_path)
{
    surface sf = {.abi_major = -1, .abi_minor = -1};
    surface_read(&sf, surface_path, header_dir);
    if (sf.abi_major < 0 || sf.abi_minor < 0)
        die("%s: no STELE_ABI_MAJOR/STELE_ABI_MINOR in %s", surface_path,
            header_dir);
    drop_attributes(&sf.code);
    parser p = {.t = sf.code.t};
    declarations(&p);

    buf body = {0};
    buf_puts(&body, sf.constants.s ? sf.constants.s : "");
    buf_puts(&body, p.out.s ? p.out.s : "");
    uint64_t fp = fnv1a64(body.s);

    buf dump = {0};
    buf_puts(&dump, dump_intro);
    buf_printf(&dump, "abi %d.%d\nfingerprint %016" PRIx64 "\n",
               sf.abi_major, sf.abi_minor, fp);
    buf_puts(&dump, body.s);
    write_if_changed(dump_path, dump.s);

    buf h = {0};
    free(dump.s);
    free(body.s);
    free(p.out.s);
    free(sf.constants.s);
    toks_free(&sf.code);

    buf_printf(&h,
               "/* abi_fingerprint.h — generated by the build from the "
               "public headers\n"
               " * (abi/abi_dump.c): never edit. The fingerprint of ABI "
               "%d.%d's plugin surface;\n"
               " * STELE_DESCRIPTOR_HEADER puts it in every plugin's "
               "descriptor. */\n"
               "#ifndef STELE_ABI_FINGERPRINT_H\n"
               "#define STELE_ABI_FINGERPRINT_H\n\n"
               "#include <stdint.h>\n\n"
               "#define STELE_ABI_FINGERPRINT UINT64_C(0x%016" PRIx64 ")\n\n"
               "#endif\n",
               sf.abi_major, sf.abi_minor, fp);
    write_if_changed(header_path, h.s);
    free(h.s);
}

typedef struct dump_info {
    int major, minor;
    uint64_t fingerprint;
    char *text;       /* the whole file */
    char **lines;     /* the declarations, split in place */
    size_t n_lines;
} dump_info;

static void dump_free(dump_info *d)
{
    free(d->lines);
    free(d->text);
}

static void dump_split(dump_info *d, char *body)
{
    size_t cap = 64;
    d->lines = malloc(cap * sizeof *d->lines);
    if (!d->lines)
        die("out of memory");
    while (body && *body) {
        if (d->n_lines == cap) {
            cap *= 2;
            char **grown = realloc(d->lines, cap * sizeof *d->lines);
            if (!grown)
                die("out of memory");
            d->lines = grown;
        }
        d->lines[d->n_lines++] = body;
        char *end = strchr(body, '\n');
        if (!end)
            break;
        *end = '\0';
        body = end + 1;
    }
}

static int indent_of(const char *line)
{
    int n = 0;
    while (line[n] == ' ')
        n++;
    return n;
}

/* The end of the item that starts at lines[i]: the lines indented deeper
 * that follow it (a struct's members, a union's inside a member). */
static size_t item_end(char **lines, size_t n, size_t i)
{
    int level = indent_of(lines[i]);
    size_t j = i + 1;
    while (j < n && indent_of(lines[j]) > level)
        j++;
    return j;
}

/* Whether new[nb..ne) keeps every line of old[ob..oe) at its place, at each
 * level of nesting, with only lines appended after them: what a minor
 * version may do. On failure *why gets the first line that differs. */
static bool appended_only(char **old, size_t ob, size_t oe, char **new,
                          size_t nb, size_t ne, const char **was,
                          const char **is)
{
    size_t i = ob, j = nb;
    while (i < oe) {
        if (j >= ne) {
            *was = old[i];
            *is = "(nothing)";
            return false;
        }
        if (strcmp(old[i], new[j]) != 0) {
            *was = old[i];
            *is = new[j];
            return false;
        }
        size_t oi = item_end(old, oe, i), nj = item_end(new, ne, j);
        if (!appended_only(old, i + 1, oi, new, j + 1, nj, was, is))
            return false;
        i = oi;
        j = nj;
    }
    return true;
}

/* A minor version only adds: every item of an older minor's dump (a
 * constant, a typedef, a struct, union or enum) is still there, unchanged,
 * and a struct or enum only has members appended to it. Items may move
 * and new ones appear anywhere. */
static void check_minor_extends(const dump_info *old, const char *old_path,
                                const dump_info *cur)
{
    for (size_t i = 0; i < old->n_lines; i = item_end(old->lines,
                                                     old->n_lines, i)) {
        const char *head = old->lines[i];
        size_t oe = item_end(old->lines, old->n_lines, i);
        size_t j = 0;
        while (j < cur->n_lines && strcmp(cur->lines[j], head) != 0)
            j = item_end(cur->lines, cur->n_lines, j);
        if (j == cur->n_lines)
            die("ABI %d.%d changes what %d.%d declared (%s): '%s' is gone "
                "or changed. A minor version only appends; bump "
                "STELE_ABI_MAJOR instead (docs/plugins.md, \"Changing the "
                "ABI\")",
                cur->major, cur->minor, old->major, old->minor, old_path,
                head);
        const char *was = NULL, *is = NULL;
        size_t ne = item_end(cur->lines, cur->n_lines, j);
        if (!appended_only(old->lines, i + 1, oe, cur->lines, j + 1, ne, &was,
                           &is))
            die("ABI %d.%d changes what %d.%d declared (%s): in '%s', '%s' "
                "became '%s'. A minor version only appends members at the "
                "end; bump STELE_ABI_MAJOR instead (docs/plugins.md, "
                "\"Changing the ABI\")",
                cur->major, cur->minor, old->major, old->minor, old_path,
                head, was + indent_of(was), is + indent_of(is));
    }
}

/* Reads a dump's title and checks its fingerprint against its lines. */
static dump_info dump_read(const char *path)
{
    char *text = read_file(path);
    dump_info d = {.major = -1, .minor = -1};
    char *abi = strstr(text, "\nabi ");
    char *fp = strstr(text, "\nfingerprint ");
    if (!abi || !fp || sscanf(abi, "\nabi %d.%d", &d.major, &d.minor) != 2 ||
        sscanf(fp, "\nfingerprint %" SCNx64, &d.fingerprint) != 1)
        die("%s: not an ABI dump (no 'abi' and 'fingerprint' lines)", path);
    char *body = strchr(fp + 1, '\n');
    uint64_t h = fnv1a64(body ? body + 1 : "");
    if (h != d.fingerprint)
        die("%s: its fingerprint line says %016" PRIx64
            " but its declarations hash to %016" PRIx64
            ": a released dump is never edited, restore it from git",
            path, d.fingerprint, h);
    d.text = text;
    dump_split(&d, body ? body + 1 : NULL);
    return d;
}

static void cmd_known(const char *out_path, int n, char **dumps)
{
    dump_info cur = dump_read(dumps[0]);
    uint64_t fps[MAX_MINORS] = {0};
    if (cur.minor >= MAX_MINORS)
        die("%s: ABI minor %d too large", dumps[0], cur.minor);
    fps[cur.minor] = cur.fingerprint;
    int first = cur.major == 1 ? FIRST_FINGERPRINTED_MINOR_1 : 0;
    for (int i = 1; i < n; i++) {
        dump_info d = dump_read(dumps[i]);
        /* Dumps of minors before fingerprints are kept for this check
         * alone: their plugins carry no fingerprint to compare. */
        if (d.major == cur.major && d.minor < cur.minor) {
            check_minor_extends(&d, dumps[i], &cur);
            if (d.minor >= first)
                fps[d.minor] = d.fingerprint;
        } /* else another major, or this build's own minor */
        dump_free(&d);
    }
    buf h = {0};
    buf_printf(&h,
               "/* abi_known.h — generated by the build (abi/abi_dump.c): "
               "the fingerprint\n"
               " * of each ABI %d.x the host accepts, indexed by minor; 0 "
               "before fingerprints. */\n"
               "#define STELE_ABI_FIRST_FINGERPRINTED_MINOR %d\n"
               "static const uint64_t stele_abi_known[%d] = {\n",
               cur.major, first, cur.minor + 1);
    for (int m = 0; m <= cur.minor; m++) {
        if (m >= first && !fps[m])
            die("no dump of ABI %d.%d in abi/: the host would refuse every "
                "plugin built against it; restore abi/stele-abi-%d.%d.txt "
                "from git",
                cur.major, m, cur.major, m);
        buf_printf(&h, "    UINT64_C(0x%016" PRIx64 "), /* %d.%d */\n", fps[m],
                   cur.major, m);
    }
    buf_puts(&h, "};\n");
    write_if_changed(out_path, h.s);
    free(h.s);
    dump_free(&cur);
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "dump") == 0)
        cmd_dump(argv[2], argv[3], argv[4], argv[5]);
    else if (argc >= 4 && strcmp(argv[1], "known") == 0)
        cmd_known(argv[2], argc - 3, argv + 3);
    else
        die("usage: abi_dump dump SURFACE.i HEADER_DIR OUT.txt OUT.h\n"
            "       abi_dump known OUT.h CURRENT.txt [RELEASED.txt...]");
    for (size_t i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    return 0;
}

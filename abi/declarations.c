/*
 * declarations.c — a parser of the C declarations our public headers are
 * made of, writing each as canonical text: struct, union and enum bodies
 * one member a line ("name: type"), types spelled from the outside in
 * ("pointer to function(pointer to const char) returning int"), qualifiers
 * in one order, parameter names left out.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void fail(const parser *p, const char *what) __attribute__((noreturn));

static void fail(const parser *p, const char *what)
{
    const tok *t = &p->t[p->i];
    abi_die("%s:%d: %s at '%s' (the ABI dump reads declarations only: "
            "extend abi/declarations.c for this construct)",
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
    "typedef", "extern",   "static",   "inline",  "const",   "volatile",
    "signed",  "unsigned", "short",    "long",    "int",     "char",
    "void",    "_Bool",    "float",    "double",  "struct",  "union",
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
    bool is_typedef, is_static;
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
            abi_buf_indent(out, depth);
            abi_buf_printf(out, "(anonymous): %s\n", s.type);
            free(s.type);
            continue;
        }
        do {
            char *name = NULL;
            char *type = declarator(p, s.type, &name);
            if (!name)
                fail(p, "member without a name");
            abi_buf_indent(out, depth);
            abi_buf_printf(out, "%s: %s", name, type);
            if (accept(p, ":")) { /* a bit-field */
                size_t start = p->i;
                while (!is(p, ",") && !is(p, ";"))
                    p->i++;
                char *width = abi_join(p->t + start, p->i - start);
                abi_buf_printf(out, " : %s", width);
                free(width);
            }
            abi_buf_puts(out, "\n");
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
        abi_buf_indent(out, depth);
        abi_buf_puts(out, peek(p, 0)->text);
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
            char *value = abi_join(p->t + start, p->i - start);
            abi_buf_printf(out, " = %s", value);
            free(value);
        }
        abi_buf_puts(out, "\n");
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
        abi_buf_printf(&b, "%s %s", kw, tag);
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
        abi_buf_printf(&p->out, "%s %s {\n%s}\n", kw, tag,
                       body.s ? body.s : "");
        abi_buf_printf(&b, "%s %s", kw, tag);
    } else {
        abi_buf_printf(&b, "%s%s%s {\n%s", kw, tag ? " " : "", tag ? tag : "",
                       body.s ? body.s : "");
        abi_buf_indent(&b, depth);
        abi_buf_puts(&b, "}");
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
        else if (strcmp(w, "static") == 0)
            s.is_static = true;
        else if (!strcmp(w, "inline") || !strcmp(w, "register") ||
                 !strcmp(w, "extern") || !strcmp(w, "restrict"))
            ; /* storage and hints: no part of the type */
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
        abi_buf_puts(&b, "const ");
    if (is_volatile)
        abi_buf_puts(&b, "volatile ");
    if (named) {
        abi_buf_puts(&b, named);
        free(named);
    } else if (base && strcmp(base, "char") == 0) {
        abi_buf_puts(&b, is_unsigned ? "unsigned char"
                         : is_signed ? "signed char"
                                     : "char");
    } else if (base && strcmp(base, "int") != 0) {
        if (longs && strcmp(base, "double") == 0)
            abi_buf_puts(&b, "long ");
        abi_buf_puts(&b, base);
    } else if (base || shorts || longs || is_signed || is_unsigned) {
        if (is_unsigned)
            abi_buf_puts(&b, "unsigned ");
        abi_buf_puts(&b, shorts       ? "short int"
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
    abi_buf_puts(&b, "function(");
    if (is(p, "void") && strcmp(peek(p, 1)->text, ")") == 0) {
        p->i++;
        abi_buf_puts(&b, "void");
    }
    bool first = true;
    while (!accept(p, ")")) {
        if (!first) {
            expect(p, ",");
            abi_buf_puts(&b, ", ");
        }
        first = false;
        if (accept(p, "...")) {
            abi_buf_puts(&b, "...");
            continue;
        }
        specs s = specifiers(p, 0, false);
        char *name = NULL; /* a parameter's name is no part of its type */
        char *type = declarator(p, s.type, &name);
        abi_buf_puts(&b, type);
        free(name);
        free(type);
        free(s.type);
    }
    abi_buf_puts(&b, ") returning ");
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
                abi_buf_puts(&quals, "const ");
            else if (accept(p, "volatile"))
                abi_buf_puts(&quals, "volatile ");
            else if (!accept(p, "restrict"))
                break;
        }
        char *t = abi_str_cat(quals.s, "pointer to ");
        char *next = abi_str_cat(t, type);
        free(t);
        free(quals.s);
        free(type);
        type = next;
    }
    size_t nested = 0;
    if (is(p, "(") &&
        (!strcmp(peek(p, 1)->text, "*") || !strcmp(peek(p, 1)->text, "(") ||
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
            char *len = abi_join(p->t + start, p->i - start);
            p->i++;
            buf b = {0};
            abi_buf_printf(&b, "array%s%s of ", *len ? " " : "", len);
            free(len);
            suffixes[n++] = b.s;
        } else {
            suffixes[n++] = params(p);
        }
    }
    while (n > 0) {
        char *next = abi_str_cat(suffixes[--n], type);
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
                abi_buf_printf(&p->out, "declare %s\n", s.type);
            free(s.type);
            continue;
        }
        bool body = false;
        do {
            char *name = NULL;
            char *type = declarator(p, s.type, &name);
            if (!name)
                fail(p, "declaration without a name");
            const char *what = s.is_typedef  ? "typedef"
                               : s.is_static ? "static"
                                             : "extern";
            abi_buf_printf(&p->out, "%s %s: %s\n", what, name, type);
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

void abi_declarations(tok *t, buf *out)
{
    parser p = {.t = t};
    declarations(&p);
    abi_buf_puts(out, p.out.s ? p.out.s : "");
    free(p.out.s);
}

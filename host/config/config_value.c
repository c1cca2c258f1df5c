/*
 * config_value.c — one config scalar: ${VAR} expansion, then its type.
 *
 * Expansion comes first, so a number or a path may come from the
 * environment ("partitions: ${PARTITIONS:-4}") and is validated like a
 * literal one.
 */
#include "config_value.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* The longest scalar after expansion; a conninfo is a few hundred bytes. */
#define VALUE_MAX_BYTES (64 * 1024)
#define APP_MAX_LEN 100

int cfg_fail(cfg_loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[STELE_ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return stele_err_set(L->err, STELE_EINVAL, "%s:%lu: %s", L->file,
                         (unsigned long)n->start_mark.line + 1, msg);
}

const char *cfg_node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "scalar";
    case YAML_SEQUENCE_NODE: return "sequence";
    case YAML_MAPPING_NODE: return "mapping";
    default: return "nothing";
    }
}

bool cfg_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE ||
        n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n > VALUE_MAX_BYTES)
        return STELE_ENOMEM;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return STELE_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Expands ${NAME} and ${NAME:-default} in s; "$${" is a literal "${". */
static int expand(cfg_loader *L, const yaml_node_t *n, const char *what, buf *b)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    int rc = buf_add(b, "", 0);
    for (size_t i = 0; i < len && rc == 0;) {
        if (s[i] != '$') {
            const char *next = memchr(s + i, '$', len - i);
            size_t run = next ? (size_t)(next - (s + i)) : len - i;
            rc = buf_add(b, s + i, run);
            i += run;
            continue;
        }
        if (i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            rc = buf_add(b, "${", 2);
            i += 3;
            continue;
        }
        if (i + 1 >= len || s[i + 1] != '{') {
            rc = buf_add(b, "$", 1);
            i++;
            continue;
        }
        const char *ref = s + i + 2;
        const char *end = memchr(ref, '}', len - (i + 2));
        if (!end)
            return cfg_fail(L, n, "unterminated '${' in '%s'", what);
        size_t reflen = (size_t)(end - ref), namelen = 0;
        while (namelen < reflen &&
               (isalnum((unsigned char)ref[namelen]) || ref[namelen] == '_'))
            namelen++;
        bool has_default = namelen + 2 <= reflen && ref[namelen] == ':' &&
                           ref[namelen + 1] == '-';
        if (namelen == 0 || isdigit((unsigned char)ref[0]) ||
            (namelen < reflen && !has_default))
            return cfg_fail(L, n,
                            "bad reference '${%.*s}' in '%s' (expected "
                            "${NAME} or ${NAME:-default})",
                            (int)reflen, ref, what);
        /* "${X:-${Y}}" would end at the first '}': "${Y" and a "}" taken
         * literally, a log opened at a path named "${Y}". */
        const char *dflt = ref + namelen + 2;
        bool nested = false;
        for (size_t k = 0; has_default && k + 1 < reflen - namelen - 2; k++)
            nested |= dflt[k] == '$' && dflt[k + 1] == '{';
        if (nested)
            return cfg_fail(L, n,
                            "the default in '${%.*s}' refers to another "
                            "variable, which is not supported (in '%s')",
                            (int)namelen, ref, what);
        char name[256];
        if (namelen >= sizeof name)
            return cfg_fail(L, n, "variable name too long in '%s'", what);
        memcpy(name, ref, namelen);
        name[namelen] = '\0';
        const char *v = getenv(name);
        if (has_default && (!v || !*v))
            rc = buf_add(b, ref + namelen + 2, reflen - namelen - 2);
        else if (v)
            rc = buf_add(b, v, strlen(v));
        else
            return cfg_fail(L, n,
                            "environment variable '%s' is not set (in '%s')",
                            name, what);
        i += 2 + reflen + 1;
    }
    if (rc)
        return cfg_fail(L, n, "'%s' is longer than %d bytes", what,
                        VALUE_MAX_BYTES);
    return 0;
}

int cfg_get_string(cfg_loader *L, const yaml_node_t *n, const char *what,
                   bool allow_empty, char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return cfg_fail(L, n, "'%s' must be a scalar, got a %s", what,
                        cfg_node_kind(n));
    if (cfg_is_null(n))
        return cfg_fail(L, n, "'%s' has no value", what);
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length))
        return cfg_fail(L, n, "'%s' contains a NUL byte", what);
    buf b = {0};
    int rc = expand(L, n, what, &b);
    if (rc == 0 && !allow_empty && b.len == 0)
        rc = cfg_fail(L, n, "'%s' is empty", what);
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

int cfg_get_bool(cfg_loader *L, const yaml_node_t *n, const char *what,
                 bool *out)
{
    char *s;
    int rc = cfg_get_string(L, n, what, true, &s);
    if (rc)
        return rc;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
        *out = s[0] == 't';
    else
        rc = cfg_fail(L, n, "'%s' must be true or false, got '%s'", what, s);
    free(s);
    return rc;
}

int cfg_get_int(cfg_loader *L, const yaml_node_t *n, const char *what,
                int64_t min, int64_t max, int64_t *out)
{
    char *s;
    int rc = cfg_get_string(L, n, what, true, &s);
    if (rc)
        return rc;
    /* Decimal only: YAML's 0x10, 0o10 or 1_000 would surprise a reader. */
    const char *d = s[0] == '-' ? s + 1 : s;
    bool ok = *d && strspn(d, "0123456789") == strlen(d);
    long long v = 0;
    if (ok) {
        errno = 0;
        v = strtoll(s, NULL, 10);
        ok = errno == 0 && v >= min && v <= max;
    }
    if (!ok) {
        rc = cfg_fail(L, n, "'%s' must be an integer in %lld..%lld, got '%s'",
                      what, (long long)min, (long long)max, s);
        free(s);
        return rc;
    }
    free(s);
    *out = v;
    return 0;
}

int cfg_get_choice(cfg_loader *L, const yaml_node_t *n, const char *what,
                   const char *const *choices, char **out)
{
    char *s;
    int rc = cfg_get_string(L, n, what, true, &s);
    if (rc)
        return rc;
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *out = s;
            return 0;
        }
    char list[128];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; choices[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                i ? ", " : "", choices[i]);
    rc = cfg_fail(L, n, "'%s' must be one of %s, got '%s'", what, list, s);
    free(s);
    return rc;
}

int cfg_get_path(cfg_loader *L, const yaml_node_t *n, const char *what,
                 char **out)
{
    char *s;
    int rc = cfg_get_string(L, n, what, false, &s);
    if (rc)
        return rc;
    if (s[0] == '/') {
        *out = s;
    } else {
        size_t len = strlen(L->dir) + strlen(s) + 2;
        char *p = malloc(len);
        if (!p) {
            free(s);
            return stele_err_set(L->err, STELE_ENOMEM, "out of memory");
        }
        /* "./x" rather than "x": dlopen searches the library path for a
         * name without a slash. */
        bool root = strcmp(L->dir, "/") == 0;
        snprintf(p, len, "%s%s%s", L->dir, root ? "" : "/", s);
        free(s);
        *out = p;
    }
    if (strlen(*out) >= PATH_MAX) {
        free(*out);
        *out = NULL;
        return cfg_fail(L, n, "'%s' is longer than %d bytes", what,
                        PATH_MAX - 1);
    }
    return 0;
}

int cfg_get_app(cfg_loader *L, const yaml_node_t *n, const char *what,
                char **out)
{
    char *s;
    int rc = cfg_get_string(L, n, what, false, &s);
    if (rc)
        return rc;
    size_t len = strlen(s);
    size_t ok = strspn(s, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
    if (ok != len) {
        rc = cfg_fail(L, n,
                      "'%s' may hold only letters, digits, '_', '.' and '-' "
                      "(topic names start with it), got '%s'",
                      what, s);
    } else if (len > APP_MAX_LEN) {
        rc = cfg_fail(L, n, "'%s' is longer than %d characters", what,
                      APP_MAX_LEN);
    }
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int cfg_get_listen(cfg_loader *L, const yaml_node_t *n, const char *what,
                   char **out)
{
    char *s;
    int rc = cfg_get_string(L, n, what, false, &s);
    if (rc)
        return rc;
    const char *colon = strrchr(s, ':');
    const char *port = colon ? colon + 1 : NULL;
    size_t hostlen = colon ? (size_t)(colon - s) : 0;
    bool ok = colon && hostlen > 0 && *port && strlen(port) <= 5 &&
              strspn(port, "0123456789") == strlen(port) && atoi(port) <= 65535;
    if (ok && s[0] == '[')
        ok = hostlen > 2 && s[hostlen - 1] == ']';
    else if (ok)
        ok = memchr(s, ':', hostlen) == NULL; /* IPv6 needs brackets */
    if (!ok) {
        rc = cfg_fail(L, n,
                      "'%s' must be host:port (port 0..65535, IPv6 in "
                      "brackets), got '%s'",
                      what, s);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/*
 * util.c — what the engine's files share, at the bottom of the folder:
 * the host's log lines, pools of typed values, record headers, and the
 * aggregates by type or commands topic.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/logline.h"
#include "internal.h"

static stele_log_level level_from_name(const char *name)
{
    if (!name || strcmp(name, "info") == 0)
        return STELE_LOG_INFO;
    if (strcmp(name, "error") == 0)
        return STELE_LOG_ERROR;
    if (strcmp(name, "warn") == 0)
        return STELE_LOG_WARN;
    return STELE_LOG_DEBUG;
}

void engine_logf(stele_engine *e, stele_log_level level, const char *fmt, ...)
{
    if (level > level_from_name(e->cfg->log_level))
        return;
    stele_log_fields f = {.component = "engine"};
    va_list ap;
    va_start(ap, fmt);
    stele_logline_v((int)level, &f, fmt, ap);
    va_end(ap);
}

void engine_logf_about(stele_engine *e, stele_log_level level,
                       const stele_log_fields *about, const char *fmt, ...)
{
    if (level > level_from_name(e->cfg->log_level))
        return;
    stele_log_fields f = *about;
    if (!f.component)
        f.component = "engine";
    va_list ap;
    va_start(ap, fmt);
    stele_logline_v((int)level, &f, fmt, ap);
    va_end(ap);
}

int engine_values_take(typed_values *tv, avro_value_t **out, stele_err *err)
{
    if (tv->used == tv->cap) {
        size_t ncap = tv->cap ? tv->cap * 2 : 8;
        avro_value_t *nv = realloc(tv->values, ncap * sizeof *nv);
        if (!nv)
            return stele_err_set(err, STELE_ENOMEM, "out of memory");
        tv->values = nv;
        for (size_t i = tv->cap; i < ncap; i++) {
            int rc = stele_codec_value_new(tv->schema, &tv->values[i], err);
            if (rc != 0) {
                tv->cap = i;
                return rc;
            }
        }
        tv->cap = ncap;
    }
    *out = &tv->values[tv->used++];
    return 0;
}

void engine_values_release_all(typed_values *tv)
{
    tv->used = 0;
}

void engine_values_free(typed_values *tv)
{
    for (size_t i = 0; i < tv->cap; i++)
        avro_value_decref(&tv->values[i]);
    free(tv->values);
    tv->values = NULL;
    tv->cap = tv->used = 0;
}

const char *engine_header_get(const stele_log_record *r, const char *name,
                              size_t *len)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0) {
            *len = r->headers[i].len;
            return r->headers[i].value ? r->headers[i].value : "";
        }
    return NULL;
}

const char *engine_header_str(const stele_log_record *r, const char *name,
                              char *buf, size_t size)
{
    size_t len;
    const char *v = engine_header_get(r, name, &len);
    if (!v)
        len = 0;
    if (len >= size)
        len = size - 1;
    if (len)
        memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

aggregate *engine_aggregate_by_type(stele_engine *e, const char *type)
{
    for (size_t i = 0; i < e->n_aggs; i++)
        if (strcmp(e->aggs[i].def->type, type) == 0)
            return &e->aggs[i];
    return NULL;
}

aggregate *engine_aggregate_by_commands_topic(stele_engine *e,
                                              const char *topic)
{
    for (size_t i = 0; i < e->n_aggs; i++)
        if (strcmp(e->aggs[i].t_commands, topic) == 0)
            return &e->aggs[i];
    return NULL;
}

static bool lower_hex(const char *s, size_t n, bool *all_zero)
{
    *all_zero = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        *all_zero &= c == '0';
    }
    return true;
}

bool engine_traceparent_valid(const char *s, size_t len)
{
    bool zero_trace, zero_parent, ignored;
    return s && len == TRACEPARENT_LEN && s[0] == '0' && s[1] == '0' &&
           s[2] == '-' && s[35] == '-' && s[52] == '-' &&
           lower_hex(s + 3, 32, &zero_trace) && !zero_trace &&
           lower_hex(s + 36, 16, &zero_parent) && !zero_parent &&
           lower_hex(s + 53, 2, &ignored);
}

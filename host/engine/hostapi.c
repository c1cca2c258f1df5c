/* The host API table handed to plugins: the value functions come from the
 * codec, the rest are the engine's. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/value.h"
#include "common/err.h"
#include "internal.h"

static int api_emit(stele_decision *d, const char *event_type, stele_value *out)
{
    if (!d)
        return STELE_EINVAL;
    if (!event_type || !out) {
        d->fault = STELE_EINVAL;
        snprintf(d->fault_msg, sizeof d->fault_msg, "emit: %s is NULL",
                 event_type ? "the output value" : "the event type");
        return STELE_EINVAL;
    }
    aggregate *a = d->agg;
    typed_values *tv = NULL;
    for (size_t i = 0; i < a->def->n_events; i++)
        if (strcmp(a->events[i].name, event_type) == 0) {
            tv = &a->events[i];
            break;
        }
    if (!tv) {
        d->fault = STELE_EINVAL;
        snprintf(d->fault_msg, sizeof d->fault_msg,
                 "emit: %s is not an event aggregate %s declares", event_type,
                 a->def->type);
        return STELE_EINVAL;
    }
    if (d->n == MAX_EMITTED) {
        d->fault = STELE_ENOMEM;
        snprintf(d->fault_msg, sizeof d->fault_msg,
                 "emit: more than %d events for one command", MAX_EMITTED);
        return STELE_ENOMEM;
    }
    avro_value_t *v;
    stele_err err;
    if (engine_values_take(tv, &v, &err) != 0 ||
        stele_codec_value_reset(tv->schema, v, &err) != 0) {
        d->fault = err.code;
        snprintf(d->fault_msg, sizeof d->fault_msg, "emit %s: %s", event_type,
                 err.msg);
        return err.code;
    }
    d->ev[d->n].tv = tv;
    d->ev[d->n].value = v;
    d->n++;
    *out = stele_value_wrap(v);
    return 0;
}

static int api_reject(stele_decision *d, const char *code, const char *fmt, ...)
{
    if (!d)
        return STELE_EINVAL;
    d->rejected = true;
    snprintf(d->code, sizeof d->code, "%s", code && *code ? code : "REJECTED");
    if (!fmt) {
        d->message[0] = '\0';
        return 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    return 0;
}

static int api_exec(stele_store_tx *tx, const char *sql,
                    const stele_param *params, size_t n, stele_err *err)
{
    return stele_store_exec((stele_store *)tx, sql, params, n, err);
}

static int api_select(stele_store_tx *tx, const char *sql,
                      const stele_param *params, size_t n,
                      int (*row_cb)(void *, const stele_param *,
                                    const char *const *, size_t),
                      void *opaque, stele_err *err)
{
    return stele_store_select((stele_store *)tx, sql, params, n, row_cb, opaque,
                              err);
}

static int api_query_rows(stele_query_ctx *q, const char *sql,
                          const stele_param *params, size_t n, stele_err *err)
{
    return stele_store_select_json(q->e->store, sql, params, n, q->rows, err);
}

void engine_api_init(stele_engine *e)
{
    stele_plugin_api_init(&e->api);
    stele_value_fill_api(&e->api);
    e->api.emit = api_emit;
    e->api.reject = api_reject;
    e->api.exec = api_exec;
    e->api.select = api_select;
    e->api.query_rows = api_query_rows;
    e->api.upcast_emit = stele_codec_upcast_emit;
}

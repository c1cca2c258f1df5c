/*
 * value.h — the value accessors of the plugin host API (get_long, set_branch,
 * ...), implemented over avro-c generic values. A stele_value has the layout
 * of avro_value_t, so the host converts between them without copying.
 */
#ifndef STELE_CODEC_VALUE_H
#define STELE_CODEC_VALUE_H

#include <avro.h>
#include <stele/plugin.h>

static inline stele_value stele_value_wrap(const avro_value_t *v)
{
    stele_value s = {v->iface, v->self};
    return s;
}

static inline avro_value_t stele_value_unwrap(const stele_value *s)
{
    avro_value_t v = {(avro_value_iface_t *)s->iface, s->self};
    return v;
}

/* Fills the value functions of a host API table (get_* set_* array_* copy
 * is_null); leaves the others untouched. */
void stele_value_fill_api(stele_host_api *api);

/* The first of those calls that failed in this thread since the last
 * clear, as "get_long(bank.Deposit.amountt): bank.Deposit has no field
 * 'amountt'"; "" when none did. The host clears it before each plugin
 * call and adds it to the error of a call that fails. */
void stele_value_failure_clear(void);
const char *stele_value_failure(void);

#endif

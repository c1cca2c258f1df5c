/* Submitting commands given as JSON and waiting for their results. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/util.h"
#include "internal.h"

static int opt_string(const json_t *obj, const char *key, const char **out,
                      stele_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return stele_err_set(err, STELE_EINVAL,
                             "command: '%s' must be a "
                             "string",
                             key);
    *out = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > MAX_ID_LEN || strlen(*out) != len)
        return stele_err_set(err, STELE_EINVAL,
                             "command: '%s' must be 1 to %d characters", key,
                             MAX_ID_LEN);
    /* What the host refuses in a command's envelope is refused here, not
     * written and then dead-lettered while the sender waits. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)(*out)[i] < 0x20 || (*out)[i] == 0x7f)
            return stele_err_set(err, STELE_EINVAL,
                                 "command: '%s' holds a control character "
                                 "(at byte %zu)",
                                 key, i);
    return 0;
}

int stele_engine_encode_command(stele_engine *e, const json_t *cmd,
                                stele_encoded_command *out, stele_err *err)
{
    static const char *keys[] = {
        "type",       "aggregate_id",     "data",
        "command_id", "expected_version", "correlation_id",
        "user",       "traceparent"};
    if (!json_is_object(cmd))
        return stele_err_set(err, STELE_EINVAL,
                             "command: expected a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)cmd, key, val)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            known |= strcmp(keys[i], key) == 0;
        if (!known)
            return stele_err_set(err, STELE_EINVAL,
                                 "command: unknown key '%s' (expected type, "
                                 "aggregate_id, data, command_id, "
                                 "expected_version, correlation_id, user, "
                                 "traceparent)",
                                 key);
    }
    const char *type, *agg_id, *command_id, *correlation, *user, *trace;
    int rc;
    if ((rc = opt_string(cmd, "type", &type, err)) ||
        (rc = opt_string(cmd, "aggregate_id", &agg_id, err)) ||
        (rc = opt_string(cmd, "command_id", &command_id, err)) ||
        (rc = opt_string(cmd, "correlation_id", &correlation, err)) ||
        (rc = opt_string(cmd, "user", &user, err)) ||
        (rc = opt_string(cmd, "traceparent", &trace, err)))
        return rc;
    if (trace && !engine_traceparent_valid(trace, strlen(trace)))
        return stele_err_set(err, STELE_EINVAL,
                             "command: 'traceparent' is not a W3C "
                             "traceparent (00-<32 hex>-<16 hex>-<2 hex>)");
    if (!type || !agg_id)
        return stele_err_set(err, STELE_EINVAL,
                             "command: 'type' and 'aggregate_id' are "
                             "required");
    aggregate *a = stele_map_gets(e->cmd_index, type);
    if (!a)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "command: no loaded aggregate handles '%s'", type);
    typed_values *tv = NULL;
    for (size_t i = 0; i < a->def->n_commands; i++)
        if (strcmp(a->commands[i].name, type) == 0)
            tv = &a->commands[i];
    json_t *ev = json_object_get(cmd, "expected_version");
    char expected[24] = "";
    if (ev && !json_is_null(ev)) {
        if (!json_is_integer(ev) || json_integer_value(ev) < 0)
            return stele_err_set(err, STELE_EINVAL,
                                 "command: 'expected_version' must be an "
                                 "integer >= 0");
        snprintf(expected, sizeof expected, "%" PRId64,
                 (int64_t)json_integer_value(ev));
    }
    json_t *data = json_object_get(cmd, "data");
    json_t *empty = NULL;
    if (!data)
        data = empty = json_object();
    avro_value_t *value;
    engine_values_release_all(tv);
    if ((rc = engine_values_take(tv, &value, err)) ||
        (rc = stele_codec_from_json(tv->schema, data, value, err)) ||
        (rc = stele_codec_encode(e->codec, tv->schema, value, &e->buf, err))) {
        json_decref(empty);
        return stele_err_prefix(err, "command %s", type);
    }
    json_decref(empty);
    if (e->buf.len > (size_t)e->cfg->max_value_bytes)
        return stele_err_set(err, STELE_EINVAL,
                             "command %s: %zu bytes exceeds the limit of "
                             "%lld",
                             type, e->buf.len,
                             (long long)e->cfg->max_value_bytes);

    memset(out, 0, sizeof *out);
    stele_submitted *s = &out->submitted;
    if (command_id)
        snprintf(s->command_id, sizeof s->command_id, "%s", command_id);
    else
        stele_ulid(s->command_id);
    snprintf(out->aggregate_id, sizeof out->aggregate_id, "%s", agg_id);
    snprintf(out->expected, sizeof out->expected, "%s", expected);
    stele_log_header *h = out->headers;
    size_t nh = 0;
    h[nh++] =
        (stele_log_header){H_COMMAND_ID, s->command_id, strlen(s->command_id)};
    if (expected[0])
        h[nh++] = (stele_log_header){H_EXPECTED_VERSION, out->expected,
                                     strlen(out->expected)};
    if (correlation) {
        snprintf(out->correlation_id, sizeof out->correlation_id, "%s",
                 correlation);
        h[nh++] = (stele_log_header){H_CORRELATION_ID, out->correlation_id,
                                     strlen(out->correlation_id)};
    }
    if (user) {
        snprintf(out->user, sizeof out->user, "%s", user);
        h[nh++] = (stele_log_header){H_USER, out->user, strlen(out->user)};
    }
    if (trace) {
        snprintf(out->traceparent, sizeof out->traceparent, "%s", trace);
        h[nh++] = (stele_log_header){H_TRACEPARENT, out->traceparent,
                                     TRACEPARENT_LEN};
    }
    s->partition =
        stele_partition_for_key(agg_id, strlen(agg_id), a->partitions);
    snprintf(s->aggregate_type, sizeof s->aggregate_type, "%s", a->def->type);
    if (e->t_replies) {
        /* Where to start looking for the answer: nothing before the
         * command was sent can be it. */
        s->reply_partition = stele_partition_for_key(
            s->command_id, strlen(s->command_id), e->replies_partitions);
        if ((rc = stele_log_end_offset(e->log, e->t_replies, s->reply_partition,
                                       &s->reply_from, err)))
            return rc;
    }
    out->topic = a->t_commands;
    out->record = (stele_log_record){.timestamp_ms = stele_now_ms(),
                                     .key = out->aggregate_id,
                                     .key_len = strlen(out->aggregate_id),
                                     .value = e->buf.data,
                                     .value_len = e->buf.len,
                                     .headers = h,
                                     .n_headers = nh};
    return 0;
}

int stele_engine_submit_json(stele_engine *e, const json_t *cmd,
                             stele_submitted *out, stele_err *err)
{
    stele_encoded_command c;
    int rc = stele_engine_encode_command(e, cmd, &c, err);
    if (rc == 0)
        rc = stele_log_produce(e->log, c.topic, c.submitted.partition,
                               &c.record, NULL, err);
    if (rc == 0)
        *out = c.submitted;
    return rc;
}

static int parse_result(const stele_log_record *r, const char *command_id,
                        json_t **result, stele_err *err)
{
    json_error_t jerr;
    *result = NULL;
    if (r->damaged)
        return stele_err_set(err, STELE_EINVAL,
                             "the stored result of %s is damaged (%s): the "
                             "command was processed, its answer cannot be "
                             "read",
                             command_id, r->damaged);
    *result = json_loadb(r->value, r->value_len, 0, &jerr);
    if (!*result)
        return stele_err_set(err, STELE_EINVAL, "result of %s is not JSON: %s",
                             command_id, jerr.text);
    return 0;
}

/* A shared log: follow the replies topic from where it ended when the
 * command was sent until the command's answer shows up. */
static int wait_reply(stele_engine *e, const stele_submitted *s, int timeout_ms,
                      json_t **result, stele_err *err)
{
    int64_t deadline = stele_mono_ns() + (int64_t)timeout_ms * 1000000;
    int64_t from = s->reply_from;
    size_t idlen = strlen(s->command_id);
    long sleep_us = 1000;
    for (;;) {
        stele_log_batch *b;
        int rc = stele_log_read(e->log, e->t_replies, s->reply_partition, from,
                                1000, &b, err);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < b->n; i++) {
            const stele_log_record *r = &b->records[i];
            from = r->offset + 1;
            if (r->key_len == idlen &&
                memcmp(r->key, s->command_id, idlen) == 0) {
                rc = parse_result(r, s->command_id, result, err);
                stele_log_batch_free(b);
                return rc;
            }
        }
        size_t n = b->n;
        stele_log_batch_free(b);
        if (n > 0)
            continue;
        if (stele_mono_ns() > deadline)
            return stele_err_set(err, STELE_ETIMEDOUT,
                                 "no reply for command %s on %s within %d ms "
                                 "(is a host running?)",
                                 s->command_id, e->t_replies, timeout_ms);
        struct timespec ts = {0, sleep_us * 1000};
        nanosleep(&ts, NULL);
        if (sleep_us < 20000)
            sleep_us *= 2;
    }
}

int stele_engine_wait_result(stele_engine *e, const stele_submitted *s,
                             int timeout_ms, json_t **result, stele_err *err)
{
    if (e->t_replies)
        return wait_reply(e, s, timeout_ms, result, err);
    aggregate *a = engine_aggregate_by_type(e, s->aggregate_type);
    if (!a)
        return stele_err_set(err, STELE_ENOTFOUND, "no aggregate type '%s'",
                             s->aggregate_type);
    int64_t deadline = stele_mono_ns() + (int64_t)timeout_ms * 1000000;
    long sleep_us = 500;
    for (;;) {
        stele_log_batch *b;
        int rc =
            stele_log_get_latest(e->log, a->t_results, s->partition,
                                 s->command_id, strlen(s->command_id), &b, err);
        if (rc == 0) {
            rc = parse_result(&b->records[0], s->command_id, result, err);
            stele_log_batch_free(b);
            return rc;
        }
        if (rc != STELE_ENOTFOUND)
            return rc;
        /* Not answered yet: process it here if no other host owns the
         * commands, otherwise wait for the host that does. */
        size_t did = 0;
        if (e->local && (rc = commands_process(e, 0, &did, err)))
            return rc;
        if (did > 0)
            continue;
        if (stele_mono_ns() > deadline)
            return stele_err_set(err, STELE_ETIMEDOUT,
                                 "no result for command %s within %d ms (is "
                                 "the host that owns it running?)",
                                 s->command_id, timeout_ms);
        struct timespec ts = {0, sleep_us * 1000};
        nanosleep(&ts, NULL);
        if (sleep_us < 20000)
            sleep_us *= 2;
    }
}

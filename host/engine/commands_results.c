/*
 * What a command gets back, written in its batch's transaction: a result
 * (accepted or rejected, as JSON keyed by command id) on its aggregate's
 * results topic and, where there is one, the replies topic; or, for a
 * record no result can be addressed to, a copy in the dead-letter topic.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands_internal.h"
#include "common/err.h"
#include "common/text.h"

/* A JSON string of s. Bytes that are not UTF-8 (a plugin's message, a key
 * from a raw producer) become U+FFFD: copied as they are, they made the
 * stored result unreadable. */
static json_t *text(const char *s)
{
    if (stele_text_utf8_valid(s, strlen(s)))
        return json_string(s);
    char *fixed = stele_text_utf8_repair(s);
    json_t *j = fixed ? json_string(fixed) : NULL;
    free(fixed);
    return j;
}

/* What every result begins with: status, command_id, aggregate_type,
 * aggregate_id, version. */
static json_t *result_new(const char *status, const envelope *env,
                          int64_t version)
{
    json_t *r =
        json_pack("{s:o*, s:o*, s:o*, s:o*, s:I}", "status", text(status),
                  "command_id", text(env->command_id), "aggregate_type",
                  text(env->agg->def->type), "aggregate_id",
                  text(env->aggregate_id), "version", (json_int_t)version);
    if (r && env->traceparent[0] &&
        json_object_set_new(r, "traceparent", json_string(env->traceparent))) {
        json_decref(r);
        r = NULL;
    }
    return r;
}

/* Writes the result (taking it) on the aggregate's results topic and,
 * where there is one, the replies topic. */
static int write_result(batch *b, const envelope *env, json_t *result,
                        stele_err *err)
{
    char *json = result ? json_dumps(result, JSON_COMPACT) : NULL;
    json_decref(result);
    if (!json)
        return stele_err_set(err, STELE_ENOMEM,
                             "out of memory for the result of %s",
                             env->command_id);
    stele_log_record r = {.timestamp_ms = stele_now_ms(),
                          .key = env->command_id,
                          .key_len = strlen(env->command_id),
                          .value = json,
                          .value_len = strlen(json)};
    int rc = stele_log_txn_produce(b->txn, env->agg->t_results,
                                   env->rec->partition, &r, NULL, err);
    if (rc == 0 && b->e->t_replies)
        rc = stele_log_txn_produce(b->txn, b->e->t_replies, -1, &r, NULL, err);
    free(json);
    return rc;
}

int commands_reject(batch *b, const envelope *env, const char *code,
                    const char *message, int64_t version, stele_err *err)
{
    json_t *result = result_new("rejected", env, version);
    if (result && (json_object_set_new(result, "code", text(code)) ||
                   json_object_set_new(result, "message", text(message)))) {
        json_decref(result);
        result = NULL;
    }
    b->stats.rejected++;
    return write_result(b, env, result, err);
}

int commands_write_accepted(batch *b, const envelope *env, int64_t version,
                            char ids[][STELE_ULID_LEN + 1], size_t n,
                            stele_err *err)
{
    json_t *result = result_new("accepted", env, version);
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, json_string(ids[i]))) {
            json_decref(list);
            list = NULL;
        }
    if (result && (!list || json_object_set_new(result, "event_ids", list))) {
        json_decref(result);
        result = NULL;
    }
    b->stats.accepted++;
    return write_result(b, env, result, err);
}

int commands_dead_letter(batch *b, const stele_log_record *rec,
                         const char *reason, stele_err *err)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof partition, "%d", (int)rec->partition);
    snprintf(offset, sizeof offset, "%" PRId64, rec->offset);
    stele_log_header h[] = {
        {"dlq.topic", rec->topic, strlen(rec->topic)},
        {"dlq.partition", partition, strlen(partition)},
        {"dlq.offset", offset, strlen(offset)},
        {"dlq.stage", "command", 7},
        {"dlq.reason", reason, strlen(reason)},
    };
    stele_log_record r = {.timestamp_ms = stele_now_ms(),
                          .key = rec->key,
                          .key_len = rec->key_len,
                          .value = rec->value,
                          .value_len = rec->value_len,
                          .headers = h,
                          .n_headers = sizeof h / sizeof h[0]};
    /* The key is the aggregate id when a stele client wrote the command. */
    char id[MAX_ID_LEN + 1];
    size_t il = rec->key_len < MAX_ID_LEN ? rec->key_len : MAX_ID_LEN;
    if (il)
        memcpy(id, rec->key, il);
    id[il] = '\0';
    stele_log_fields about = {.aggregate_id = memchr(id, 0, il) ? NULL : id};
    engine_logf_about(b->e, STELE_LOG_WARN, &about,
                      "%s[%d]@%" PRId64 ": dead-lettered: %s", rec->topic,
                      (int)rec->partition, rec->offset, reason);
    b->stats.dead_letters++;
    return stele_log_txn_produce(b->txn, b->e->t_deadletter, 0, &r, NULL, err);
}

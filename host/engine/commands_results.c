/*
 * What a command gets back, written in its batch's transaction: a result
 * (accepted or rejected, as JSON keyed by command id) on its aggregate's
 * results topic and, where there is one, the replies topic; or, for a
 * record no result can be addressed to, a copy in the dead-letter topic.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands_internal.h"
#include "common/text.h"

/* Appends s to out as a JSON string body (without quotes). Bytes that
 * are not UTF-8 (a plugin's message, a key from a raw producer) become
 * U+FFFD: copied as they are, they made the stored result unreadable. */
static void json_escape(char *out, size_t size, size_t *at, const char *s)
{
    size_t left = strlen(s);
    while (left > 0 && *at + 7 < size) {
        unsigned char c = (unsigned char)*s;
        size_t n = stele_text_utf8_seq((const unsigned char *)s, left);
        if (c == '"' || c == '\\') {
            out[(*at)++] = '\\';
            out[(*at)++] = (char)c;
        } else if (c < 0x20) {
            *at += (size_t)snprintf(out + *at, size - *at, "\\u%04x", c);
        } else if (n == 0) {
            *at += (size_t)snprintf(out + *at, size - *at, "\\ufffd");
            n = 1;
        } else {
            memcpy(out + *at, s, n);
            *at += n;
        }
        if (n == 0)
            n = 1;
        s += n;
        left -= n;
    }
    out[*at] = '\0';
}

static void json_field(char *out, size_t size, size_t *at, const char *name,
                       const char *value, bool comma)
{
    *at += (size_t)snprintf(out + *at, size - *at, "%s\"%s\":\"",
                            comma ? "," : "", name);
    if (*at >= size) {
        *at = size - 1;
        return;
    }
    json_escape(out, size, at, value);
    if (*at + 1 < size)
        out[(*at)++] = '"';
    out[*at] = '\0';
}

/* What every result begins with: {"status", "command_id",
 * "aggregate_type", "aggregate_id". */
static void result_head(char *out, size_t size, size_t *at, const char *status,
                        const envelope *env)
{
    out[(*at)++] = '{';
    json_field(out, size, at, "status", status, false);
    json_field(out, size, at, "command_id", env->command_id, true);
    json_field(out, size, at, "aggregate_type", env->agg->def->type, true);
    json_field(out, size, at, "aggregate_id", env->aggregate_id, true);
}

static int write_result(batch *b, const envelope *env, const char *json,
                        size_t len, stele_err *err)
{
    stele_log_record r = {.timestamp_ms = stele_now_ms(),
                          .key = env->command_id,
                          .key_len = strlen(env->command_id),
                          .value = json,
                          .value_len = len};
    int rc = stele_log_txn_produce(b->txn, env->agg->t_results,
                                   env->rec->partition, &r, NULL, err);
    if (rc == 0 && b->e->t_replies)
        rc = stele_log_txn_produce(b->txn, b->e->t_replies, -1, &r, NULL, err);
    return rc;
}

int reject(batch *b, const envelope *env, const char *code, const char *message,
           int64_t version, stele_err *err)
{
    /* Room for the worst case: every byte of the ids and the message
     * escaped as \u00XX, so a result is never cut into invalid JSON. */
    char out[6 * (3 * (MAX_ID_LEN + 1) + 64 + 1024) + 256];
    size_t at = 0;
    result_head(out, sizeof out, &at, "rejected", env);
    json_field(out, sizeof out, &at, "code", code, true);
    json_field(out, sizeof out, &at, "message", message, true);
    at += (size_t)snprintf(out + at, sizeof out - at,
                           ",\"version\":%" PRId64 "}", version);
    if (at >= sizeof out)
        at = sizeof out - 1;
    b->stats.rejected++;
    return write_result(b, env, out, at, err);
}

int write_accepted(batch *b, const envelope *env, int64_t version,
                   char ids[][STELE_ULID_LEN + 1], size_t n, stele_err *err)
{
    char out[6 * 3 * (MAX_ID_LEN + 1) + 256 + MAX_EMITTED * 32];
    size_t at = 0;
    result_head(out, sizeof out, &at, "accepted", env);
    at += (size_t)snprintf(out + at, sizeof out - at,
                           ",\"version\":%" PRId64 ",\"event_ids\":[", version);
    for (size_t i = 0; i < n && at < sizeof out; i++)
        at += (size_t)snprintf(out + at, sizeof out - at, "%s\"%s\"",
                               i ? "," : "", ids[i]);
    at += (size_t)snprintf(out + at, sizeof out - at, "]}");
    if (at >= sizeof out)
        at = sizeof out - 1;
    b->stats.accepted++;
    return write_result(b, env, out, at, err);
}

int dead_letter(batch *b, const stele_log_record *rec, const char *reason,
                stele_err *err)
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
    engine_logf(b->e, STELE_LOG_WARN, "%s[%d]@%" PRId64 ": dead-lettered: %s",
                rec->topic, (int)rec->partition, rec->offset, reason);
    b->stats.dead_letters++;
    return stele_log_txn_produce(b->txn, b->e->t_deadletter, 0, &r, NULL, err);
}

/*
 * A chaos client: one process, one command in flight, as a user's client
 * would send them. It picks an account (all clients share them), an
 * operation and sometimes an expected version (the last one it was told),
 * and sometimes sends again a command id it already sent, with the same
 * payload, to test that the answer is the stored one. A command not
 * answered in time is sent again under its id until it is (a client
 * retrying), so every command ends with an answer or is reported
 * unanswered.
 *
 * Some commands (misrouted_pct) go through a producer that does not hash
 * keys as stele does: on Kafka a librdkafka producer with its default
 * partitioner (consistent_random, CRC32), elsewhere a random partition.
 *
 * History: one JSON line per command id: what was sent, the first time it
 * was sent (t0) and the first time an answer came (t1), wall clock ms,
 * and the answers (one per send).
 */
#include "chaos.h"

#include <inttypes.h>
#include <jansson.h>
#ifdef STELE_WITH_KAFKA
#include <librdkafka/rdkafka.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"
#include "log/log.h"

#define ANSWER_WAIT_MS 20000
#define GIVE_UP_MS 240000 /* a command unanswered this long is reported */
#define MAX_SENT 4096     /* ids kept for resubmission */
#define IN_FLIGHT 6       /* commands a client has sent and waits for */

typedef struct sent {
    char cid[40];
    json_t *cmd; /* as sent, for a resubmission */
} sent;

typedef struct client {
    const chaos_run *r;
    int index;
    unsigned short rng[3];
    stele_engine *e;
    stele_log *log; /* the engine's log, for misrouted records elsewhere */
#ifdef STELE_WITH_KAFKA
    rd_kafka_t *rk; /* Kafka: a producer with librdkafka's defaults */
#endif
    FILE *out;
    int64_t *known; /* per account: the last version this client was told */
    sent sent[MAX_SENT];
    size_t n_sent;
    long seq;
} client;

static long rnd(client *c, long n)
{
    return n > 0 ? nrand48(c->rng) % n : 0;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#ifdef STELE_WITH_KAFKA
static int kafka_producer(client *c)
{
    char es[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* Nothing but the address: the client's own defaults, partitioner
     * included, as a Python or Go client built on librdkafka has them. */
    if (rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:9092", es,
                          sizeof es) != RD_KAFKA_CONF_OK ||
        /* the broker's restart is expected: not a line per attempt */
        rd_kafka_conf_set(conf, "log_level", "2", es, sizeof es) !=
            RD_KAFKA_CONF_OK ||
        !(c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es))) {
        fprintf(stderr, "client %d: kafka producer: %s\n", c->index, es);
        return -1;
    }
    return 0;
}

#endif

/* Sends cmd through a producer that partitions on its own. */
static int send_misrouted(client *c, const json_t *cmd, stele_submitted *s,
                          stele_err *err)
{
    stele_encoded_command ec;
    int rc = stele_engine_encode_command(c->e, cmd, &ec, err);
    if (rc)
        return rc;
    *s = ec.submitted;
    const stele_log_record *rec = &ec.record;
#ifdef STELE_WITH_KAFKA
    if (!c->rk) {
#else
    {
#endif
        int32_t n = 0;
        if ((rc = stele_log_topic_partitions(c->log, ec.topic, &n, err)))
            return rc;
        return stele_log_produce(c->log, ec.topic, (int32_t)rnd(c, n), rec,
                                 NULL, err);
    }
#ifdef STELE_WITH_KAFKA
    rd_kafka_headers_t *h = rd_kafka_headers_new(rec->n_headers);
    for (size_t i = 0; i < rec->n_headers; i++)
        rd_kafka_header_add(h, rec->headers[i].name, -1, rec->headers[i].value,
                            (ssize_t)rec->headers[i].len);
    rd_kafka_resp_err_t e =
        rd_kafka_producev(c->rk, RD_KAFKA_V_TOPIC(ec.topic),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(rec->key, rec->key_len),
                          RD_KAFKA_V_VALUE((void *)rec->value, rec->value_len),
                          RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h);
        return stele_err_set(err, STELE_ERETRY, "produce: %s",
                             rd_kafka_err2str(e));
    }
    /* Delivered before waiting for the answer, or it is not sent at all:
     * the broker may be down, and librdkafka retries meanwhile. */
    e = rd_kafka_flush(c->rk, 60000);
    return e ? stele_err_set(err, STELE_ERETRY, "flush: %s",
                             rd_kafka_err2str(e))
             : 0;
#endif
}

/* A command in flight. */
typedef struct flight {
    json_t *cmd;
    int acc;
    bool dup, misroute, sent;
    stele_submitted s;
    int64_t t0;
} flight;

static int submit(client *c, flight *f, stele_err *err)
{
    int rc = f->misroute ? send_misrouted(c, f->cmd, &f->s, err)
                         : stele_engine_submit_json(c->e, f->cmd, &f->s, err);
    f->sent = rc == 0;
    return rc;
}

/* Waits for f's answer, sending it again under its id until it comes (or
 * GIVE_UP_MS); appends the answer to answers. t1 gets the time of the
 * first answer (0: none). */
static void wait_answered(client *c, flight *f, json_t *answers, int64_t *t1)
{
    *t1 = 0;
    for (int attempt = 0;; attempt++) {
        stele_err err = {0};
        int rc = f->sent ? 0 : submit(c, f, &err);
        json_t *res = NULL;
        if (rc == 0)
            rc = stele_engine_wait_result(c->e, &f->s, ANSWER_WAIT_MS, &res,
                                          &err);
        if (rc == 0) {
            *t1 = stele_now_ms();
            json_array_append_new(answers, res);
            return;
        }
        f->sent = false;
        if (stele_now_ms() - f->t0 > GIVE_UP_MS) {
            fprintf(stderr, "client %d: %s unanswered after %d attempts: %s\n",
                    c->index,
                    json_string_value(json_object_get(f->cmd, "command_id")),
                    attempt + 1, err.msg);
            return;
        }
        /* A server going away breaks the client's own connections too:
         * the next call reconnects. */
        pause_ms(rc == STELE_ETIMEDOUT ? 10 : 300);
    }
}

static json_t *new_command(client *c, int *acc_out, bool *dup)
{
    const chaos_run *r = c->r;
    *dup = false;
    if (c->n_sent > 0 && rnd(c, 100) < 5) {
        sent *s = &c->sent[rnd(c, (long)c->n_sent)];
        *dup = true;
        const char *id =
            json_string_value(json_object_get(s->cmd, "aggregate_id"));
        *acc_out = atoi(id + 4);
        return json_incref(s->cmd);
    }
    int acc = (int)rnd(c, r->o.accounts);
    *acc_out = acc;
    char id[32], cid[40];
    snprintf(id, sizeof id, "acc-%d", acc);
    snprintf(cid, sizeof cid, "c%d-%ld", c->index, c->seq++);
    json_t *cmd;
    long p = rnd(c, 100);
    if (c->known[acc] < 0 || p < 3) {
        cmd = json_pack("{s:s, s:s, s:s, s:{s:s}}", "type", "bank.OpenAccount",
                        "aggregate_id", id, "command_id", cid, "data", "owner",
                        "chaos");
    } else if (p < 60) {
        cmd = json_pack("{s:s, s:s, s:s, s:{s:I, s:s}}", "type", "bank.Deposit",
                        "aggregate_id", id, "command_id", cid, "data", "amount",
                        (json_int_t)(1 + rnd(c, 100)), "channel", "chaos");
    } else {
        cmd = json_pack("{s:s, s:s, s:s, s:{s:I}}", "type", "bank.Withdraw",
                        "aggregate_id", id, "command_id", cid, "data", "amount",
                        (json_int_t)(1 + rnd(c, 150)));
    }
    if (c->known[acc] >= 0 && rnd(c, 100) < 25)
        json_object_set_new(cmd, "expected_version",
                            json_integer(c->known[acc]));
    return cmd;
}

/* Keeps a command that is being sent, for a resubmission later. */
static void remember(client *c, json_t *cmd)
{
    sent *slot = c->n_sent < MAX_SENT ? &c->sent[c->n_sent++]
                                      : &c->sent[rnd(c, MAX_SENT)];
    if (slot->cmd)
        json_decref(slot->cmd);
    snprintf(slot->cid, sizeof slot->cid, "%s",
             json_string_value(json_object_get(cmd, "command_id")));
    slot->cmd = json_incref(cmd);
}

static void learn(client *c, int acc, json_t *answers)
{
    size_t n = json_array_size(answers);
    if (n == 0)
        return;
    json_t *last = json_array_get(answers, n - 1);
    json_t *v = json_object_get(last, "version");
    const char *code = json_string_value(json_object_get(last, "code"));
    if (json_is_integer(v) && !(code && !strcmp(code, "MISROUTED")))
        c->known[acc] = json_integer_value(v);
    else if (c->known[acc] < 0)
        c->known[acc] = 0;
}

static int client_open(client *c)
{
    stele_config *cfg = NULL;
    stele_err err = {0};
    /* The hosts may be starting, the server restarting: keep trying. */
    for (int tries = 0;; tries++) {
        if (!cfg && stele_config_load(c->r->config, &cfg, &err) != 0) {
            fprintf(stderr, "client %d: config: %s\n", c->index, err.msg);
            return -1;
        }
        if (stele_engine_open(cfg, &c->e, &err) == 0)
            break;
        if (tries == 100) {
            fprintf(stderr, "client %d: open: %s\n", c->index, err.msg);
            return -1;
        }
        pause_ms(300);
    }
    /* The config stays with the engine for its life (the process's). */
    if (c->r->o.misrouted_pct > 0) {
#ifdef STELE_WITH_KAFKA
        if (c->r->o.backend == CHAOS_KAFKA)
            return kafka_producer(c);
#endif
#ifdef STELE_WITH_POSTGRES
        int rc = c->r->o.backend == CHAOS_SQLITE
                     ? stele_log_open_sqlite(cfg->log_path, &c->log, &err)
                     : stele_log_open_postgres(c->r->conninfo, &c->log, &err);
#else
        int rc = stele_log_open_sqlite(cfg->log_path, &c->log, &err);
#endif
        if (rc) {
            fprintf(stderr, "client %d: log: %s\n", c->index, err.msg);
            return -1;
        }
    }
    return 0;
}

int chaos_client_main(const chaos_run *r, int i, int64_t deadline_ms)
{
    static client c;
    c.r = r;
    c.index = i;
    uint64_t s = r->o.seed * 1000003u + (uint64_t)i * 7919u + 1;
    c.rng[0] = (unsigned short)s;
    c.rng[1] = (unsigned short)(s >> 16);
    c.rng[2] = (unsigned short)(s >> 32);
    c.known = malloc((size_t)r->o.accounts * sizeof *c.known);
    /* Each account is opened by one client (others may send it commands
     * before: NOT_FOUND), and later and then again by anyone (3%:
     * ALREADY_EXISTS). */
    for (int a = 0; a < r->o.accounts; a++)
        c.known[a] = a % r->o.clients == i ? -1 : 0;
    char path[sizeof r->dir + 32];
    snprintf(path, sizeof path, "%s/client%d.jsonl", r->dir, i);
    c.out = fopen(path, "w");
    if (!c.out || client_open(&c) != 0)
        return 1;
    /* Several commands in flight, on distinct accounts: sent together,
     * then each waited for (its t1 is when this client saw the answer,
     * which is after the answer came: that only weakens what the audit
     * asks of real-time order, never makes it wrong). */
    flight fl[IN_FLIGHT];
    while (stele_now_ms() < deadline_ms) {
        int n = 0;
        for (int tries = 0; n < IN_FLIGHT && tries < 4 * IN_FLIGHT; tries++) {
            flight *f = &fl[n];
            f->cmd = new_command(&c, &f->acc, &f->dup);
            bool clash = false;
            for (int j = 0; j < n; j++)
                clash |= fl[j].acc == f->acc;
            if (clash) { /* never sent: its id is not used again */
                json_decref(f->cmd);
                continue;
            }
            if (!f->dup)
                remember(&c, f->cmd);
            f->misroute = rnd(&c, 100) < r->o.misrouted_pct;
            f->t0 = stele_now_ms();
            stele_err err = {0};
            submit(&c, f, &err);
            n++;
        }
        for (int j = 0; j < n; j++) {
            flight *f = &fl[j];
            json_t *answers = json_array();
            int64_t t1;
            wait_answered(&c, f, answers, &t1);
            learn(&c, f->acc, answers);
            json_t *line = json_pack("{s:O, s:b, s:b, s:I, s:I, s:o}", "cmd",
                                     f->cmd, "dup", f->dup, "misrouted",
                                     f->misroute, "t0", (json_int_t)f->t0, "t1",
                                     (json_int_t)t1, "answers", answers);
            char *text = json_dumps(line, JSON_COMPACT);
            fprintf(c.out, "%s\n", text);
            free(text);
            json_decref(line);
            json_decref(f->cmd);
        }
        fflush(c.out);
    }
    fclose(c.out);
#ifdef STELE_WITH_KAFKA
    if (c.rk)
        rd_kafka_destroy(c.rk);
#endif
    if (c.log)
        stele_log_close(c.log);
    stele_engine_close(c.e);
    return 0;
}

/*
 * The chaos run's audit: what the clients were told (their histories)
 * against what the log, the states and the read model hold.
 *
 *  - every command id answered, every answer to one id the same, and the
 *    same as the one result the log holds for it (on its aggregate's
 *    partition);
 *  - each accepted command's events exactly once, with the ids its result
 *    names; no events of a rejected or unknown command;
 *  - per aggregate, versions 1..n with no gap or repeat, all on the
 *    aggregate's partition, each event consistent with the one before
 *    (the bank's rules: balances add up, no withdrawal below zero, an
 *    account opened once) and with its command's amount;
 *  - real-time order: no command decided on a version older than one a
 *    client had already been told before it sent that command;
 *  - per account the balance of its last event = the state's = the read
 *    model's = what the accepted commands add up to.
 */
#include "chaos.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/map.h"
#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"
#include "log/log.h"

typedef struct cmd {
    char cid[48];
    int acc;
    char op;                  /* 'o'pen, 'd'eposit, 'w'ithdraw */
    int64_t amount, expected; /* expected -1: none */
    int64_t t0, t1;           /* first send, first answer (0: none) */
    json_t *answer;           /* the first answer */
    bool differ;              /* a later answer was not the same */
    int sends;
    bool misrouted;
    json_t *logged; /* the result in the log */
    int logged_n;
    json_t *event_ids; /* of the events the log holds for it */
} cmd;

typedef struct event {
    int64_t version, amount, balance;
    char type[32], cause[48], id[32];
    int partition;
} event;

typedef struct account {
    event *ev;
    size_t n, cap;
    cmd **cmds;
    size_t n_cmds, cap_cmds;
} account;

typedef struct audit {
    const chaos_run *r;
    chaos_report *rep;
    stele_map *cmds; /* cid -> cmd* */
    account *accs;
} audit;

/* j as compact JSON, in one of two static buffers (for messages). */
static const char *js(const json_t *j)
{
    static char buf[2][1024];
    static int which;
    char *b = buf[which ^= 1];
    size_t n = j ? json_dumpb(j, b, sizeof buf[0] - 1, JSON_COMPACT) : 0;
    if (!j)
        snprintf(b, sizeof buf[0], "nothing");
    else if (n == 0 || n >= sizeof buf[0] - 1)
        snprintf(b, sizeof buf[0], "(too long)");
    else
        b[n] = '\0';
    return b;
}

void chaos_violation(chaos_report *rep, long *counter, const char *fmt, ...)
{
    (*counter)++;
    if (rep->first[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->first, sizeof rep->first, fmt, ap);
    va_end(ap);
}

long chaos_violations(const chaos_report *p)
{
    return p->unanswered + p->answers_differ + p->results_twice +
           p->result_mismatch + p->events_missing + p->events_twice +
           p->events_rejected + p->version_gaps + p->bad_decisions +
           p->stale_decisions + p->wrong_partition + p->balance_mismatch +
           p->crashed;
}

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * size);
    if (!p)
        return false;
    *arr = p;
    *cap = c;
    return true;
}

static void cmd_free(void *v)
{
    cmd *k = v;
    json_decref(k->answer);
    json_decref(k->logged);
    json_decref(k->event_ids);
    free(k);
}

static int acc_of(const char *id)
{
    return strncmp(id, "acc-", 4) == 0 ? atoi(id + 4) : -1;
}

/* ------------------------------------------------------------------ */
/* Histories                                                            */

static void history_line(audit *a, json_t *line)
{
    json_t *c = json_object_get(line, "cmd");
    const char *cid = json_string_value(json_object_get(c, "command_id"));
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *id = json_string_value(json_object_get(c, "aggregate_id"));
    int acc = id ? acc_of(id) : -1;
    if (!cid || !type || acc < 0 || acc >= a->r->o.accounts)
        return;
    cmd *k = stele_map_gets(a->cmds, cid);
    if (!k) {
        k = calloc(1, sizeof *k);
        snprintf(k->cid, sizeof k->cid, "%s", cid);
        k->acc = acc;
        k->op = !strcmp(type, "bank.OpenAccount") ? 'o'
                : !strcmp(type, "bank.Deposit")   ? 'd'
                                                  : 'w';
        json_t *data = json_object_get(c, "data");
        k->amount = json_integer_value(json_object_get(data, "amount"));
        json_t *ev = json_object_get(c, "expected_version");
        k->expected = ev ? json_integer_value(ev) : -1;
        k->misrouted = json_is_true(json_object_get(line, "misrouted"));
        stele_map_put(a->cmds, k->cid, strlen(k->cid), k, NULL);
        account *ac = &a->accs[acc];
        if (grow((void **)&ac->cmds, &ac->cap_cmds, ac->n_cmds,
                 sizeof *ac->cmds))
            ac->cmds[ac->n_cmds++] = k;
        a->rep->commands++;
        if (k->misrouted)
            a->rep->misrouted++;
    } else {
        a->rep->resubmitted++;
    }
    int64_t t0 = json_integer_value(json_object_get(line, "t0"));
    int64_t t1 = json_integer_value(json_object_get(line, "t1"));
    if (!k->t0 || t0 < k->t0)
        k->t0 = t0;
    if (t1 && (!k->t1 || t1 < k->t1))
        k->t1 = t1;
    size_t i;
    json_t *ans;
    json_array_foreach(json_object_get(line, "answers"), i, ans)
    {
        a->rep->submissions++;
        k->sends++;
        if (!k->answer)
            k->answer = json_incref(ans);
        else if (!json_equal(k->answer, ans))
            k->differ = true;
    }
}

static int read_histories(audit *a)
{
    for (int i = 0; i < a->r->o.clients; i++) {
        char path[sizeof a->r->dir + 32];
        snprintf(path, sizeof path, "%s/client%d.jsonl", a->r->dir, i);
        FILE *in = fopen(path, "r");
        if (!in) {
            fprintf(stderr, "audit: %s: cannot read it\n", path);
            return -1;
        }
        char *buf = NULL;
        size_t cap = 0;
        while (getline(&buf, &cap, in) > 0) {
            json_t *line = json_loads(buf, 0, NULL);
            if (line)
                history_line(a, line);
            json_decref(line);
        }
        free(buf);
        fclose(in);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The log                                                              */

static int open_log(const chaos_run *r, const stele_config *cfg,
                    stele_log **out, stele_err *err)
{
    switch (r->o.backend) {
#ifdef STELE_WITH_KAFKA
    case CHAOS_KAFKA: {
        const char *keys[] = {"bootstrap.servers"};
        const char *vals[] = {"127.0.0.1:9092"};
        return stele_log_open_kafka(keys, vals, 1, "chaos-audit", out, err);
    }
#endif
#ifdef STELE_WITH_POSTGRES
    case CHAOS_POSTGRES: return stele_log_open_postgres(r->conninfo, out, err);
#endif
    default: return stele_log_open_sqlite(cfg->log_path, out, err);
    }
}

static int read_results(audit *a, stele_log *log)
{
    char topic[64];
    snprintf(topic, sizeof topic, "%s.Account.results", a->r->app);
    int32_t parts = 0;
    stele_err err = {0};
    if (stele_log_topic_partitions(log, topic, &parts, &err)) {
        fprintf(stderr, "audit: %s: %s\n", topic, err.msg);
        return -1;
    }
    for (int32_t p = 0; p < parts; p++) {
        int64_t from = 0;
        for (;;) {
            stele_log_batch *b;
            if (stele_log_read(log, topic, p, from, 4096, &b, &err)) {
                fprintf(stderr, "audit: %s[%d]: %s\n", topic, p, err.msg);
                return -1;
            }
            size_t n = b->n;
            for (size_t i = 0; i < n; i++) {
                const stele_log_record *rec = &b->records[i];
                from = rec->offset + 1;
                if (!rec->value)
                    continue;
                json_t *res = json_loadb(rec->value, rec->value_len, 0, NULL);
                const char *cid =
                    json_string_value(json_object_get(res, "command_id"));
                const char *id =
                    json_string_value(json_object_get(res, "aggregate_id"));
                cmd *k = cid ? stele_map_gets(a->cmds, cid) : NULL;
                if (id && stele_partition_for_key(id, strlen(id), parts) != p)
                    chaos_violation(a->rep, &a->rep->wrong_partition,
                                    "result of %s (%s) on partition %d", cid,
                                    id, p);
                if (k && k->logged_n++ == 0)
                    k->logged = json_incref(res);
                else if (k)
                    chaos_violation(
                        a->rep, &a->rep->results_twice,
                        "%s has %d results: %s at offset %" PRId64 " after %s",
                        cid, k->logged_n, js(res), rec->offset, js(k->logged));
                json_decref(res);
            }
            stele_log_batch_free(b);
            if (n == 0)
                break;
        }
    }
    return 0;
}

static void on_event(void *opaque, json_t *ev)
{
    audit *a = opaque;
    const char *id = json_string_value(json_object_get(ev, "aggregate_id"));
    int acc = id ? acc_of(id) : -1;
    if (acc < 0 || acc >= a->r->o.accounts) {
        json_decref(ev);
        return;
    }
    account *ac = &a->accs[acc];
    if (!grow((void **)&ac->ev, &ac->cap, ac->n, sizeof *ac->ev)) {
        json_decref(ev);
        return;
    }
    event *e = &ac->ev[ac->n++];
    memset(e, 0, sizeof *e);
    e->version = json_integer_value(json_object_get(ev, "version"));
    e->partition = (int)json_integer_value(json_object_get(ev, "partition"));
    snprintf(e->type, sizeof e->type, "%s",
             json_string_value(json_object_get(ev, "type")));
    snprintf(e->cause, sizeof e->cause, "%s",
             json_string_value(json_object_get(ev, "causation_id")));
    snprintf(e->id, sizeof e->id, "%s",
             json_string_value(json_object_get(ev, "event_id")));
    json_t *data = json_object_get(ev, "data");
    json_t *amount = json_object_get(data, "amount");
    e->amount = json_is_object(amount)
                    ? json_integer_value(json_object_get(amount, "minor"))
                    : json_integer_value(amount);
    e->balance = json_integer_value(json_object_get(data, "balance"));
    a->rep->events++;
    cmd *k = stele_map_gets(a->cmds, e->cause);
    if (k) {
        if (!k->event_ids)
            k->event_ids = json_array();
        json_array_append_new(k->event_ids, json_string(e->id));
    } else {
        chaos_violation(a->rep, &a->rep->events_rejected,
                        "event %s of %s v%" PRId64 " has causation %s, "
                        "a command no client sent",
                        e->id, id, e->version, e->cause);
    }
    json_decref(ev);
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */

static bool accepted(const cmd *k)
{
    return k->answer &&
           !strcmp(json_string_value(json_object_get(k->answer, "status"))
                       ?: "",
                   "accepted");
}

static int64_t answer_version(const cmd *k)
{
    return json_integer_value(json_object_get(k->answer, "version"));
}

static const char *answer_code(const cmd *k)
{
    return json_string_value(json_object_get(k->answer, "code")) ?: "";
}

static void check_answers(audit *a, cmd *k)
{
    chaos_report *rep = a->rep;
    if (!k->answer) {
        chaos_violation(rep, &rep->unanswered, "%s was never answered", k->cid);
        return;
    }
    if (accepted(k))
        rep->accepted++;
    else
        rep->rejected++;
    if (!strcmp(answer_code(k), "CONFLICT"))
        rep->conflicts++;
    if (k->differ)
        chaos_violation(rep, &rep->answers_differ,
                        "%s was answered differently when sent again", k->cid);
    if (!k->logged || !json_equal(k->logged, k->answer))
        chaos_violation(rep, &rep->result_mismatch,
                        "%s: the client was told %s, the log holds %s", k->cid,
                        js(k->answer), js(k->logged));
    json_t *ids = json_object_get(k->answer, "event_ids");
    size_t want = accepted(k) ? json_array_size(ids) : 0;
    size_t have = json_array_size(k->event_ids);
    if (!accepted(k) && have)
        chaos_violation(rep, &rep->events_rejected,
                        "%s was rejected (%s) but has %zu events", k->cid,
                        answer_code(k), have);
    else if (have > want)
        chaos_violation(rep, &rep->events_twice,
                        "%s: %zu events in the log, its result names %zu",
                        k->cid, have, want);
    else if (have < want || (want && !json_equal(ids, k->event_ids)))
        chaos_violation(rep, &rep->events_missing,
                        "%s: its result names events %s, the log holds %s",
                        k->cid, js(ids), js(k->event_ids));
}

/* Replays an account's events by the bank's rules; returns the balance. */
static int64_t check_events(audit *a, int acc, account *ac, int parts)
{
    chaos_report *rep = a->rep;
    char id[32];
    snprintf(id, sizeof id, "acc-%d", acc);
    int home = stele_partition_for_key(id, strlen(id), parts);
    bool open = false;
    int64_t balance = 0;
    for (size_t i = 0; i < ac->n; i++) {
        event *e = &ac->ev[i];
        if (e->partition != home)
            chaos_violation(rep, &rep->wrong_partition,
                            "%s v%" PRId64 " on partition %d, not %d", id,
                            e->version, e->partition, home);
        if (e->version != (int64_t)i + 1)
            chaos_violation(rep, &rep->version_gaps,
                            "%s: version %" PRId64 " where %zu was due (%s)",
                            id, e->version, i + 1, e->cause);
        cmd *k = stele_map_gets(a->cmds, e->cause);
        bool ok = true;
        if (!strcmp(e->type, "bank.AccountOpened")) {
            ok = !open && (!k || k->op == 'o');
            open = true;
            balance = 0;
        } else if (!strcmp(e->type, "bank.Deposited")) {
            ok = open && e->balance == balance + e->amount &&
                 (!k || (k->op == 'd' && k->amount == e->amount));
            balance = e->balance;
        } else if (!strcmp(e->type, "bank.Withdrawn")) {
            ok = open && e->balance == balance - e->amount && e->balance >= 0 &&
                 (!k || (k->op == 'w' && k->amount == e->amount));
            balance = e->balance;
        }
        if (!ok)
            chaos_violation(rep, &rep->bad_decisions,
                            "%s v%" PRId64 ": %s of %" PRId64 " to %" PRId64
                            " after a balance of %" PRId64 " (%s)",
                            id, e->version, e->type, e->amount, e->balance,
                            i ? ac->ev[i - 1].balance : 0, e->cause);
        if (k && k->expected >= 0 && e->version != k->expected + 1 &&
            accepted(k) && json_array_size(k->event_ids) == 1)
            chaos_violation(rep, &rep->bad_decisions,
                            "%s: %s expected version %" PRId64
                            " and was decided at %" PRId64,
                            id, k->cid, k->expected, e->version - 1);
    }
    return balance;
}

static int by_t1(const void *x, const void *y)
{
    const cmd *a = *(cmd *const *)x, *b = *(cmd *const *)y;
    return (a->t1 > b->t1) - (a->t1 < b->t1);
}

/* The version a decision saw: the one before its first event, or the one
 * its rejection names. -1: not a decision on the aggregate. */
static int64_t seen_version(const cmd *k)
{
    if (!k->answer || !k->t1)
        return -1;
    if (accepted(k)) {
        size_t n = json_array_size(json_object_get(k->answer, "event_ids"));
        return answer_version(k) - (int64_t)n;
    }
    const char *code = answer_code(k);
    if (!strcmp(code, "MISROUTED") || !strcmp(code, "BAD_COMMAND"))
        return -1;
    return answer_version(k);
}

static void check_real_time(audit *a, account *ac)
{
    size_t n = ac->n_cmds;
    cmd **by = malloc((n ? n : 1) * sizeof *by);
    int64_t *told = malloc((n ? n : 1) * sizeof *told);
    memcpy(by, ac->cmds, n * sizeof *by);
    qsort(by, n, sizeof *by, by_t1);
    /* told[i]: the highest version answered by the first i + 1 answers */
    for (size_t i = 0; i < n; i++) {
        int64_t v = seen_version(by[i]) < 0 ? -1 : answer_version(by[i]);
        told[i] = i && told[i - 1] > v ? told[i - 1] : v;
    }
    for (size_t j = 0; j < n; j++) {
        cmd *k = ac->cmds[j];
        int64_t saw = seen_version(k);
        if (saw < 0)
            continue;
        /* the answers that came before k was first sent */
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (by[mid]->t1 && by[mid]->t1 < k->t0)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* answers with t1 == 0 sort first: skip them */
        if (lo > 0 && told[lo - 1] > saw)
            chaos_violation(a->rep, &a->rep->stale_decisions,
                            "%s (acc-%d) was decided on version %" PRId64
                            " although a client had been told version "
                            "%" PRId64 " before it was sent",
                            k->cid, k->acc, saw, told[lo - 1]);
    }
    free(by);
    free(told);
}

static int64_t find_balance(json_t *v)
{
    if (!json_is_object(v))
        return -1;
    json_t *b = json_object_get(v, "balance");
    if (json_is_integer(b))
        return json_integer_value(b);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        int64_t x = find_balance(val);
        if (x >= 0)
            return x;
    }
    return -1;
}

static void check_balance(audit *a, stele_engine *e, int acc, account *ac,
                          int64_t from_events)
{
    chaos_report *rep = a->rep;
    int64_t implied = 0;
    for (size_t i = 0; i < ac->n_cmds; i++) {
        cmd *k = ac->cmds[i];
        if (!accepted(k) || k->op == 'o')
            continue;
        implied += k->op == 'd' ? k->amount : -k->amount;
    }
    char id[32];
    snprintf(id, sizeof id, "acc-%d", acc);
    json_t *st = NULL, *rm = NULL;
    stele_err err = {0};
    int64_t state = -1, model = -1, sv = 0, mv = 0;
    if (stele_engine_state(e, "Account", id, &st, &err) == 0) {
        state = find_balance(json_object_get(st, "state"));
        sv = json_integer_value(json_object_get(st, "version"));
    }
    json_t *params = json_pack("{s:s}", "account_id", id);
    if (stele_engine_query(e, "account", params, &rm, &err) == 0) {
        model = json_integer_value(json_object_get(rm, "balance"));
        mv = json_integer_value(json_object_get(rm, "version"));
    }
    json_decref(params);
    json_decref(st);
    json_decref(rm);
    int64_t last = ac->n ? ac->ev[ac->n - 1].version : 0;
    if (ac->n == 0)
        return; /* never opened: nothing anywhere, checked above */
    if (from_events != implied || state != from_events ||
        model != from_events || sv != last || mv != last)
        chaos_violation(rep, &rep->balance_mismatch,
                        "%s: events say %" PRId64 " (v%" PRId64
                        "), accepted commands %" PRId64 ", state %" PRId64
                        " (v%" PRId64 "), read model %" PRId64 " (v%" PRId64
                        ")",
                        id, from_events, last, implied, state, sv, model, mv);
}

static int audit_open(const chaos_run *r, stele_config **cfg, stele_engine **e)
{
    stele_err err = {0};
    if (stele_config_load(r->config, cfg, &err) ||
        stele_engine_open(*cfg, e, &err)) {
        fprintf(stderr, "audit: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int chaos_audit(const chaos_run *r, chaos_report *rep)
{
    audit a = {.r = r, .rep = rep, .cmds = stele_map_new()};
    a.accs = calloc((size_t)r->o.accounts, sizeof *a.accs);
    stele_config *cfg = NULL;
    stele_engine *e = NULL;
    stele_log *log = NULL;
    stele_err err = {0};
    int rc = read_histories(&a);
    if (rc == 0)
        rc = audit_open(r, &cfg, &e);
    if (rc == 0 && open_log(r, cfg, &log, &err)) {
        fprintf(stderr, "audit: log: %s\n", err.msg);
        rc = -1;
    }
    if (rc == 0)
        rc = read_results(&a, log);
    if (rc == 0 &&
        stele_engine_events(e, "Account", NULL, 0, on_event, &a, &err)) {
        fprintf(stderr, "audit: events: %s\n", err.msg);
        rc = -1;
    }
    int32_t parts = 6;
    char topic[64];
    snprintf(topic, sizeof topic, "%s.Account.events", r->app);
    if (rc == 0)
        stele_log_topic_partitions(log, topic, &parts, &err);
    for (int acc = 0; rc == 0 && acc < r->o.accounts; acc++) {
        account *ac = &a.accs[acc];
        for (size_t i = 0; i < ac->n_cmds; i++)
            check_answers(&a, ac->cmds[i]);
        int64_t balance = check_events(&a, acc, ac, parts);
        check_real_time(&a, ac);
        check_balance(&a, e, acc, ac, balance);
        if (ac->n)
            rep->accounts++;
    }
    for (int acc = 0; acc < r->o.accounts; acc++) {
        free(a.accs[acc].ev);
        free(a.accs[acc].cmds);
    }
    free(a.accs);
    stele_map_free(a.cmds, cmd_free);
    if (log)
        stele_log_close(log);
    stele_engine_close(e);
    stele_config_free(cfg);
    return rc;
}

bool chaos_wait_projected(const chaos_run *r, int timeout_s)
{
    stele_config *cfg = NULL;
    stele_engine *e = NULL;
    if (audit_open(r, &cfg, &e) != 0)
        return false;
    int64_t deadline = stele_now_ms() + (int64_t)timeout_s * 1000;
    bool done = false;
    while (!done && stele_now_ms() < deadline) {
        done = true;
        for (int acc = 0; done && acc < r->o.accounts; acc++) {
            char id[32];
            snprintf(id, sizeof id, "acc-%d", acc);
            json_t *st = NULL, *rm = NULL;
            stele_err err = {0};
            int rc = stele_engine_state(e, "Account", id, &st, &err);
            if (rc == STELE_ENOTFOUND)
                continue;
            json_t *params = json_pack("{s:s}", "account_id", id);
            done = rc == 0 &&
                   stele_engine_query(e, "account", params, &rm, &err) == 0 &&
                   json_integer_value(json_object_get(rm, "version")) ==
                       json_integer_value(json_object_get(st, "version"));
            json_decref(params);
            json_decref(st);
            json_decref(rm);
        }
        if (!done) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
    }
    stele_engine_close(e);
    stele_config_free(cfg);
    return done;
}

/*
 * bench_pg — stele with PostgreSQL, against plain libpq in the same run.
 *
 *   bench_pg [EVENTS] [ACCOUNTS]        defaults: 200000 10000
 *
 * The server must be up (scripts/pg-start.sh: 127.0.0.1:5433); the bench
 * makes its own database and drops it.
 *
 *   project     the balances projector catching up on EVENTS events (from
 *               the embedded log) into PostgreSQL, 1,000 events per store
 *               transaction with its checkpoint
 *   raw libpq   the same upserts sent by a plain libpq program in pipeline
 *               mode, 1,000 per transaction, into a table made like the
 *               read model's (its indexes and its fillfactor)
 *   append      the engine on the PostgreSQL event store: commands decided
 *               and appended as events with the per-aggregate version check
 *               (plus state, result and reply), 1,000 commands per
 *               transaction
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"
#include "log/log.h"

#define PLUGINS STELE_BUILD_DIR "/plugins/"
#define SERVER "host=127.0.0.1 port=5433 user=postgres"

static char dir[128], db[32], conninfo[160];

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_pg: %s: %s\n", what, why ? why : "");
    exit(1);
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static void admin(const char *sql)
{
    PGconn *c = PQconnectdb(SERVER " dbname=postgres");
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die(sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static stele_config *config(const char *name, const char *log,
                            const char *const *plugins)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "app: %s\ndata_dir: %s/%s\nschemas: %s/schemas\n"
            "log:\n  backend: %s\n  partitions: 4\n  conninfo: \"%s\"\n"
            "store:\n  backend: postgres\n  conninfo: \"%s\"\n"
            "engine:\n  command_batch: 5000\n  projection_batch: 5000\n"
            "  commit_interval_ms: 20\n"
            "logging:\n  level: warn\nplugins:\n",
            db, dir, name, STELE_SOURCE_DIR, log, conninfo, conninfo);
    for (size_t i = 0; plugins[i]; i++)
        fprintf(f, "  - %s\n", plugins[i]);
    fclose(f);
    stele_config *cfg;
    stele_err err = {0};
    if (stele_config_load(path, &cfg, &err))
        die("config", err.msg);
    return cfg;
}

/* Appends commands straight to the commands topic, 1,000 per transaction:
 * an OpenAccount per account, then deposits round-robin. */
static void submit(stele_engine *e, stele_log *log, const char *schemas,
                   long accounts, long n)
{
    (void)e;
    stele_registry *reg;
    stele_codec *codec;
    stele_err err = {0};
    if (stele_registry_open_embedded(log, &reg, &err) ||
        stele_codec_new(schemas, reg, &codec, &err))
        die("codec", err.msg);
    const stele_schema *open_s, *dep_s;
    if (stele_codec_schema(codec, "bank.OpenAccount", 1, &open_s, &err) ||
        stele_codec_schema(codec, "bank.Deposit", 1, &dep_s, &err))
        die("schemas", err.msg);
    avro_value_t ov, dv, f;
    stele_codec_value_new(open_s, &ov, &err);
    stele_codec_value_new(dep_s, &dv, &err);
    stele_buf buf = {0};
    stele_log_txn *txn = NULL;
    char topic[64];
    snprintf(topic, sizeof topic, "%s.Account.commands", db);
    for (long i = 0; i < n; i++) {
        if (i % 1000 == 0) {
            if (txn && stele_log_txn_commit(txn, &err))
                die("commit", err.msg);
            if (stele_log_txn_begin(log, &txn, &err))
                die("begin", err.msg);
        }
        char id[32], cid[32];
        snprintf(id, sizeof id, "acc-%ld", i % accounts);
        snprintf(cid, sizeof cid, "cmd-%ld", i);
        if (i < accounts) {
            avro_value_get_by_name(&ov, "owner", &f, NULL);
            avro_value_set_string(&f, id);
            stele_codec_encode(codec, open_s, &ov, &buf, &err);
        } else {
            avro_value_get_by_name(&dv, "amount", &f, NULL);
            avro_value_set_long(&f, 1);
            stele_codec_encode(codec, dep_s, &dv, &buf, &err);
        }
        stele_log_header h = {"command_id", cid, strlen(cid)};
        stele_log_record r = {.timestamp_ms = stele_now_ms(),
                              .key = id,
                              .key_len = strlen(id),
                              .value = buf.data,
                              .value_len = buf.len,
                              .headers = &h,
                              .n_headers = 1};
        if (stele_log_txn_produce(txn, topic, -1, &r, NULL, &err))
            die("produce", err.msg);
    }
    if (txn && stele_log_txn_commit(txn, &err))
        die("commit", err.msg);
    avro_value_decref(&ov);
    avro_value_decref(&dv);
    stele_buf_free(&buf);
    stele_codec_free(codec);
    stele_registry_close(reg);
}

static void must(PGconn *c, const char *sql, ExecStatusType want)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != want)
        die(sql, PQerrorMessage(c));
    PQclear(r);
}

/* The baseline: the balances projector's statements for the same events
 * (an insert per account, then an update per deposit), sent by plain
 * libpq in pipeline mode, 1,000 per transaction, into a table with the
 * read model's columns, indexes and storage parameters. */
static double raw_libpq(long accounts, long n)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    PGresult *r =
        PQexec(c, "SELECT coalesce(array_to_string(reloptions, ', '), "
                  "'') FROM pg_class WHERE oid = "
                  "'rm_balances_v1.balances'::regclass");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        die("the read model's storage parameters", PQerrorMessage(c));
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE TABLE raw_balances(LIKE rm_balances_v1.balances "
             "INCLUDING ALL)%s%s%s",
             *PQgetvalue(r, 0, 0) ? " WITH (" : "", PQgetvalue(r, 0, 0),
             *PQgetvalue(r, 0, 0) ? ")" : "");
    PQclear(r);
    must(c, sql, PGRES_COMMAND_OK);
    PQclear(PQprepare(c, "ins",
                      "INSERT INTO raw_balances VALUES($1, $2, $3, 'open', "
                      "$4, $5)",
                      0, NULL));
    PQclear(PQprepare(c, "upd",
                      "UPDATE raw_balances SET balance = $1, version = $2, "
                      "updated_at = $3 WHERE account_id = $4",
                      0, NULL));
    PQenterPipelineMode(c);
    int64_t t0 = stele_mono_ns();
    long pending = 0;
    for (long i = 0; i < n; i++) {
        if (i % 1000 == 0)
            PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        char id[32], bal[24], ver[24], ts[24];
        snprintf(id, sizeof id, "acc-%ld", i % accounts);
        snprintf(bal, sizeof bal, "%ld", i / accounts);
        snprintf(ver, sizeof ver, "%ld", i / accounts + 1);
        snprintf(ts, sizeof ts, "%lld", (long long)stele_now_ms());
        if (i < accounts) {
            const char *v[] = {id, id, "0", ver, ts};
            PQsendQueryPrepared(c, "ins", 5, v, NULL, NULL, 0);
        } else {
            const char *v[] = {bal, ver, ts, id};
            PQsendQueryPrepared(c, "upd", 4, v, NULL, NULL, 0);
        }
        pending++;
        if (i % 1000 == 999 || i == n - 1) {
            PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
            PQpipelineSync(c);
            /* read every result of the transaction and its sync */
            for (;;) {
                PGresult *res = PQgetResult(c);
                if (!res)
                    continue;
                ExecStatusType st = PQresultStatus(res);
                PQclear(res);
                if (st == PGRES_PIPELINE_SYNC)
                    break;
                if (st == PGRES_FATAL_ERROR)
                    die("raw libpq", PQerrorMessage(c));
            }
            pending = 0;
        }
    }
    int64_t t1 = stele_mono_ns();
    PQexitPipelineMode(c);
    PQfinish(c);
    return (double)n / secs(t1 - t0);
}

static volatile sig_atomic_t stop_host;

static void *host_thread(void *arg)
{
    stele_err err = {0};
    if (stele_engine_run(arg, &stop_host, &err))
        fprintf(stderr, "bench_pg: host: %s\n", err.msg);
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    long accounts = argc > 2 ? atol(argv[2]) : 10000;
    uint32_t rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        die("getrandom", NULL);
    snprintf(db, sizeof db, "bench%08x", rnd);
    snprintf(conninfo, sizeof conninfo, SERVER " dbname=%s", db);
    snprintf(dir, sizeof dir, "/tmp/stele-bench-pg-XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    admin(sql);

    /* 1. events on the embedded log, projected into PostgreSQL */
    const char *agg[] = {PLUGINS "bank_account.so", NULL};
    const char *proj[] = {PLUGINS "bank_account.so", PLUGINS "bank_balances.so",
                          NULL};
    stele_config *cfg = config("embedded", "sqlite", agg);
    stele_engine *e;
    stele_err err = {0};
    size_t did;
    stele_log *log;
    if (stele_engine_open(cfg, &e, &err))
        die("engine", err.msg);
    if (stele_log_open_sqlite(cfg->log_path, &log, &err))
        die("log", err.msg);
    submit(e, log, cfg->schemas_dir, accounts, n);
    stele_log_close(log);
    if (stele_engine_drain(e, &did, &err))
        die("drain", err.msg);
    stele_engine_close(e);
    stele_config_free(cfg);
    cfg = config("embedded", "sqlite", proj);
    if (stele_engine_open(cfg, &e, &err))
        die("engine", err.msg);
    int64_t t0 = stele_mono_ns();
    if (stele_engine_catch_up(e, &did, &err))
        die("project", err.msg);
    int64_t t1 = stele_mono_ns();
    stele_engine_stats st;
    stele_engine_stats_get(e, &st);
    stele_engine_close(e);
    stele_config_free(cfg);
    double project = (double)st.events_projected / secs(t1 - t0);
    double raw = raw_libpq(accounts, n);

    /* 2. the PostgreSQL event store: commands in, events appended */
    cfg = config("pglog", "postgres", agg);
    if (stele_engine_open(cfg, &e, &err))
        die("engine on the PostgreSQL log", err.msg);
    if (stele_log_open_postgres(conninfo, &log, &err))
        die("log", err.msg);
    submit(e, log, cfg->schemas_dir, accounts, n);
    stele_log_close(log);
    pthread_t host;
    int64_t t2 = stele_mono_ns();
    pthread_create(&host, NULL, host_thread, e);
    stele_engine_stats ast;
    int64_t last = t2;
    uint64_t seen = 0;
    for (;;) {
        usleep(20000);
        stele_engine_stats_get(e, &ast);
        if (ast.commands != seen) {
            seen = ast.commands;
            last = stele_mono_ns();
        }
        if (ast.commands >= (uint64_t)n || secs(stele_mono_ns() - last) > 30)
            break;
    }
    int64_t t3 = last;
    stop_host = 1;
    pthread_join(host, NULL);
    stele_engine_stats_get(e, &ast);
    stele_engine_close(e);
    stele_config_free(cfg);

    printf("stele with PostgreSQL 15 on this machine, %ld events, %ld "
           "accounts\n",
           n, accounts);
    printf("%-10s %9" PRIu64 " events  %8.3f s  %9.0f events/s  (target "
           "60000)\n",
           "project", st.events_projected, secs(t1 - t0), project);
    printf("%-10s %9ld upserts %19.0f upserts/s (pipeline, 1,000 per "
           "transaction)\n",
           "raw libpq", n, raw);
    printf("%-10s %28.2f x raw libpq\n", "ratio", project / raw);
    printf("%-10s %9" PRIu64 " events  %8.3f s  %9.0f events/s  (target "
           "30000; %" PRIu64 " commands, %" PRIu64 " transactions)\n",
           "append", ast.events_written, secs(t3 - t2),
           (double)ast.events_written / secs(t3 - t2), ast.commands,
           ast.transactions);
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db);
    admin(sql);
    snprintf(sql, sizeof sql, "rm -rf '%s'", dir);
    return system(sql) == 0 ? 0 : 1;
}

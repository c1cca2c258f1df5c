/*
 * bench_engine — the engine on the embedded SQLite log with the bank
 * example, against raw SQLite inserts of the same records in the same run.
 *
 *   bench_engine [ACCOUNTS] [COMMANDS] [RESTORE_STATES]
 *   defaults:     10000      200000     100000
 *
 * Prints one table:
 *   submit      commands appended to the commands topic (1,000 per txn)
 *   process     commands decided and committed: events + state + result +
 *               offsets, one transaction per batch of 1,000
 *   end-to-end  submit + process
 *   raw sqlite  the same records (command, event, state, result) inserted
 *               into plain SQLite tables, 1,000 commands per transaction
 *   project     the balances projector catching up on every event
 *   restore     RESTORE_STATES cached states restored at start (time, peak
 *               RSS of a process that does only that)
 *   isolation   process (decide and evolve in the plugin worker,
 *               engine.isolation: process) against none (in the host), the
 *               same commands on a log of their own: commands/s and
 *               microseconds per command of each, and the difference
 *   ping-pong   a bare socketpair round trip between two processes: the
 *               floor under the worker's cost on this machine
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/codec.h"
#include "common/util.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/guard.h"
#include "log/log.h"

#define PLUGINS STELE_BUILD_DIR "/plugins/"

static char dir[256];

static void die(const char *what, const stele_err *err)
{
    fprintf(stderr, "bench_engine: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static stele_config *config_for(const char *name, const char *const *plugins,
                                bool isolated)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write config", NULL);
    fprintf(f,
            "app: bank\ndata_dir: %s/%s\nschemas: %s/schemas\n"
            "log:\n  partitions: 4\n"
            "engine:\n  command_batch: 1000\n  projection_batch: 2000\n"
            "  isolation: %s\n"
            "logging:\n  level: warn\nplugins:\n",
            dir, name, STELE_SOURCE_DIR, isolated ? "process" : "none");
    for (size_t i = 0; plugins[i]; i++)
        fprintf(f, "  - %s\n", plugins[i]);
    fclose(f);
    stele_config *cfg;
    stele_err err = {0};
    if (stele_config_load(path, &cfg, &err) != 0)
        die("config", &err);
    return cfg;
}

/* Appends commands straight to the commands topic: `accounts` OpenAccount
 * then deposits and withdrawals round-robin over the accounts. */
static void submit(stele_config *cfg, long accounts, long commands)
{
    stele_log *log;
    stele_registry *reg;
    stele_codec *codec;
    stele_err err = {0};
    stele_engine *e; /* opening it creates the topics */
    if (stele_engine_open(cfg, &e, &err))
        die("engine", &err);
    stele_engine_close(e);
    if (stele_log_open_sqlite(cfg->log_path, &log, &err) ||
        stele_registry_open_embedded(log, &reg, &err) ||
        stele_codec_new(cfg->schemas_dir, reg, &codec, &err))
        die("open log", &err);
    const stele_schema *open_s, *dep_s, *wd_s;
    if (stele_codec_schema(codec, "bank.OpenAccount", 1, &open_s, &err) ||
        stele_codec_schema(codec, "bank.Deposit", 1, &dep_s, &err) ||
        stele_codec_schema(codec, "bank.Withdraw", 1, &wd_s, &err))
        die("schemas", &err);
    avro_value_t open_v, dep_v, wd_v, field;
    stele_codec_value_new(open_s, &open_v, &err);
    stele_codec_value_new(dep_s, &dep_v, &err);
    stele_codec_value_new(wd_s, &wd_v, &err);
    stele_buf buf = {0};
    stele_log_txn *txn = NULL;
    for (long i = 0; i < commands; i++) {
        if (i % 1000 == 0) {
            if (txn && stele_log_txn_commit(txn, &err))
                die("commit", &err);
            if (stele_log_txn_begin(log, &txn, &err))
                die("begin", &err);
        }
        char id[32], cid[32];
        long acc = i % accounts;
        snprintf(id, sizeof id, "acc-%ld", acc);
        snprintf(cid, sizeof cid, "cmd-%ld", i);
        const stele_schema *s;
        avro_value_t *v;
        if (i < accounts) {
            s = open_s;
            v = &open_v;
            avro_value_get_by_name(v, "owner", &field, NULL);
            avro_value_set_string(&field, id);
            avro_value_get_by_name(v, "initial_deposit", &field, NULL);
            avro_value_set_long(&field, 1000);
        } else {
            bool dep = (i / accounts) % 2 == 1;
            s = dep ? dep_s : wd_s;
            v = dep ? &dep_v : &wd_v;
            avro_value_get_by_name(v, "amount", &field, NULL);
            avro_value_set_long(&field, 10);
        }
        if (stele_codec_encode(codec, s, v, &buf, &err))
            die("encode", &err);
        stele_log_header h = {"command_id", cid, strlen(cid)};
        stele_log_record r = {.timestamp_ms = stele_now_ms(),
                              .key = id,
                              .key_len = strlen(id),
                              .value = buf.data,
                              .value_len = buf.len,
                              .headers = &h,
                              .n_headers = 1};
        if (stele_log_txn_produce(txn, "bank.Account.commands", -1, &r, NULL,
                                  &err))
            die("produce", &err);
    }
    if (txn && stele_log_txn_commit(txn, &err))
        die("commit", &err);
    avro_value_decref(&open_v);
    avro_value_decref(&dep_v);
    avro_value_decref(&wd_v);
    stele_buf_free(&buf);
    stele_codec_free(codec);
    stele_registry_close(reg);
    stele_log_close(log);
}

static void drain(stele_config *cfg, stele_engine_stats *st)
{
    stele_engine *e;
    stele_err err = {0};
    size_t did;
    /* Guarded as stele run is: the cost of recording each plugin call. */
    if (stele_engine_open(cfg, &e, &err) || stele_guard_open(cfg, NULL, &err) ||
        stele_engine_drain(e, &did, &err))
        die("engine", &err);
    stele_engine_stats_get(e, st);
    stele_engine_close(e);
    stele_guard_close();
}

/* The baseline: per command one command row, one event row, one state
 * upsert and one result upsert, in plain SQLite tables, WAL, 1,000
 * commands per transaction — what the engine writes, without the engine. */
static double raw_sqlite(long accounts, long commands)
{
    char path[512];
    snprintf(path, sizeof path, "%s/raw.db", dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                 "CREATE TABLE cmds(p INT, o INT, k BLOB, v BLOB, h BLOB,"
                 " PRIMARY KEY(p, o)) WITHOUT ROWID;"
                 "CREATE TABLE events(p INT, o INT, k BLOB, v BLOB, h BLOB,"
                 " PRIMARY KEY(p, o)) WITHOUT ROWID;"
                 "CREATE TABLE states(k BLOB PRIMARY KEY, v BLOB, h BLOB)"
                 " WITHOUT ROWID;"
                 "CREATE TABLE results(k BLOB PRIMARY KEY, v BLOB)"
                 " WITHOUT ROWID;",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins_cmd, *ins_ev, *up_state, *up_res;
    sqlite3_prepare_v2(db, "INSERT INTO cmds VALUES(?,?,?,?,?)", -1, &ins_cmd,
                       NULL);
    sqlite3_prepare_v2(db, "INSERT INTO events VALUES(?,?,?,?,?)", -1, &ins_ev,
                       NULL);
    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO states VALUES(?,?,?)", -1,
                       &up_state, NULL);
    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO results VALUES(?,?)", -1,
                       &up_res, NULL);
    char value[24] = {0}, headers[160] = {0}, result[160] = {0};
    memset(headers, 'h', sizeof headers - 1);
    memset(result, 'r', sizeof result - 1);
    int64_t t0 = stele_mono_ns();
    for (long i = 0; i < commands; i++) {
        if (i % 1000 == 0) {
            if (i)
                sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        }
        char id[32];
        snprintf(id, sizeof id, "acc-%ld", i % accounts);
        int p = (int)(i % 4);
        sqlite3_stmt *st[] = {ins_cmd, ins_ev};
        for (int j = 0; j < 2; j++) {
            sqlite3_bind_int(st[j], 1, p);
            sqlite3_bind_int64(st[j], 2, i);
            sqlite3_bind_blob(st[j], 3, id, (int)strlen(id), SQLITE_STATIC);
            sqlite3_bind_blob(st[j], 4, value, sizeof value, SQLITE_STATIC);
            sqlite3_bind_blob(st[j], 5, headers, sizeof headers, SQLITE_STATIC);
            sqlite3_step(st[j]);
            sqlite3_reset(st[j]);
        }
        sqlite3_bind_blob(up_state, 1, id, (int)strlen(id), SQLITE_STATIC);
        sqlite3_bind_blob(up_state, 2, value, sizeof value, SQLITE_STATIC);
        sqlite3_bind_blob(up_state, 3, headers, 20, SQLITE_STATIC);
        sqlite3_step(up_state);
        sqlite3_reset(up_state);
        char cid[32];
        snprintf(cid, sizeof cid, "cmd-%ld", i);
        sqlite3_bind_blob(up_res, 1, cid, (int)strlen(cid), SQLITE_STATIC);
        sqlite3_bind_blob(up_res, 2, result, sizeof result, SQLITE_STATIC);
        sqlite3_step(up_res);
        sqlite3_reset(up_res);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    int64_t t1 = stele_mono_ns();
    sqlite3_finalize(ins_cmd);
    sqlite3_finalize(ins_ev);
    sqlite3_finalize(up_state);
    sqlite3_finalize(up_res);
    sqlite3_close(db);
    return (double)commands / secs(t1 - t0);
}

/* In a child process, so its peak RSS is that of the restore alone. */
static void restore_child(stele_config *cfg, long states)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        die("pipe", NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        int64_t t0 = stele_mono_ns();
        stele_engine_stats st;
        drain(cfg, &st);
        double t = secs(stele_mono_ns() - t0);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        char line[128];
        int n = snprintf(line, sizeof line, "%" PRIu64 " %.3f %ld\n",
                         st.states_restored, t, ru.ru_maxrss);
        if (write(pipefd[1], line, (size_t)n) != n)
            _exit(1);
        _exit(0);
    }
    close(pipefd[1]);
    char line[128] = {0};
    ssize_t n = read(pipefd[0], line, sizeof line - 1);
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    unsigned long long restored = 0;
    double t = 0;
    long rss = 0;
    if (n <= 0 || sscanf(line, "%llu %lf %ld", &restored, &t, &rss) != 3)
        die("restore child failed", NULL);
    printf("%-12s %10llu states  %8.3f s  %10.0f states/s   peak RSS %.1f MiB "
           "(target: %ld states)\n",
           "restore", restored, t, (double)restored / t, (double)rss / 1024.0,
           states);
}

/* One 64-byte message to a child process and back over a socketpair,
 * averaged over n: what any worker round trip costs on this machine. */
static double ping_pong_us(int n)
{
    int sv[2];
    char b[64] = {0};
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        while (read(sv[1], b, sizeof b) == (ssize_t)sizeof b)
            if (write(sv[1], b, sizeof b) != (ssize_t)sizeof b)
                break;
        _exit(0);
    }
    close(sv[1]);
    int64_t t0 = stele_mono_ns();
    for (int i = 0; i < n; i++)
        if (write(sv[0], b, sizeof b) != (ssize_t)sizeof b ||
            read(sv[0], b, sizeof b) != (ssize_t)sizeof b)
            break;
    int64_t t1 = stele_mono_ns();
    close(sv[0]);
    waitpid(pid, NULL, 0);
    return (double)(t1 - t0) / 1000.0 / n;
}

int main(int argc, char **argv)
{
    long accounts = argc > 1 ? atol(argv[1]) : 10000;
    long commands = argc > 2 ? atol(argv[2]) : 200000;
    long states = argc > 3 ? atol(argv[3]) : 100000;
    snprintf(dir, sizeof dir, "/tmp/stele-bench-XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);

    const char *agg_only[] = {PLUGINS "bank_account.so", NULL};
    const char *with_proj[] = {PLUGINS "bank_account.so",
                               PLUGINS "bank_balances.so", NULL};
    stele_config *cfg = config_for("main", agg_only, false);
    int64_t t0 = stele_mono_ns();
    submit(cfg, accounts, commands);
    int64_t t1 = stele_mono_ns();
    stele_engine_stats st;
    drain(cfg, &st);
    int64_t t2 = stele_mono_ns();
    stele_config_free(cfg);

    cfg = config_for("main", with_proj, false);
    /* Projectors only: the clock covers their catch-up, not the host
     * restoring states for commands. */
    stele_engine_stats pst;
    stele_engine *pe;
    stele_err perr = {0};
    size_t pdid;
    if (stele_engine_open(cfg, &pe, &perr) ||
        stele_guard_open(cfg, NULL, &perr))
        die("engine", &perr);
    int64_t t3 = stele_mono_ns();
    if (stele_engine_catch_up(pe, &pdid, &perr))
        die("project", &perr);
    int64_t t4 = stele_mono_ns();
    stele_engine_stats_get(pe, &pst);
    stele_engine_close(pe);
    stele_guard_close();
    stele_config_free(cfg);

    double raw = raw_sqlite(accounts, commands);
    double process = (double)st.commands / secs(t2 - t1);
    uint64_t processed = st.commands; /* st is reused below */
    printf("bank example, embedded SQLite log, %ld accounts, %ld commands "
           "(%" PRIu64 " accepted, %" PRIu64 " rejected, %" PRIu64 " events)\n",
           accounts, commands, st.accepted, st.rejected, st.events_written);
    printf("%-12s %10ld cmds    %8.3f s  %10.0f cmds/s\n", "submit", commands,
           secs(t1 - t0), (double)commands / secs(t1 - t0));
    printf("%-12s %10" PRIu64 " cmds    %8.3f s  %10.0f cmds/s  (target "
           "50000)\n",
           "process", st.commands, secs(t2 - t1), process);
    printf("%-12s %10ld cmds    %8.3f s  %10.0f cmds/s\n", "end-to-end",
           commands, secs(t2 - t0), (double)commands / secs(t2 - t0));
    printf("%-12s %10ld cmds    %21.0f cmds/s  (command+event+state+result "
           "rows)\n",
           "raw sqlite", commands, raw);
    printf("%-12s %21.2f x raw sqlite\n", "ratio", process / raw);
    printf("%-12s %10" PRIu64 " events  %8.3f s  %10.0f events/s  (target "
           "100000)\n",
           "project", pst.events_projected, secs(t4 - t3),
           (double)pst.events_projected / secs(t4 - t3));

    /* 100,000 states: open that many accounts, then restore them. */
    cfg = config_for("restore", agg_only, false);
    submit(cfg, states, states);
    drain(cfg, &st);
    restore_child(cfg, states);
    stele_config_free(cfg);

    /* The same commands with the plugin worker: what isolation costs. */
    cfg = config_for("isolated", agg_only, true);
    submit(cfg, accounts, commands);
    stele_engine_stats ist;
    int64_t t5 = stele_mono_ns();
    drain(cfg, &ist);
    int64_t t6 = stele_mono_ns();
    stele_config_free(cfg);
    double us_none = secs(t2 - t1) * 1e6 / (double)processed;
    double us_proc = secs(t6 - t5) * 1e6 / (double)ist.commands;
    printf("%-12s %10" PRIu64 " cmds    %8.3f s  %10.0f cmds/s  %6.2f "
           "us/cmd  (engine.isolation: none)\n",
           "in-process", processed, secs(t2 - t1), process, us_none);
    printf("%-12s %10" PRIu64 " cmds    %8.3f s  %10.0f cmds/s  %6.2f "
           "us/cmd  (engine.isolation: process)\n",
           "isolated", ist.commands, secs(t6 - t5),
           (double)ist.commands / secs(t6 - t5), us_proc);
    printf("%-12s %21.2f us/cmd more, %.2f x the in-process time\n",
           "isolation", us_proc - us_none, us_proc / us_none);
    printf("%-12s %21.2f us a round trip of 64 bytes on a socketpair "
           "between two processes (the floor of one command's trip to the "
           "worker)\n",
           "ping-pong", ping_pong_us(20000));

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}

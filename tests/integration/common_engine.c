/* The engine integration tests' shared harness (see common_engine.h). */
#include "common_engine.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/map.h"
#include "common/util.h"

#define STELE STELE_BUILD_DIR "/stele"

void ce_init(ce_fixture *f, const char *dir_prefix)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/%s-XXXXXX", dir_prefix);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->config, sizeof f->config, "%s/stele.yaml", f->dir);
    uint32_t r;
    assert_int_equal(getrandom(&r, sizeof r, 0), (ssize_t)sizeof r);
    snprintf(f->app, sizeof f->app, "it%08x", r);
    f->partitions = 6;
}

void ce_write_config(ce_fixture *f, const char *text)
{
    FILE *out = fopen(f->config, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
}

void ce_open(ce_fixture *f)
{
    stele_err err = {0};
    if (stele_config_load(f->config, &f->cfg, &err) != 0)
        fail_msg("config: %s", err.msg);
    if (stele_engine_open(f->cfg, &f->e, &err) != 0)
        fail_msg("open: %s", err.msg);
}

void ce_stop_host(ce_fixture *f, int i, int sig)
{
    if (f->hosts[i] <= 0)
        return;
    kill(f->hosts[i], sig);
    int status;
    waitpid(f->hosts[i], &status, 0);
    f->hosts[i] = 0;
}

/* Where host i's output goes. */
static void host_log_path(const ce_fixture *f, int i, char *out, size_t size)
{
    snprintf(out, size, "%s/host%d.log", f->dir, i);
}

/* Whether a host's output holds a sanitizer's report (ASan, UBSan). */
static bool host_log_has_sanitizer_report(const ce_fixture *f)
{
    bool found = false;
    for (int i = 0; i < CE_MAX_HOSTS && !found; i++) {
        char path[sizeof f->dir + 32];
        host_log_path(f, i, path, sizeof path);
        char line[1024];
        FILE *in = fopen(path, "r");
        while (in && !found && fgets(line, sizeof line, in))
            found = strstr(line, "Sanitizer") || strstr(line, "runtime error:");
        if (in)
            fclose(in);
    }
    return found;
}

void ce_cleanup(ce_fixture *f)
{
    for (int i = 0; i < CE_MAX_HOSTS; i++)
        ce_stop_host(f, i, SIGKILL);
    /* The hosts' exit status is not looked at (they are killed): a
     * sanitizer's report in their output fails the test instead. */
    if (host_log_has_sanitizer_report(f)) {
        ce_dump_hosts(f, 0);
        fail_msg("a host reported a sanitizer error (above)");
    }
    stele_engine_close(f->e);
    stele_config_free(f->cfg);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
}

void ce_start_host(ce_fixture *f, int i)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Each host's output in its own file, appended across restarts:
         * the test's output stays readable, and ce_dump_hosts shows it
         * when a test fails. */
        char path[sizeof f->dir + 32];
        host_log_path(f, i, path, sizeof path);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(STELE, STELE, "run", "-c", f->config, (char *)NULL);
        _exit(127);
    }
    f->hosts[i] = pid;
}

void ce_dump_hosts(const ce_fixture *f, int lines)
{
    for (int i = 0; i < CE_MAX_HOSTS; i++) {
        char path[sizeof f->dir + 32];
        host_log_path(f, i, path, sizeof path);
        char cmd[sizeof path + 64];
        if (access(path, R_OK) != 0)
            continue;
        fprintf(stderr, "---- %s host %d wrote (%s):\n",
                lines ? "the last lines" : "what", i, path);
        fflush(stderr);
        if (lines)
            snprintf(cmd, sizeof cmd, "tail -n %d '%s' >&2", lines, path);
        else
            snprintf(cmd, sizeof cmd, "cat '%s' >&2", path);
        if (system(cmd) != 0)
            fprintf(stderr, "(could not read it)\n");
        fprintf(stderr, "----\n");
    }
}

void ce_submit(ce_fixture *f, const char *type, const char *id,
               const char *data, const char *command_id, stele_submitted *s)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"type\":\"%s\",\"aggregate_id\":\"%s\",\"data\":%s%s%s%s}",
             type, id, data, command_id ? ",\"command_id\":\"" : "",
             command_id ? command_id : "", command_id ? "\"" : "");
    json_t *cmd = json_loads(text, 0, NULL);
    assert_non_null(cmd);
    stele_err err = {0};
    int rc;
    /* A server restarted under the test breaks the test's own connection
     * too: the first call after it fails as retriable, the next
     * reconnects. */
    for (int tries = 0;; tries++) {
        rc = stele_engine_submit_json(f->e, cmd, s, &err);
        if ((rc != STELE_ERETRY && rc != STELE_EIO) || tries == 50)
            break;
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    json_decref(cmd);
    if (rc != 0)
        CE_FAIL(f, "submit: %s", err.msg);
}

json_t *ce_wait(ce_fixture *f, const stele_submitted *s)
{
    json_t *r = NULL;
    stele_err err = {0};
    if (stele_engine_wait_result(f->e, s, 60000, &r, &err) != 0)
        CE_FAIL(f, "wait %s: %s", s->command_id, err.msg);
    return r;
}

const char *ce_str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void audit_event(void *opaque, json_t *ev)
{
    ce_audit_result *a = opaque;
    const char *id = ce_str(ev, "aggregate_id");
    intptr_t version =
        (intptr_t)json_integer_value(json_object_get(ev, "version"));
    intptr_t last = (intptr_t)stele_map_gets(a->versions, id);
    if (version != last + 1 && !a->broken) {
        a->broken = true;
        snprintf(a->why, sizeof a->why, "%s: version %ld after %ld", id,
                 (long)version, (long)last);
    }
    stele_map_put(a->versions, id, strlen(id), (void *)version, NULL);
    const char *cause = ce_str(ev, "causation_id");
    intptr_t n = (intptr_t)stele_map_gets(a->causes, cause);
    stele_map_put(a->causes, cause, strlen(cause), (void *)(n + 1), NULL);
    if (n + 1 > 1 && !a->broken) {
        a->broken = true;
        snprintf(a->why, sizeof a->why, "command %s has events twice", cause);
    }
    a->events++;
    if (strcmp(ce_str(ev, "type"), "bank.Deposited") == 0)
        a->deposits++;
    json_decref(ev);
}

void ce_audit(ce_fixture *f, ce_audit_result *a)
{
    *a = (ce_audit_result){.versions = stele_map_new(),
                           .causes = stele_map_new()};
    stele_err err = {0};
    if (stele_engine_events(f->e, "Account", NULL, 0, audit_event, a, &err) !=
        0)
        fail_msg("events: %s", err.msg);
}

void ce_expect_events(ce_fixture *f, size_t events, size_t aggregates)
{
    ce_audit_result a;
    ce_audit(f, &a);
    if (a.broken)
        CE_FAIL(f, "%s", a.why);
    if (a.events != events ||
        (aggregates && stele_map_count(a.versions) != aggregates))
        CE_FAIL(f,
                "the log holds %zu events of %zu aggregates; want %zu of "
                "%zu",
                a.events, stele_map_count(a.versions), events, aggregates);
    ce_audit_free(&a);
}

void ce_audit_free(ce_audit_result *a)
{
    stele_map_free(a->versions, NULL);
    stele_map_free(a->causes, NULL);
}

/* Sends the load: opens, then deposits of 1 round-robin, with command ids
 * the audit can check. Kills host `victim` halfway when victim >= 0, and
 * runs `midway` (a shell command) halfway when not NULL. */
void ce_load(ce_fixture *f, int victim, const char *midway)
{
    stele_submitted s;
    for (int i = 0; i < CE_ACCOUNTS; i++) {
        char id[16], cid[32];
        snprintf(id, sizeof id, "acc-%d", i);
        snprintf(cid, sizeof cid, "open-%d", i);
        ce_submit(f, "bank.OpenAccount", id, "{\"owner\":\"X\"}", cid, &s);
    }
    for (int i = 0; i < CE_DEPOSITS; i++) {
        char id[16], cid[32];
        snprintf(id, sizeof id, "acc-%d", i % CE_ACCOUNTS);
        snprintf(cid, sizeof cid, "dep-%d", i);
        ce_submit(f, "bank.Deposit", id, "{\"amount\":1}", cid, &s);
        if (i == CE_DEPOSITS / 2) {
            if (victim >= 0)
                ce_stop_host(f, victim, SIGKILL);
            if (midway && system(midway) != 0)
                CE_FAIL(f, "%s failed", midway);
        }
        if (i % 100 == 0) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* Waits until every command has its result, then checks the events. */
void ce_expect_exactly_once(ce_fixture *f)
{
    stele_log *log = NULL;
    stele_err err = {0};
    if (f->open_log(f, &log, &err) != 0)
        fail_msg("open the log: %s", err.msg);
    char results[64];
    snprintf(results, sizeof results, "%s.Account.results", f->app);
    /* every command id answered, within a bounded time */
    int64_t deadline = stele_mono_ns() + 120LL * 1000000000;
    for (int i = 0; i < CE_ACCOUNTS + CE_DEPOSITS; i++) {
        char cid[32], id[16];
        if (i < CE_ACCOUNTS) {
            snprintf(cid, sizeof cid, "open-%d", i);
            snprintf(id, sizeof id, "acc-%d", i);
        } else {
            snprintf(cid, sizeof cid, "dep-%d", i - CE_ACCOUNTS);
            snprintf(id, sizeof id, "acc-%d", (i - CE_ACCOUNTS) % CE_ACCOUNTS);
        }
        int32_t p = stele_partition_for_key(id, strlen(id), f->partitions);
        for (;;) {
            stele_log_batch *b = NULL;
            assert_int_equal(stele_log_compacted_sync(log, results, p, &err),
                             0);
            int rc = stele_log_get_latest(log, results, p, cid, strlen(cid), &b,
                                          &err);
            if (rc == 0) {
                json_t *r = json_loadb(b->records[0].value,
                                       b->records[0].value_len, 0, NULL);
                if (strcmp(ce_str(r, "status"), "accepted") != 0)
                    CE_FAIL(f, "%s: %s", cid, ce_str(r, "message"));
                json_decref(r);
                stele_log_batch_free(b);
                break;
            }
            assert_int_equal(rc, STELE_ENOTFOUND);
            if (stele_mono_ns() > deadline)
                CE_FAIL(f, "command %s (%d of %d) has no result after 120 s",
                        cid, i + 1, CE_ACCOUNTS + CE_DEPOSITS);
            sleep(1);
        }
    }
    stele_log_close(log);
    /* Every result is in, but the events of a command may not be readable
     * yet: a host killed in the middle of a transaction leaves it open
     * until the broker aborts it (transaction.timeout.ms), and until then
     * a read_committed reader stops before it on the partitions it wrote
     * — events already committed after it by the partition's new owner
     * included. So the audit is read again until every event shows; what
     * it finds broken (a gap, a repeat) fails at once. */
    ce_audit_result a;
    for (;;) {
        ce_audit(f, &a);
        if (a.broken)
            CE_FAIL(f, "%s", a.why);
        if (a.events >= CE_ACCOUNTS + CE_DEPOSITS || stele_mono_ns() > deadline)
            break;
        ce_audit_free(&a);
        sleep(1);
    }
    if (a.events != CE_ACCOUNTS + CE_DEPOSITS || a.deposits != CE_DEPOSITS ||
        stele_map_count(a.versions) != CE_ACCOUNTS)
        CE_FAIL(f,
                "the log holds %zu events (%zu deposits) of %zu aggregates; "
                "want %d (%d) of %d",
                a.events, a.deposits, stele_map_count(a.versions),
                CE_ACCOUNTS + CE_DEPOSITS, CE_DEPOSITS, CE_ACCOUNTS);
    ce_audit_free(&a);
}

/*
 * The plugin worker (worker.h): the host's side (starting it, one
 * request and answer per call, its deaths) and the worker's (its loop).
 *
 * Messages are frames on a SOCK_STREAM socketpair: a 4-byte length, then
 * fields of fixed width or length-prefixed bytes (strings carry their
 * NUL). Values are the codec's wire format in the schemas the plugin
 * declares, so the worker decodes them without asking the registry (it
 * must not: it shares the host's connections, which only the host uses).
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "worker_wire.h"

#define START_TIMEOUT_MS 10000
#define START_RETRY_MAX_MS 30000
#define REBUILD_LIMIT 3 /* deaths on one record when the crash limit is 0 */
#define TICK_MS 20

struct engine_worker {
    stele_engine *e;
    pid_t pid; /* 0: none running */
    int fd;
    volatile uint32_t *phase; /* shared with the worker: its current call */
    stele_buf req, ans, state;
    int start_failures;
    int64_t retry_at_ns;
};

/* How a worker died, for the count and the messages. */
typedef struct death {
    int wstatus;
    int64_t killed_after_ms; /* > 0: the host killed it */
    bool stopping;
    char why[128];
} death;

int worker_new(stele_engine *e, engine_worker **out, stele_err *err)
{
    engine_worker *w = calloc(1, sizeof *w);
    if (!w)
        return stele_err_set(err, STELE_ENOMEM, "out of memory");
    void *p = mmap(NULL, sizeof(uint32_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(w);
        return stele_err_set(err, STELE_EIO, "plugin worker: mmap: %s",
                             strerror(errno));
    }
    w->e = e;
    w->fd = -1;
    w->phase = p;
    *out = w;
    return 0;
}

/* Ends the worker, if it has not ended, and reaps it: *wstatus how. */
static void reap(engine_worker *w, bool kill_it, int *wstatus)
{
    int st = 0;
    if (w->pid > 0) {
        if (kill_it)
            kill(w->pid, SIGKILL);
        while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->pid = 0;
    if (wstatus)
        *wstatus = st;
}

void worker_free(engine_worker *w)
{
    if (!w)
        return;
    if (w->pid > 0) {
        /* Its socket closed, an idle worker exits; a busy one is not
         * waited for. */
        close(w->fd);
        w->fd = -1;
        int st;
        pid_t got = 0;
        for (int i = 0; i < 50 && (got = waitpid(w->pid, &st, WNOHANG)) == 0;
             i++) {
            struct timespec ts = {0, 2 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (got == 0)
            reap(w, true, NULL);
        w->pid = 0;
    }
    munmap((void *)w->phase, sizeof(uint32_t));
    stele_buf_free(&w->req);
    stele_buf_free(&w->ans);
    stele_buf_free(&w->state);
    free(w);
}

static void describe_death(const death *d, char *why, size_t size)
{
    int sig = WIFSIGNALED(d->wstatus) ? WTERMSIG(d->wstatus) : 0;
    const char *abbrev = sig ? sigabbrev_np(sig) : NULL;
    if (d->killed_after_ms > 0 && d->stopping)
        snprintf(why, size,
                 "still running %lld ms into a stop (SIGTERM): "
                 "killed",
                 (long long)d->killed_after_ms);
    else if (d->killed_after_ms > 0)
        snprintf(why, size, "timed out after %lld ms: killed",
                 (long long)d->killed_after_ms);
    else if (abbrev)
        snprintf(why, size, "SIG%s", abbrev);
    else if (sig)
        snprintf(why, size, "signal %d", sig);
    else
        snprintf(why, size, "exit(%d) during the call",
                 WEXITSTATUS(d->wstatus));
}

/* --- the worker's side ---------------------------------------------- */

static void serve(stele_engine *e, int fd, volatile uint32_t *phase);

/* Waits for a byte (the worker's "ready") until timeout_ms. */
static bool await_ready(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    char c;
    return n == 1 && read(fd, &c, 1) == 1;
}

static int start(engine_worker *w, stele_err *err)
{
    stele_engine *e = w->e;
    if (w->pid > 0)
        return 0;
    int64_t now = stele_mono_ns();
    if (now < w->retry_at_ns)
        return stele_err_set(err, STELE_ERETRY,
                             "the plugin worker failed to start %d times in "
                             "a row: next try in %lld ms",
                             w->start_failures,
                             (long long)(w->retry_at_ns - now) / 1000000);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return stele_err_set(err, STELE_ERETRY,
                             "plugin worker: socketpair: "
                             "%s",
                             strerror(errno));
    /* What stdio holds would be written twice: by the host, and by a
     * worker that calls exit(). */
    fflush(NULL);
    pid_t host = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return stele_err_set(err, STELE_ERETRY, "plugin worker: fork: %s",
                             strerror(errno));
    }
    if (pid == 0) {
        close(sv[0]);
        /* A host gone however it went takes its worker along. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != host)
            _exit(0);
        /* A plugin's fault ends the worker by its signal: the host's
         * handlers (the guard's, a sanitizer's, a test framework's) are
         * for the host. */
        static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
            signal(fatal[i], SIG_DFL);
        signal(SIGINT, SIG_IGN); /* a terminal's ^C is the host's to handle */
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        serve(e, sv[1], w->phase);
        _exit(0);
    }
    close(sv[1]);
    w->pid = pid;
    w->fd = sv[0];
    if (await_ready(w->fd, START_TIMEOUT_MS)) {
        if (w->start_failures > 0)
            engine_logf(e, STELE_LOG_INFO,
                        "the plugin worker started "
                        "(pid %d) after %d failures",
                        (int)pid, w->start_failures);
        w->start_failures = 0;
        return 0;
    }
    death d = {0};
    reap(w, true, &d.wstatus);
    describe_death(&d, d.why, sizeof d.why);
    int shift = w->start_failures < 10 ? w->start_failures : 10;
    int64_t wait_ms = 100LL << shift;
    if (wait_ms > START_RETRY_MAX_MS)
        wait_ms = START_RETRY_MAX_MS;
    w->start_failures++;
    w->retry_at_ns = stele_mono_ns() + wait_ms * 1000000;
    engine_logf(e, STELE_LOG_ERROR,
                "the plugin worker (pid %d) died before it was ready (%s), "
                "%d times in a row: next try in %lld ms",
                (int)pid, d.why, w->start_failures, (long long)wait_ms);
    return stele_err_set(err, STELE_ERETRY,
                         "the plugin worker cannot be started: %s", d.why);
}

static void serve(stele_engine *e, int fd, volatile uint32_t *phase)
{
    /* The ULID generator carries on from the host's state: wait out the
     * millisecond of the fork, so the worker's first id draws a new
     * random part and never repeats one of the host's. */
    int64_t t0 = stele_now_ms();
    while (stele_now_ms() == t0) {
    }
    char ready = 'R';
    if (write(fd, &ready, 1) != 1)
        return;
    stele_buf in = {0}, out = {0};
    while (worker_wire_read(fd, &in, -1, NULL) == 0) {
        *phase = 0;
        worker_wire_serve(e, phase, &in, &out);
        if (worker_wire_send(fd, &out) != 0)
            break;
    }
    /* _exit, not exit: the host's atexit handlers are the host's. */
    _exit(0);
}

/* --- the host's side ------------------------------------------------- */

/* Sends w->req and waits for the answer into w->ans: 0, or 1 when the
 * worker died (d says how), or a negative status. */
static int exchange(engine_worker *w, death *d, stele_err *err)
{
    stele_engine *e = w->e;
    int rc;
    if ((rc = start(w, err)))
        return rc;
    *w->phase = 0;
    int64_t t0 = stele_mono_ns(), stop_ns = 0;
    int64_t limit_ms = e->cfg->plugin_timeout_ms;
    *d = (death){0};
    if (worker_wire_send(w->fd, &w->req) == 0) {
        for (;;) {
            rc = worker_wire_read(w->fd, &w->ans, TICK_MS, err);
            if (rc != STELE_ETIMEDOUT)
                break;
            int64_t now = stele_mono_ns();
            int64_t ms = (now - t0) / 1000000;
            if (!stop_ns && e->stop && *e->stop)
                stop_ns = now;
            if (stop_ns &&
                (now - stop_ns) / 1000000 >= e->cfg->shutdown_grace_ms) {
                d->stopping = true;
                d->killed_after_ms = ms > 0 ? ms : 1;
                break;
            }
            if (limit_ms > 0 && ms >= limit_ms) {
                d->killed_after_ms = ms;
                break;
            }
        }
        if (rc == 0 && !d->killed_after_ms)
            return 0;
        if (rc < 0 && rc != STELE_EIO && rc != STELE_ETIMEDOUT)
            return rc; /* a bad frame: the worker is not to be trusted */
    }
    reap(w, true, &d->wstatus);
    describe_death(d, d->why, sizeof d->why);
    return 1;
}

/* exchange until answered, counting deaths against c's command (or, for
 * a rebuild, its record): 0 with crash filled when they reach limit. */
static int call(engine_worker *w, aggregate *a, const engine_call *c,
                guard_call_kind what, unsigned limit, worker_crash *crash,
                stele_err *err)
{
    const char *id = what == GUARD_REBUILD ? a->def->type : c->command_id;
    unsigned deaths = 0;
    if (what != GUARD_REBUILD)
        deaths =
            guard_crashes(c->topic, c->partition, c->offset, id, NULL, NULL, 0);
    for (;;) {
        death d;
        int rc = exchange(w, &d, err);
        if (rc <= 0)
            return rc;
        uint32_t phase = *w->phase;
        guard_call_kind kind = phase == GUARD_EVOLVE ? GUARD_EVOLVE : what;
        unsigned n =
            guard_count_death(c->topic, c->partition, c->offset, id, kind,
                              d.wstatus, d.killed_after_ms, d.stopping);
        deaths = n ? n : deaths + 1;
        engine_logf(w->e, STELE_LOG_WARN,
                    "the plugin worker died during %s of %s %s "
                    "(%s[%d]@%lld): %s; death %u of %u, %s",
                    kind == GUARD_DECIDE ? "decide" : "evolve",
                    what == GUARD_REBUILD ? "a rebuild of" : "command", id,
                    c->topic, (int)c->partition, (long long)c->offset, d.why,
                    deaths, limit,
                    d.stopping                     ? "stopping"
                    : limit > 0 && deaths >= limit ? "giving up on it"
                                                   : "starting a new worker");
        if (d.stopping)
            return stele_err_set(err, STELE_ERETRY,
                                 "stopped: the plugin worker was killed in "
                                 "%s of %s",
                                 kind == GUARD_DECIDE ? "decide" : "evolve",
                                 id);
        if (limit > 0 && deaths >= limit) {
            crash->deaths = deaths;
            crash->kind = kind;
            snprintf(crash->why, sizeof crash->why, "%s", d.why);
            return 0;
        }
    }
}

int worker_decide(engine_worker *w, aggregate *a, const engine_call *c,
                  typed_values *tv, avro_value_t *cmd,
                  const stele_log_record *rec, const stele_state_entry *cur,
                  stele_decision *d, engine_decided *out,
                  const stele_buf **state, worker_crash *crash, stele_err *err)
{
    stele_engine *e = w->e;
    int rc =
        worker_wire_decide_request(e, a, c, tv, cmd, rec, cur, &w->req, err);
    if (rc == 0)
        rc = call(w, a, c, GUARD_DECIDE, (unsigned)e->cfg->plugin_crash_limit,
                  crash, err);
    if (rc != 0 || crash->deaths)
        return rc;
    return worker_wire_decide_answer(e, a, c, &w->ans, d, out, &w->state, state,
                                     err);
}

int worker_evolve_stored(engine_worker *w, aggregate *a, const void *state,
                         size_t state_len, const stele_event *evs, size_t n,
                         const engine_call *c, stele_err *err)
{
    stele_engine *e = w->e;
    int rc = worker_wire_evolve_request(e, a, state, state_len, evs, n, c,
                                        &w->req, err);
    unsigned limit = (unsigned)e->cfg->plugin_crash_limit;
    worker_crash crash = {0};
    if (rc == 0)
        rc = call(w, a, c, GUARD_REBUILD, limit ? limit : REBUILD_LIMIT, &crash,
                  err);
    if (rc != 0)
        return rc;
    if (crash.deaths)
        return stele_err_set(err, STELE_EPLUGIN,
                             "%s[%d]@%lld: the plugin worker died %u times "
                             "in evolve of it: %s",
                             c->topic, (int)c->partition, (long long)c->offset,
                             crash.deaths, crash.why);
    return worker_wire_evolve_answer(e, &w->ans, err);
}

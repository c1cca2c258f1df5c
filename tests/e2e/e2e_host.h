/*
 * e2e_host.h — what the crash tests (test_containment.c, test_isolation.c)
 * share: a `stele run` host started,
 * waited for until it owns the commands, and waited for when it ends.
 * Static functions: each e2e test is one program.
 */
#ifndef STELE_TEST_E2E_HOST_H
#define STELE_TEST_E2E_HOST_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "e2e.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts `stele run -c config` in dir, its stderr into errpath, and
 * returns once it owns the commands: it holds the group's lock (the
 * embedded log's ownership: host/log/sqlite/consumer.c); before, a sender
 * would decide a command itself. */
static pid_t start_host(const char *stele, const char *dir, const char *config,
                        const char *errpath)
{
    pid_t host = fork();
    if (host == 0) {
        if (chdir(dir) != 0 || !freopen(errpath, "w", stderr))
            _exit(126);
        execl(stele, stele, "run", "-c", config, (char *)NULL);
        _exit(127);
    }
    int64_t t0 = stele_mono_ns();
    while (e2e_run(NULL, "flock -n %s/data/log.db.bank.engine.lock true",
                   dir) == 0) {
        if (stele_mono_ns() - t0 > 5000 * 1000000LL)
            fail_msg("the host did not take the commands within 5 s");
        sleep_ms(20);
    }
    return host;
}

/* Sends SIGTERM to host and waits (5 s at most, then SIGKILL and fail)
 * for it to end: its wait status, and in *ms how long it took. */
static int stop_host(pid_t host, int64_t *ms)
{
    int64_t t0 = stele_mono_ns();
    assert_int_equal(kill(host, SIGTERM), 0);
    int status = 0;
    pid_t w;
    while ((w = waitpid(host, &status, WNOHANG)) == 0 &&
           stele_mono_ns() - t0 < 5000 * 1000000LL)
        sleep_ms(10);
    if (w == 0) {
        kill(host, SIGKILL);
        waitpid(host, &status, 0);
        fail_msg("the host did not end within 5 s of SIGTERM");
    }
    *ms = (stele_mono_ns() - t0) / 1000000;
    return status;
}

#endif

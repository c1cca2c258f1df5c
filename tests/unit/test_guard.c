/*
 * The guard's in-flight file (host/engine/guard.c): a death inside a
 * plugin call is counted at the next open, and a file or slot that is
 * torn or not the guard's is ignored with a warning, never trusted nor a
 * reason not to start.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/guard.h"

#define TOPIC "bank.Account.commands"

static char dir[256], path[320];
static stele_config cfg;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/stele-guard-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/inflight", dir);
    cfg = (stele_config){.data_dir = dir,
                         .log_level = "warn",
                         .plugin_crash_limit = 3,
                         .plugin_timeout_ms = 0,
                         .shutdown_grace_ms = 5000};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

/* stele_guard_open with its stderr caught into out. */
static void open_catching(char *out, size_t size)
{
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(errpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 2);
    stele_err err = {0};
    int rc = stele_guard_open(&cfg, NULL, &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, 0);
    ssize_t n = pread(fd, out, size - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(errpath);
}

/* A process that dies inside a call of kind for id at topic[2]@offset. */
static void die_in(guard_call_kind kind, const char *topic, const char *id,
                   int64_t offset)
{
    pid_t pid = fork();
    if (pid == 0) {
        stele_err err = {0};
        if (stele_guard_open(&cfg, NULL, &err) != 0)
            _exit(1);
        guard_begin(topic, 2, offset, id);
        guard_call(kind);
        _exit(0); /* as SIGKILL would: no hook runs */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A process that dies inside a decide of command id at offset. */
static void die_in_decide(const char *id, int64_t offset)
{
    die_in(GUARD_DECIDE, TOPIC, id, offset);
}

static void test_a_death_in_a_call_is_counted_at_the_next_open(void **state)
{
    (void)state;
    die_in_decide("cmd-1", 7);
    die_in_decide("cmd-1", 7);
    char out[4096];
    open_catching(out, sizeof out);
    assert_non_null(strstr(out, "cmd-1"));
    assert_non_null(strstr(out, "Death 2 of 3"));
    char why[128];
    guard_call_kind kind = 0;
    assert_int_equal(
        guard_crashes(TOPIC, 2, 7, "cmd-1", &kind, why, sizeof why), 2);
    assert_int_equal(kind, GUARD_DECIDE);
    assert_non_null(strstr(why, "without a signal"));
    /* another command, or the same id at another place, is not it */
    assert_int_equal(guard_crashes(TOPIC, 2, 8, "cmd-1", NULL, NULL, 0), 0);
    assert_int_equal(guard_crashes(TOPIC, 2, 7, "cmd-2", NULL, NULL, 0), 0);
    assert_int_equal(guard_crash_limit(), 3);
    /* a call that returned is no death */
    guard_begin(TOPIC, 2, 9, "cmd-3");
    guard_call(GUARD_DECIDE);
    guard_return();
    stele_guard_close();
    open_catching(out, sizeof out);
    assert_string_equal(out, "");
    assert_int_equal(guard_crashes(TOPIC, 2, 7, "cmd-1", NULL, NULL, 0), 2);
    assert_int_equal(guard_crashes(TOPIC, 2, 9, "cmd-3", NULL, NULL, 0), 0);
    stele_guard_close();
}

#define EVENTS "bank.Account.events"

/* Deaths in project count against the projector and the event named: a
 * batch's (its first event) says to go one by one, an event's alone
 * counts towards parking it; a rebuild's is only logged. */
static void
test_deaths_in_project_are_counted_per_projector_and_event(void **state)
{
    (void)state;
    die_in(GUARD_PROJECT, EVENTS, "balances@v1", 5);
    char out[4096];
    open_catching(out, sizeof out);
    if (!strstr(out,
                "project of projector balances@v1 on the batch from " EVENTS
                "[2]@5") ||
        !strstr(out, "projected one by one next"))
        fail_msg("batch death: '%s'", out);
    guard_call_kind kind = 0;
    assert_int_equal(guard_crashes(EVENTS, 2, 5, "balances@v1", &kind, NULL, 0),
                     1);
    assert_int_equal(kind, GUARD_PROJECT);
    stele_guard_close();

    /* A rebuild's death is counted against the event and the aggregate
     * type, which is marked broken at the limit (replay.c). */
    die_in(GUARD_REBUILD, EVENTS, "Account", 9);
    open_catching(out, sizeof out);
    if (!strstr(out, "of aggregate type Account at " EVENTS "[2]@9") ||
        !strstr(out, "aggregate is marked broken"))
        fail_msg("rebuild death: '%s'", out);
    assert_int_equal(guard_crashes(EVENTS, 2, 9, "Account", &kind, NULL, 0), 1);
    assert_int_equal(kind, GUARD_REBUILD);
    stele_guard_close();

    /* (the second process counts the first's death, this one the
     * second's) */
    die_in(GUARD_PROJECT_ONE, EVENTS, "balances@v1", 7);
    die_in(GUARD_PROJECT_ONE, EVENTS, "balances@v1", 7);
    open_catching(out, sizeof out);
    if (!strstr(out, "project of projector balances@v1 on " EVENTS "[2]@7") ||
        !strstr(out, "Death 2 of 3 before the projector parks"))
        fail_msg("deaths alone: '%s'", out);
    char why[128];
    assert_int_equal(
        guard_crashes(EVENTS, 2, 7, "balances@v1", &kind, why, sizeof why), 2);
    assert_int_equal(kind, GUARD_PROJECT_ONE);
    assert_non_null(strstr(why, "without a signal"));
    /* another projector, another version, another event: not it */
    assert_int_equal(guard_crashes(EVENTS, 2, 7, "totals@v1", NULL, NULL, 0),
                     0);
    assert_int_equal(guard_crashes(EVENTS, 2, 7, "balances@v2", NULL, NULL, 0),
                     0);
    assert_int_equal(guard_crashes(EVENTS, 2, 6, "balances@v1", NULL, NULL, 0),
                     0);
    assert_int_equal(guard_crashes(EVENTS, 2, 9, "", NULL, NULL, 0), 0);
    /* forgotten (stele replay, having reported it): counted from zero */
    guard_forget(EVENTS, 2, 7, "balances@v1");
    assert_int_equal(guard_crashes(EVENTS, 2, 7, "balances@v1", NULL, NULL, 0),
                     0);
    assert_int_equal(guard_crashes(EVENTS, 2, 5, "balances@v1", NULL, NULL, 0),
                     1);
    stele_guard_close();
}

static void test_a_garbage_inflight_file_is_ignored_with_a_warning(void **state)
{
    (void)state;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    char out[4096];
    open_catching(out, sizeof out);
    if (!strstr(out, "ignored, starting afresh"))
        fail_msg("no warning: '%s'", out);
    assert_int_equal(guard_crashes(TOPIC, 2, 7, "cmd-1", NULL, NULL, 0), 0);
    stele_guard_close();
    /* started afresh: opened again without a word */
    open_catching(out, sizeof out);
    assert_string_equal(out, "");
    stele_guard_close();
}

static void test_a_file_of_the_right_size_but_not_ours_is_ignored(void **state)
{
    (void)state;
    die_in_decide("cmd-1", 7);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    char junk[64];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    close(fd);
    char out[4096];
    open_catching(out, sizeof out);
    if (!strstr(out, "bad magic"))
        fail_msg("no warning: '%s'", out);
    assert_int_equal(guard_crashes(TOPIC, 2, 7, "cmd-1", NULL, NULL, 0), 0);
    stele_guard_close();
}

static void test_a_torn_slot_is_ignored_with_a_warning(void **state)
{
    (void)state;
    die_in_decide("torn-command", 7);
    /* The dead slot's command id loses its end: no NUL in its field. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd, 0);
    assert_true(m != MAP_FAILED);
    char *at = memmem(m, (size_t)st.st_size, "torn-command", 12);
    assert_non_null(at);
    size_t left = (size_t)(m + st.st_size - at);
    memset(at, 'x', left < 256 ? left : 256);
    munmap(m, (size_t)st.st_size);
    close(fd);
    char out[4096];
    open_catching(out, sizeof out);
    if (!strstr(out, "torn or not a slot: ignored"))
        fail_msg("no warning: '%s'", out);
    assert_null(strstr(out, "Death"));
    stele_guard_close();
    open_catching(out, sizeof out);
    assert_string_equal(out, "");
    stele_guard_close();
}

static void test_a_truncated_file_is_ignored_with_a_warning(void **state)
{
    (void)state;
    die_in_decide("cmd-1", 7);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    char out[4096];
    open_catching(out, sizeof out);
    if (!strstr(out, "not the") || !strstr(out, "ignored"))
        fail_msg("no warning: '%s'", out);
    assert_int_equal(guard_crashes(TOPIC, 2, 7, "cmd-1", NULL, NULL, 0), 0);
    stele_guard_close();
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_a_death_in_a_call_is_counted_at_the_next_open),
        T(test_deaths_in_project_are_counted_per_projector_and_event),
        T(test_a_garbage_inflight_file_is_ignored_with_a_warning),
        T(test_a_file_of_the_right_size_but_not_ours_is_ignored),
        T(test_a_torn_slot_is_ignored_with_a_warning),
        T(test_a_truncated_file_is_ignored_with_a_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

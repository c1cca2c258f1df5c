/* test_log.c's fixture and helpers (log_sqlite_test.h). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log_sqlite_test.h"

int sl_fx_setup(void **out)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/stele-log-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/log.db", f->dir);
    *out = f;
    return 0;
}

int sl_fx_open(void *opaque, stele_log **out, stele_err *err)
{
    fixture *f = opaque;
    return stele_log_open_sqlite(f->path, out, err);
}

void sl_fx_teardown(void *opaque)
{
    fixture *f = opaque;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
}

int sl_setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    void *f;
    stele_err err = {0};
    if (!c || sl_fx_setup(&f))
        return -1;
    c->f = f;
    if (stele_log_open_sqlite(c->f->path, &c->log, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }
    *state = c;
    return 0;
}

int sl_teardown(void **state)
{
    ctx *c = *state;
    stele_log_close(c->log);
    sl_fx_teardown(c->f);
    free(c);
    return 0;
}

stele_log_consumer *sl_consumer(stele_log *log, const char *group,
                                const char *topic)
{
    stele_log_consumer *cons = NULL;
    OK(stele_log_consumer_new(log, group, &topic, 1, NULL, &cons, E));
    return cons;
}

/* One poll that returns at once; the batch's size. */
size_t sl_poll_now(stele_log_consumer *cons, size_t max, size_t per_partition[],
                   size_t n_partitions)
{
    stele_log_batch *b = NULL;
    OK(stele_log_consumer_poll(cons, 0, max, &b, E));
    size_t n = b->n;
    for (size_t i = 0; i < b->n && per_partition; i++) {
        assert_true((size_t)b->records[i].partition < n_partitions);
        per_partition[b->records[i].partition]++;
    }
    stele_log_batch_free(b);
    return n;
}

size_t sl_assigned(stele_log_consumer *cons)
{
    const stele_topic_partition *tps;
    return stele_log_consumer_assignment(cons, &tps);
}

/* Forks a child that runs fn(path, fd) and _exits with its result; fd is
 * the write end of a pipe the child signals on. */
pid_t sl_spawn(const char *path, int (*fn)(const char *, int), int *read_fd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        _exit(fn(path, fds[1]));
    }
    close(fds[1]);
    *read_fd = fds[0];
    return pid;
}

int sl_wait_exit(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

void sl_wait_signal(int fd)
{
    char ch;
    ssize_t n;
    while ((n = read(fd, &ch, 1)) < 0 && errno == EINTR)
        ;
    assert_int_equal(n, 1);
    close(fd);
}

/*
 * e2e.h — what the end-to-end tests share: running the stele binary (or
 * any shell command line) and taking what it printed.
 */
#ifndef STELE_TESTS_E2E_H
#define STELE_TESTS_E2E_H

/* Runs a shell command line; returns its exit status (128 + n when a
 * signal n ended it, as the shell says; -1 when the shell did not exit)
 * and its stdout+stderr in out (caller frees; NULL: dropped). A failure to
 * start the shell fails the test. */
int e2e_run(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

/*
 * chaos.h — the fault-injection run and its exactly-once audit.
 *
 * stele_chaos starts several `stele run` hosts of the bank example on one
 * log (Kafka, the PostgreSQL event store or the embedded SQLite log),
 * drives them with concurrent client processes (opens, deposits,
 * withdrawals, some with expected_version, some command ids resubmitted),
 * and meanwhile SIGKILLs and restarts hosts, pauses one past its session
 * timeout (SIGSTOP, then SIGCONT: a zombie) and restarts the server. Every
 * client writes its history (what it sent, when, and what it was told);
 * at the end the audit checks the log, the states and the read model
 * against the histories (chaos_audit.c). Everything random comes from the
 * seed, which the run prints.
 */
#ifndef STELE_TESTS_CHAOS_H
#define STELE_TESTS_CHAOS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CHAOS_MAX_HOSTS 8
#define CHAOS_MAX_CLIENTS 32

typedef enum { CHAOS_KAFKA, CHAOS_POSTGRES, CHAOS_SQLITE } chaos_backend;

typedef struct chaos_opts {
    chaos_backend backend;
    uint64_t seed;
    int duration_s; /* of the load; the audit follows */
    int hosts;
    int clients;
    int accounts;
    int kill_every_s;  /* mean time between SIGKILLs; 0: none */
    int pause_s;       /* SIGSTOP this long, once; 0: none */
    int server_down_s; /* server restart, down this long, once; 0: none */
    /* Share of commands (percent) sent by a producer that does not hash
     * keys as stele does (librdkafka's default partitioner on Kafka, a
     * random partition elsewhere): the host must route them. */
    int misrouted_pct;
    bool keep; /* keep the run's directory */
} chaos_opts;

typedef struct chaos_run {
    chaos_opts o;
    char dir[160];
    char config[200];
    char app[32];
    char *conninfo; /* PostgreSQL: the run's database */
    pid_t hosts[CHAOS_MAX_HOSTS];
    pid_t clients[CHAOS_MAX_CLIENTS];
    /* what the nemesis did */
    int kills, pauses, server_restarts;
} chaos_run;

/* What the audit found; each count is of violations except the first
 * group. */
typedef struct chaos_report {
    long commands, submissions, accepted, rejected, conflicts, resubmitted;
    long misrouted, events, accounts;
    long unanswered;       /* a command id never answered */
    long answers_differ;   /* one id, answers that are not the same */
    long results_twice;    /* one id, two results in the log */
    long result_mismatch;  /* the log's result is not what a client got */
    long events_missing;   /* an accepted command without its events */
    long events_twice;     /* a command's events more than once */
    long events_rejected;  /* events of a rejected or unknown command */
    long version_gaps;     /* versions not 1..n */
    long bad_decisions;    /* an event not consistent with the one before */
    long stale_decisions;  /* decided on a version older than one a
                            * client had already been told */
    long wrong_partition;  /* an aggregate's events off its partition */
    long balance_mismatch; /* events, state, read model, commands differ */
    long crashed;          /* a client failed, a sanitizer reported */
    char first[512];       /* the first violation, described */
} chaos_report;

/* chaos_client.c: the body of client process i (forked). Sends commands
 * until deadline_ms (wall clock), then finishes the one in hand; writes
 * its history to <dir>/client<i>.jsonl. Returns the exit status. */
int chaos_client_main(const chaos_run *r, int i, int64_t deadline_ms);

/* chaos_audit.c: reads the histories and the log; fills rep. Returns 0
 * when it could read everything (violations are in rep), -1 when not. */
int chaos_audit(const chaos_run *r, chaos_report *rep);
/* The number of violations in rep. */
long chaos_violations(const chaos_report *rep);
/* Waits (bounded) until the read model has caught up with the states of
 * every account the histories touched; false on timeout. */
bool chaos_wait_projected(const chaos_run *r, int timeout_s);

/* A record of a violation: counted in *counter, the first described. */
void chaos_violation(chaos_report *rep, long *counter, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/*
 * stele_chaos — faults together, then the audit (chaos.h).
 *
 *   stele_chaos --backend kafka|postgres|sqlite [--seed N] [--duration S]
 *               [--hosts N] [--clients N] [--accounts N] [--kill-every S]
 *               [--pause S] [--server-down S] [--misrouted PCT] [--keep]
 *
 * The nemesis, all of it from the seed: every --kill-every seconds (on
 * average) one host is SIGKILLed and started again at once or up to 8 s
 * later; a host is SIGSTOPped for --pause seconds (past its session
 * timeout: its partitions move, and it wakes up as a zombie) and
 * continued, then again every minute or so; the server (the Kafka broker,
 * PostgreSQL) is stopped for --server-down seconds and started again, in a
 * process of its own so that kills and pauses go on meanwhile, then again
 * every minute or two. A run of a minute or two has each fault at least
 * once, all overlapping at times. Exit status 0 when the audit finds nothing, 1
 * when it finds a violation, 2 when the run itself could not be done.
 */
#include "chaos.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#ifdef STELE_WITH_KAFKA
#include "common_kafka.h"
#endif
#ifdef STELE_WITH_POSTGRES
#include "common_pg.h"
#endif

#define STELE STELE_BUILD_DIR "/stele"
#define PLUGINS STELE_BUILD_DIR "/plugins/"
#define SCRIPTS STELE_SOURCE_DIR "/scripts/"

static void usage(void)
{
    fprintf(stderr,
            "usage: stele_chaos --backend kafka|postgres|sqlite [--seed N] "
            "[--duration S]\n"
            "       [--hosts N] [--clients N] [--accounts N] "
            "[--kill-every S] [--pause S]\n"
            "       [--server-down S] [--misrouted PCT] [--keep]\n");
    exit(2);
}

static void parse(int argc, char **argv, chaos_opts *o)
{
    *o = (chaos_opts){.backend = CHAOS_SQLITE,
                      .duration_s = 60,
                      .hosts = 3,
                      .clients = 6,
                      .accounts = 200,
                      .kill_every_s = 10,
                      .pause_s = 12,
                      .server_down_s = 12,
                      .misrouted_pct = 5};
    bool seeded = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) {
            o->keep = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--backend")) {
            if (!strcmp(v, "kafka"))
                o->backend = CHAOS_KAFKA;
            else if (!strcmp(v, "postgres"))
                o->backend = CHAOS_POSTGRES;
            else if (!strcmp(v, "sqlite"))
                o->backend = CHAOS_SQLITE;
            else
                usage();
#ifndef STELE_WITH_KAFKA
            if (o->backend == CHAOS_KAFKA) {
                fprintf(stderr, "stele_chaos: built without Kafka "
                                "(cmake -DSTELE_KAFKA=ON)\n");
                exit(2);
            }
#endif
#ifndef STELE_WITH_POSTGRES
            if (o->backend == CHAOS_POSTGRES) {
                fprintf(stderr, "stele_chaos: built without PostgreSQL "
                                "(cmake -DSTELE_POSTGRES=ON)\n");
                exit(2);
            }
#endif
        } else if (!strcmp(a, "--seed")) {
            o->seed = strtoull(v, NULL, 10);
            seeded = true;
        } else if (!strcmp(a, "--duration")) {
            o->duration_s = atoi(v);
        } else if (!strcmp(a, "--hosts")) {
            o->hosts = atoi(v);
        } else if (!strcmp(a, "--clients")) {
            o->clients = atoi(v);
        } else if (!strcmp(a, "--accounts")) {
            o->accounts = atoi(v);
        } else if (!strcmp(a, "--kill-every")) {
            o->kill_every_s = atoi(v);
        } else if (!strcmp(a, "--pause")) {
            o->pause_s = atoi(v);
        } else if (!strcmp(a, "--server-down")) {
            o->server_down_s = atoi(v);
        } else if (!strcmp(a, "--misrouted")) {
            o->misrouted_pct = atoi(v);
        } else {
            usage();
        }
    }
    if (o->hosts < 1 || o->hosts > CHAOS_MAX_HOSTS || o->clients < 1 ||
        o->clients > CHAOS_MAX_CLIENTS || o->accounts < 1 ||
        o->duration_s < 1 || o->misrouted_pct < 0 || o->misrouted_pct > 100)
        usage();
    if (!seeded) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = (uint32_t)time(NULL);
        o->seed = r;
    }
}

static const char *backend_name(chaos_backend b)
{
    return b == CHAOS_KAFKA      ? "kafka"
           : b == CHAOS_POSTGRES ? "postgres"
                                 : "sqlite";
}

static int write_config(chaos_run *r)
{
    FILE *out = fopen(r->config, "w");
    if (!out)
        return -1;
    fprintf(out,
            "app: %s\n"
            "data_dir: %s/data\n"
            "schemas: %s/schemas\n"
            "plugins:\n"
            "  - %sbank_account.so\n"
            "  - %sbank_balances.so\n"
            "  - %sbank_account_query.so\n"
            "log:\n"
            "  partitions: 6\n",
            r->app, r->dir, STELE_SOURCE_DIR, PLUGINS, PLUGINS, PLUGINS);
    switch (r->o.backend) {
    case CHAOS_KAFKA:
        fprintf(out, "  backend: kafka\n"
                     "  replication_factor: 1\n"
                     "  kafka:\n"
                     "    bootstrap.servers: 127.0.0.1:9092\n"
                     /* a killed or paused host's partitions move within
                      * seconds, and its open transaction is aborted soon
                      * after */
                     "    session.timeout.ms: 6000\n"
                     "    heartbeat.interval.ms: 500\n"
                     "    transaction.timeout.ms: 10000\n");
        break;
    case CHAOS_POSTGRES:
        fprintf(out,
                "  backend: postgres\n"
                "  conninfo: \"%s\"\n"
                /* a paused host is taken out of its groups */
                "  max_poll_interval_ms: 5000\n"
                "store:\n"
                "  backend: postgres\n"
                "  conninfo: \"%s\"\n",
                r->conninfo, r->conninfo);
        break;
    case CHAOS_SQLITE: break;
    }
    fprintf(out, "engine:\n"
                 "  command_batch: 500\n"
                 "  commit_interval_ms: 20\n"
                 "  reply_timeout_ms: 60000\n"
                 "logging:\n"
                 "  level: warn\n");
    return fclose(out);
}

static void start_host(chaos_run *r, int i)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return;
    }
    if (pid == 0) {
        char path[sizeof r->dir + 32];
        snprintf(path, sizeof path, "%s/host%d.log", r->dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(STELE, STELE, "run", "-c", r->config, (char *)NULL);
        _exit(127);
    }
    r->hosts[i] = pid;
}

static void stop_host(chaos_run *r, int i, int sig)
{
    if (r->hosts[i] <= 0)
        return;
    kill(r->hosts[i], sig);
    if (sig == SIGTERM)
        kill(r->hosts[i], SIGCONT);
    waitpid(r->hosts[i], NULL, 0);
    r->hosts[i] = 0;
}

/* The server restart, in a child: the nemesis goes on meanwhile. */
static pid_t restart_server(chaos_run *r)
{
    char cmd[600];
    if (0) {
#ifdef STELE_WITH_KAFKA
    } else if (r->o.backend == CHAOS_KAFKA) {
        const char *c = ckt_restart_command(r->o.server_down_s);
        if (!c) {
            fprintf(stderr, "chaos: the broker was not started by the "
                            "scripts; it is not restarted\n");
            return 0;
        }
        snprintf(cmd, sizeof cmd, "%s", c);
#endif
#ifdef STELE_WITH_POSTGRES
    } else if (r->o.backend == CHAOS_POSTGRES && pgt_managed()) {
        snprintf(cmd, sizeof cmd,
                 SCRIPTS "pg-stop.sh >&2 && sleep %d && " SCRIPTS
                         "pg-start.sh >&2",
                 r->o.server_down_s);
#endif
    } else {
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    r->server_restarts++;
    return pid;
}

static void now_line(const chaos_run *r, int64_t start, const char *fmt, int a)
{
    (void)r;
    fprintf(stderr, "chaos: %6.1f s: ", (stele_now_ms() - start) / 1000.0);
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
}

/* Runs the faults until deadline. */
static void nemesis(chaos_run *r, int64_t start, int64_t deadline,
                    unsigned short rng[3])
{
    int64_t dur = deadline - start;
    int64_t next_kill = r->o.kill_every_s
                            ? start + (r->o.kill_every_s * 1000 / 2) +
                                  nrand48(rng) % (r->o.kill_every_s * 1000)
                            : INT64_MAX;
    int64_t pause_at = r->o.pause_s && r->o.hosts > 1
                           ? start + dur / 5 + nrand48(rng) % (dur / 2 + 1)
                           : INT64_MAX;
    int64_t server_at = r->o.server_down_s && r->o.backend != CHAOS_SQLITE
                            ? start + dur / 5 + nrand48(rng) % (dur / 2 + 1)
                            : INT64_MAX;
    int paused = -1;
    int64_t resume_at = INT64_MAX;
    int64_t restart_at[CHAOS_MAX_HOSTS] = {0};
    pid_t server = 0;
    while (stele_now_ms() < deadline) {
        int64_t now = stele_now_ms();
        if (now >= next_kill) {
            int h = (int)(nrand48(rng) % r->o.hosts);
            if (r->hosts[h] > 0) {
                now_line(r, start, "SIGKILL host %d", h);
                stop_host(r, h, SIGKILL);
                r->kills++;
                /* Back at once, or after its session expired and its
                 * partitions moved (they may come back to it while the
                 * transaction it died in is still open). */
                restart_at[h] = now + (int64_t)(nrand48(rng) % 8000);
            }
            if (h == paused) {
                paused = -1;
                resume_at = INT64_MAX;
            }
            next_kill = now + r->o.kill_every_s * 500 +
                        nrand48(rng) % (r->o.kill_every_s * 1000);
        }
        for (int h = 0; h < r->o.hosts; h++)
            if (r->hosts[h] <= 0 && now >= restart_at[h]) {
                now_line(r, start, "start host %d", h);
                start_host(r, h);
            }
        if (now >= pause_at && r->hosts[(pause_at / 7) % r->o.hosts] <= 0) {
            pause_at += 500; /* that host is down: a moment later */
        } else if (now >= pause_at) {
            paused = (int)((pause_at / 7) % r->o.hosts);
            now_line(r, start, "SIGSTOP host %d", paused);
            kill(r->hosts[paused], SIGSTOP);
            r->pauses++;
            resume_at = now + r->o.pause_s * 1000;
            pause_at = INT64_MAX;
        }
        if (now >= resume_at) {
            now_line(r, start, "SIGCONT host %d", paused);
            if (r->hosts[paused] > 0) /* kill(0, ...) is the whole group */
                kill(r->hosts[paused], SIGCONT);
            paused = -1;
            resume_at = INT64_MAX;
            /* a long run (the soak) has a pause every minute or so */
            pause_at = now + 30000 + (int64_t)(nrand48(rng) % 60000);
        }
        if (now >= server_at) {
            now_line(r, start, "server down for %d s", r->o.server_down_s);
            server = restart_server(r);
            server_at = INT64_MAX;
        }
        if (server > 0 && waitpid(server, NULL, WNOHANG) == server) {
            now_line(r, start, "server up again (%d)", r->server_restarts);
            server = 0;
            server_at = now + 45000 + (int64_t)(nrand48(rng) % 75000);
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (paused >= 0 && r->hosts[paused] > 0)
        kill(r->hosts[paused], SIGCONT);
    if (server > 0)
        waitpid(server, NULL, 0);
}

/* What --audit needs to audit a kept run again. */
static int save_run(const chaos_run *r)
{
    char path[sizeof r->dir + 16];
    snprintf(path, sizeof path, "%s/run", r->dir);
    FILE *out = fopen(path, "w");
    if (!out)
        return -1;
    fprintf(out, "%d %" PRIu64 " %d %d %s %s\n", (int)r->o.backend, r->o.seed,
            r->o.clients, r->o.accounts, r->app,
            r->conninfo ? r->conninfo : "-");
    return fclose(out);
}

static int load_run(chaos_run *r, const char *dir)
{
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    snprintf(r->config, sizeof r->config, "%s/stele.yaml", dir);
    char path[sizeof r->dir + 16], conninfo[1024];
    snprintf(path, sizeof path, "%s/run", dir);
    FILE *in = fopen(path, "r");
    int b;
    if (!in ||
        fscanf(in, "%d %" SCNu64 " %d %d %31s %1023[^\n]", &b, &r->o.seed,
               &r->o.clients, &r->o.accounts, r->app, conninfo) != 6) {
        if (in)
            fclose(in);
        return -1;
    }
    fclose(in);
    r->o.backend = (chaos_backend)b;
    if (strcmp(conninfo, "-") != 0)
        r->conninfo = strdup(conninfo);
    return 0;
}

static int prepare(chaos_run *r)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/stele-chaos-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    snprintf(r->config, sizeof r->config, "%s/stele.yaml", r->dir);
    uint32_t u = 0;
    if (getrandom(&u, sizeof u, 0) != sizeof u)
        u = (uint32_t)getpid();
    snprintf(r->app, sizeof r->app, "ch%08x", u);
#ifdef STELE_WITH_KAFKA
    if (r->o.backend == CHAOS_KAFKA && ckt_ensure_broker() != 0)
        return -1;
#endif
#ifdef STELE_WITH_POSTGRES
    if (r->o.backend == CHAOS_POSTGRES &&
        (!pgt_ensure_server() || !pgt_create_db(r->app, false, &r->conninfo)))
        return -1;
#endif
    return write_config(r) || save_run(r);
}

static void cleanup(chaos_run *r, bool keep)
{
    if (keep) {
        /* topics, database and files, for a look (or --audit) */
        fprintf(stderr,
                "chaos: the run's files are in %s; audit again with "
                "stele_chaos --audit %s\n",
                r->dir, r->dir);
        return;
    }
#ifdef STELE_WITH_POSTGRES
    if (r->o.backend == CHAOS_POSTGRES) {
        pgt_restart_if_stopped();
        pgt_drop_db(r->app);
    }
#endif
#ifdef STELE_WITH_KAFKA
    if (r->o.backend == CHAOS_KAFKA) {
        char prefix[40];
        snprintf(prefix, sizeof prefix, "%s.", r->app);
        ckt_delete_topics(prefix);
    }
#endif
    char cmd[sizeof r->dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "chaos: could not remove %s\n", r->dir);
}

/* A sanitizer's report (ASan, UBSan) in a host's or client's output: the
 * hosts are SIGKILLed, so their exit status says nothing. */
static void check_sanitizers(const chaos_run *r, chaos_report *rep)
{
    const char *who[] = {"host", "client"};
    int n[] = {r->o.hosts, r->o.clients};
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < n[w]; i++) {
            char path[sizeof r->dir + 32], line[1024];
            snprintf(path, sizeof path, "%s/%s%d.log", r->dir, who[w], i);
            FILE *in = fopen(path, "r");
            while (in && fgets(line, sizeof line, in))
                if (strstr(line, "Sanitizer") ||
                    strstr(line, "runtime error:")) {
                    chaos_violation(rep, &rep->crashed, "%s: %s", path, line);
                    break;
                }
            if (in)
                fclose(in);
        }
}

static void print_report(const chaos_run *r, const chaos_report *p)
{
    printf("chaos: backend %s, seed %" PRIu64 ", %d s, %d hosts, %d clients, "
           "%d accounts\n",
           backend_name(r->o.backend), r->o.seed, r->o.duration_s, r->o.hosts,
           r->o.clients, r->o.accounts);
    printf("faults: %d SIGKILLs, %d pauses of %d s, %d server restarts of "
           "%d s\n",
           r->kills, r->pauses, r->o.pause_s, r->server_restarts,
           r->o.server_down_s);
    printf("load: %ld commands (%ld sends), %ld accepted, %ld rejected "
           "(%ld CONFLICT), %ld resubmitted ids, %ld misrouted, %ld events, "
           "%ld accounts\n",
           p->commands, p->submissions, p->accepted, p->rejected, p->conflicts,
           p->resubmitted, p->misrouted, p->events, p->accounts);
    printf("violations: unanswered %ld, answers differ %ld, results twice "
           "%ld, result mismatch %ld, events missing %ld, events twice %ld, "
           "events of rejected %ld, version gaps %ld, bad decisions %ld, "
           "stale decisions %ld, wrong partition %ld, balance mismatch %ld, "
           "crashed %ld\n",
           p->unanswered, p->answers_differ, p->results_twice,
           p->result_mismatch, p->events_missing, p->events_twice,
           p->events_rejected, p->version_gaps, p->bad_decisions,
           p->stale_decisions, p->wrong_partition, p->balance_mismatch,
           p->crashed);
    if (p->first[0])
        printf("first: %s\n", p->first);
    printf("%s\n", chaos_violations(p) ? "FAILED" : "OK");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static chaos_run r;
    if (argc == 3 && !strcmp(argv[1], "--audit")) {
        chaos_report rep = {0};
        if (load_run(&r, argv[2]) != 0 || chaos_audit(&r, &rep) != 0) {
            fprintf(stderr, "chaos: cannot audit %s\n", argv[2]);
            return 2;
        }
        print_report(&r, &rep);
        return chaos_violations(&rep) ? 1 : 0;
    }
    parse(argc, argv, &r.o);
    setvbuf(stderr, NULL, _IONBF, 0);
    fprintf(stderr, "chaos: backend %s, seed %" PRIu64 "\n",
            backend_name(r.o.backend), r.o.seed);
    if (prepare(&r) != 0) {
        fprintf(stderr, "chaos: could not prepare the run\n");
        return 2;
    }
    unsigned short rng[3] = {(unsigned short)r.o.seed,
                             (unsigned short)(r.o.seed >> 16),
                             (unsigned short)(r.o.seed >> 32)};
    for (int i = 0; i < r.o.hosts; i++)
        start_host(&r, i);
    sleep(2);
    int64_t start = stele_now_ms();
    int64_t deadline = start + (int64_t)r.o.duration_s * 1000;
    for (int i = 0; i < r.o.clients; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* its librdkafka lines (the broker going away) in a file */
            char path[sizeof r.dir + 32];
            snprintf(path, sizeof path, "%s/client%d.log", r.dir, i);
            int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, STDERR_FILENO);
                close(fd);
            }
            _exit(chaos_client_main(&r, i, deadline));
        }
        r.clients[i] = pid;
    }
    nemesis(&r, start, deadline, rng);
    /* Every host up, for the clients' last commands. */
    for (int i = 0; i < r.o.hosts; i++)
        if (r.hosts[i] <= 0 || waitpid(r.hosts[i], NULL, WNOHANG) != 0)
            start_host(&r, i);
    int failed_clients = 0;
    for (int i = 0; i < r.o.clients; i++) {
        int status = 0;
        waitpid(r.clients[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed_clients++;
    }
    fprintf(stderr,
            "chaos: %.1f s: the load is done; waiting for the read "
            "model\n",
            (stele_now_ms() - start) / 1000.0);
    bool projected = chaos_wait_projected(&r, 180);
    /* A host killed in a transaction leaves it open until the broker
     * aborts it (transaction.timeout.ms), and read_committed readers stop
     * before it on the partitions it wrote, records committed after it
     * included: what is missing is looked for again for a while. What is
     * there twice, or wrong, is wrong at once. The hosts run meanwhile
     * (projectors catch up). */
    chaos_report rep;
    int rc;
    int64_t audit_deadline = stele_now_ms() + 90000;
    for (;;) {
        rep = (chaos_report){0};
        rc = chaos_audit(&r, &rep);
        long missing =
            rep.result_mismatch + rep.events_missing + rep.balance_mismatch;
        if (rc != 0 || missing == 0 || missing != chaos_violations(&rep) ||
            stele_now_ms() > audit_deadline)
            break;
        fprintf(stderr,
                "chaos: %ld results or events not visible yet (%s); "
                "reading again\n",
                missing, rep.first);
        sleep(3);
    }
    for (int i = 0; i < r.o.hosts; i++)
        stop_host(&r, i, SIGTERM);
    if (!projected && rc == 0 && rep.balance_mismatch == 0)
        chaos_violation(&rep, &rep.balance_mismatch,
                        "the read model did not catch up in 180 s");
    if (failed_clients)
        chaos_violation(&rep, &rep.crashed, "%d clients failed",
                        failed_clients);
    check_sanitizers(&r, &rep);
    print_report(&r, &rep);
    bool bad = rc != 0 || chaos_violations(&rep) > 0;
    if (bad)
        fprintf(stderr,
                "chaos: replay this run with --seed %" PRIu64
                " (the hosts' output is in %s)\n",
                r.o.seed, r.dir);
    cleanup(&r, r.o.keep || bad);
    free(r.conninfo);
    return rc != 0 ? 2 : bad ? 1 : 0;
}

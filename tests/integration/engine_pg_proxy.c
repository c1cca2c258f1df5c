/* The relay that loses answers and connections (engine_pg_proxy.h). */
#define _GNU_SOURCE /* memmem */
#include "engine_pg_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct pgp_proxy {
    int listen_fd;
    int port;
    struct sockaddr_in upstream;
    pthread_mutex_t mu; /* guards the arming */
    char pattern[64];
    size_t pattern_len;
    char app[32];  /* the clients' application_name; "" for any */
    int remaining; /* cuts still to make */
    int wait_ms;   /* after passing the message on, before cutting */
    atomic_int cuts;
    atomic_bool stopping;
    atomic_int relays; /* running */
    pthread_t acceptor;
};

typedef struct relay {
    pgp_proxy *p;
    int client, server;
    char app[32]; /* the client's application_name, once seen */
} relay;

/* Whether this client message makes a cut: the armed pattern, from a
 * client of the armed application_name, while cuts remain. The wait to
 * make comes back in *wait_ms. */
static bool should_cut(relay *r, const char *buf, size_t n, int *wait_ms)
{
    /* The startup message names the client (after an SSL request). */
    const char *at = r->app[0] ? NULL : memmem(buf, n, "application_name", 17);
    if (at) {
        const char *v = at + 17, *end = buf + n;
        size_t k = 0;
        while (v + k < end && v[k] && k + 1 < sizeof r->app)
            k++;
        memcpy(r->app, v, k);
        r->app[k] = '\0';
    }
    pgp_proxy *p = r->p;
    bool cut = false;
    pthread_mutex_lock(&p->mu);
    if (p->remaining > 0 && (!p->app[0] || !strcmp(p->app, r->app)) &&
        memmem(buf, n, p->pattern, p->pattern_len)) {
        p->remaining--;
        *wait_ms = p->wait_ms;
        cut = true;
    }
    pthread_mutex_unlock(&p->mu);
    return cut;
}

static bool send_all(int fd, const char *buf, ssize_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        buf += w;
        n -= w;
    }
    return true;
}

static void *relay_main(void *arg)
{
    relay *r = arg;
    char buf[65536];
    struct pollfd fds[2] = {{r->client, POLLIN, 0}, {r->server, POLLIN, 0}};
    while (!atomic_load(&r->p->stopping)) {
        if (poll(fds, 2, 200) < 0)
            break;
        bool done = false;
        for (int i = 0; i < 2 && !done; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
            if (n <= 0 || !send_all(fds[1 - i].fd, buf, n)) {
                done = true;
                break;
            }
            int wait_ms = 0;
            /* Client to server: the armed message (a statement's text, or
             * a prepared statement's name, is in it). */
            if (i == 0 && should_cut(r, buf, (size_t)n, &wait_ms)) {
                atomic_fetch_add(&r->p->cuts, 1);
                struct timespec ts = {wait_ms / 1000,
                                      (long)(wait_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL); /* the server does it meanwhile */
                done = true;
            }
        }
        if (done)
            break;
    }
    close(r->client);
    close(r->server);
    atomic_fetch_sub(&r->p->relays, 1);
    free(r);
    return NULL;
}

static void *accept_main(void *arg)
{
    pgp_proxy *p = arg;
    while (!atomic_load(&p->stopping)) {
        struct pollfd pfd = {p->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        int c = accept(p->listen_fd, NULL, NULL);
        if (c < 0)
            continue;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        relay *r = malloc(sizeof *r);
        if (s < 0 || !r ||
            connect(s, (struct sockaddr *)&p->upstream, sizeof p->upstream)) {
            close(c);
            if (s >= 0)
                close(s);
            free(r);
            continue;
        }
        *r = (relay){.p = p, .client = c, .server = s};
        atomic_fetch_add(&p->relays, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, relay_main, r) != 0) {
            atomic_fetch_sub(&p->relays, 1);
            close(c);
            close(s);
            free(r);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

pgp_proxy *pgp_start(const char *host, int port)
{
    pgp_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->upstream.sin_family = AF_INET;
    p->upstream.sin_port = htons((uint16_t)port);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    if (inet_pton(AF_INET, host, &p->upstream.sin_addr) != 1 ||
        (p->listen_fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(p->listen_fd, 64) ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &len) ||
        pthread_create(&p->acceptor, NULL, accept_main, p) != 0) {
        if (p->listen_fd > 0)
            close(p->listen_fd);
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    return p;
}

int pgp_port(const pgp_proxy *p)
{
    return p->port;
}

void pgp_arm_match(pgp_proxy *p, const void *pattern, size_t len,
                   const char *app, int count, int wait_ms)
{
    pthread_mutex_lock(&p->mu);
    if (len > sizeof p->pattern)
        len = sizeof p->pattern;
    memcpy(p->pattern, pattern, len);
    p->pattern_len = len;
    snprintf(p->app, sizeof p->app, "%s", app ? app : "");
    p->remaining = count;
    p->wait_ms = wait_ms;
    pthread_mutex_unlock(&p->mu);
}

void pgp_arm(pgp_proxy *p)
{
    pgp_arm_match(p, "COMMIT", 6, NULL, 1, 300);
}

int pgp_cuts(pgp_proxy *p)
{
    return atomic_load(&p->cuts);
}

void pgp_stop(pgp_proxy *p)
{
    if (!p)
        return;
    atomic_store(&p->stopping, true);
    pthread_join(p->acceptor, NULL);
    close(p->listen_fd);
    /* Relays see stopping within a poll interval (or a cut's wait). */
    for (int i = 0; i < 100 && atomic_load(&p->relays) > 0; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(p);
}
